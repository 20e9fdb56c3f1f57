# Two commands: `make dev` runs the whole system locally, `make test` runs every check.
# Both install what they need: a pinned uv in .local/bootstrap, then the locked
# dependencies in .venv.

PYTHON ?= python3
UV_VERSION := 0.13.8
BOOT := .local/bootstrap
UV := $(BOOT)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: dev test lint typecheck pytest install bench clean

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

pytest: $(STAMP)
	$(VENV)/bin/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(VENV)/bin/python bench/event_pipeline.py

clean:
	rm -rf $(VENV) .local/bootstrap .mypy_cache .ruff_cache .pytest_cache
