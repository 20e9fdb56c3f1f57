# syntax=docker/dockerfile:1
# One image for every service (and the SMTP sink); docker-compose.yml picks the
# command. Build: docker build -t csc:local .

############################ assets ############################
# The gateway's pages: USWDS and htmx from npm, versions pinned by package-lock.json
# (the same copy `make assets` does).
FROM node:20-slim AS assets
WORKDIR /gateway
COPY services/gateway/package.json services/gateway/package-lock.json ./
RUN npm ci --no-audit --no-fund --silent
COPY services/gateway/static_src ./static_src
RUN mkdir -p static/uswds static/htmx \
 && cp -R node_modules/@uswds/uswds/dist/css node_modules/@uswds/uswds/dist/js \
        node_modules/@uswds/uswds/dist/fonts node_modules/@uswds/uswds/dist/img static/uswds/ \
 && cp node_modules/htmx.org/dist/htmx.min.js static/htmx/ \
 && cp static_src/gateway.js static_src/gateway.css static/

############################ builder ############################
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

RUN pip install uv==0.13.8

WORKDIR /app

# Third-party dependencies first: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Then the project itself, installed in editable mode so the source tree (and
# the migrations next to it) stays at /app.
COPY . .
COPY --from=assets /gateway/static services/gateway/src/gateway/static
RUN uv sync --frozen --no-dev \
 && python -m compileall -q shared services

############################ runtime ############################
FROM python:3.11-slim AS runtime

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CSC_ENV=prod

RUN groupadd --system --gid 10001 csc \
 && useradd --system --uid 10001 --gid csc --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin csc

WORKDIR /app
# Owned by root and read-only for the service user.
COPY --from=builder /app /app

USER 10001:10001

EXPOSE 8100 8101 8102 8103 8104 8105 8106 1025 8025

# docker-compose.yml gives each service its own command, e.g.
#   uvicorn identity.app:create_app --factory --host 0.0.0.0 --port 8101
CMD ["python", "-c", "print('csc image: run e.g. uvicorn identity.app:create_app --factory --host 0.0.0.0 --port 8101')"]
