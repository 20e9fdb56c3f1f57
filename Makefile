# Two commands: `make dev` runs the whole system locally, `make test` runs every check.
# Both install what they need: a pinned uv in .local/bootstrap, then the locked
# dependencies in .venv.

PYTHON ?= python3
UV_VERSION := 0.13.8
BOOT := .local/bootstrap
UV := $(BOOT)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: dev test lint typecheck pytest install assets chromium bench bench-install bench-accuracy soak clean

install: $(STAMP)

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --quiet
	@touch $(STAMP)

# The gateway's pages: the U.S. Web Design System and htmx from npm (versions pinned in
# services/gateway/package-lock.json), copied into the folder the gateway serves at /static.
GATEWAY := services/gateway
STATIC := $(GATEWAY)/src/gateway/static
ASSETS := $(STATIC)/.copied

assets: $(ASSETS)

$(ASSETS): $(GATEWAY)/package.json $(GATEWAY)/package-lock.json $(GATEWAY)/static_src/gateway.js $(GATEWAY)/static_src/gateway.css
	cd $(GATEWAY) && npm ci --no-audit --no-fund --silent
	rm -rf $(STATIC) && mkdir -p $(STATIC)/uswds $(STATIC)/htmx
	cp -R $(GATEWAY)/node_modules/@uswds/uswds/dist/css $(GATEWAY)/node_modules/@uswds/uswds/dist/js \
	  $(GATEWAY)/node_modules/@uswds/uswds/dist/fonts $(GATEWAY)/node_modules/@uswds/uswds/dist/img $(STATIC)/uswds/
	cp $(GATEWAY)/node_modules/htmx.org/dist/htmx.min.js $(STATIC)/htmx/
	cp $(GATEWAY)/static_src/gateway.js $(GATEWAY)/static_src/gateway.css $(STATIC)/
	@touch $@

# The browser tests drive Debian's Chromium (never a downloaded browser).
chromium:
	@[ -x /usr/bin/chromium ] || { echo "installing chromium (apt-get)"; \
	  apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  { sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; }; }

dev: $(STAMP) assets
	$(VENV)/bin/csc dev

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# two workers (each with its own PostgreSQL and broker), a test file's tests on one
# worker; the slowest 25 printed. Shuffled order: add `-p randomly`.
pytest: $(STAMP) assets chromium
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
