# Two commands: `make dev` runs the whole system locally, `make test` runs every check.
# Both install what they need: a pinned uv in .local/bootstrap, then the locked
# dependencies in .venv.

PYTHON ?= python3
UV_VERSION := 0.13.8
BOOT := .local/bootstrap
UV := $(BOOT)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: dev test lint typecheck pytest install bench bench-install bench-accuracy soak clean

install: $(STAMP)

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --quiet
	@touch $(STAMP)

dev: $(STAMP)
	$(VENV)/bin/csc dev

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# two workers (each with its own PostgreSQL and broker), a test file's tests on one
# worker; the slowest 25 printed. Shuffled order: add `-p randomly`.
pytest: $(STAMP)
	$(VENV)/bin/pytest -q -n 2 --dist loadfile --durations=25

test: lint typecheck pytest

# Benchmarks also need the `bench` dependency group (Splink and what it pulls in),
# which `make test`'s install leaves out. Synced on every run: a plain `uv sync`
# (as `make test` does after a lock change) removes the group again.
bench-install: $(STAMP)
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --quiet --group bench

bench: bench-install
	$(VENV)/bin/python bench/event_pipeline.py

bench-accuracy: bench-install
	$(VENV)/bin/python bench/match_accuracy.py

# 20 writes a second through identity and enrollment for 5 minutes while faults
# strike (broker cut and restarted empty, services killed, connections killed),
# then a count of lost and duplicated effects; not part of `make test`.
soak: $(STAMP)
	$(VENV)/bin/python bench/soak.py --minutes 5 --rate 20

clean:
	rm -rf $(VENV) .local/bootstrap .mypy_cache .ruff_cache .pytest_cache
