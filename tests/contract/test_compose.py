"""The Docker deployment files agree with the design (file checks only, no Docker)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]

# compose service -> (python package, port from DESIGN.md, env prefix, database)
APPS = {
    "gateway": ("gateway", 8100, "GATEWAY_", "gateway"),
    "identity": ("identity", 8101, "IDENTITY_", "identity"),
    "groups": ("groups", 8102, "GROUPS_", "groups"),
    "enrollment": ("enrollment", 8103, "ENROLLMENT_", "enrollment"),
    "sync-iwds": ("sync_iwds", 8104, "SYNC_IWDS_", "sync_iwds"),
    "notify": ("notify", 8105, "NOTIFY_", "notify"),
    "readiness": ("readiness", 8106, "READINESS_", "readiness"),
}
INFRA = ("postgres", "kafka", "smtp")

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}
SUBST_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
# The password of a URL's user info: a ${...} substitution (which may hold
# spaces) or anything up to the "@".
USERINFO_RE = re.compile(r"://[^/@\s:]+:(\$\{[^}]*\}|[^@\s]*)@")


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def _env(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _is_substitution(value: str) -> bool:
    return SUBST_RE.fullmatch(value) is not None


def test_every_service_and_infrastructure_exists() -> None:
    assert set(APPS) | set(INFRA) <= set(SERVICES)


@pytest.mark.parametrize("name", [*APPS, *INFRA])
def test_every_service_has_a_healthcheck(name: str) -> None:
    check = SERVICES[name].get("healthcheck")
    assert check and check.get("test") and not check.get("disable"), name


@pytest.mark.parametrize("name", list(APPS))
def test_app_waits_for_healthy_database_and_broker(name: str) -> None:
    deps = SERVICES[name].get("depends_on")
    assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
    for infra in ("postgres", "kafka"):
        assert deps.get(infra, {}).get("condition") == "service_healthy", (name, infra)
    if name != "identity":
        assert "identity" in deps, name
    assert SERVICES[name].get("restart") == "unless-stopped"


def test_notify_uses_the_smtp_sink() -> None:
    assert "smtp" in SERVICES["notify"]["depends_on"]
    env = _env("notify")
    assert env["NOTIFY_SMTP_HOST"] == "smtp"
    assert f":{env['NOTIFY_SMTP_PORT']}" in " ".join(SERVICES["smtp"].get("ports", []))


@pytest.mark.parametrize("name", list(APPS))
def test_app_command_port_and_database(name: str) -> None:
    package, port, prefix, database = APPS[name]
    svc = SERVICES[name]
    argv = _argv(svc["command"])
    assert argv[0] == "uvicorn"
    assert f"{package}.app:create_app" in argv
    assert "--factory" in argv
    assert argv[argv.index("--port") + 1] == str(port)
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert any(str(p).endswith(f":{port}") for p in svc.get("ports", [])), name
    assert str(port) in " ".join(_argv(svc["healthcheck"]["test"]))
    assert "/readyz" in " ".join(_argv(svc["healthcheck"]["test"]))

    env = _env(name)
    assert env["CSC_ENV"] == "prod"
    assert env["CSC_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env[f"{prefix}PORT"] == str(port)
    url = env[f"{prefix}DATABASE_URL"]
    pattern = rf"postgresql://{database}:\$\{{[^}}]+\}}@postgres:5432/{database}"
    assert re.fullmatch(pattern, url), url


@pytest.mark.parametrize("name", list(APPS))
def test_command_package_exists(name: str) -> None:
    argv = _argv(SERVICES[name]["command"])
    target = next(a for a in argv if a.endswith(".app:create_app"))
    package = target.split(".", 1)[0]
    matches = [p for p in ROOT.glob(f"services/*/src/{package}") if p.is_dir()]
    assert matches, f"no services/*/src/{package}"
    assert (matches[0].parents[1] / "migrations").is_dir()


def test_kafka_runs_in_kraft_mode() -> None:
    kafka = SERVICES["kafka"]
    assert str(kafka["image"]).startswith("apache/kafka:")
    env = _env("kafka")
    assert "controller" in env["KAFKA_PROCESS_ROLES"].split(",")
    assert "broker" in env["KAFKA_PROCESS_ROLES"].split(",")
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"].lower() == "false"
    assert "zookeeper" not in COMPOSE_TEXT.lower()
    assert "kafka-broker-api-versions" in " ".join(_argv(kafka["healthcheck"]["test"]))


def test_no_password_literal_in_compose() -> None:
    for name in SERVICES:
        for key, value in _env(name).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|_KEY$", key):
                assert _is_substitution(value), f"{name}.{key} is a literal"
            for userinfo in USERINFO_RE.findall(value):
                assert _is_substitution(userinfo), f"{name}.{key} has a literal password"
    # And nowhere in the raw text either (comments, commands...).
    found = USERINFO_RE.findall(COMPOSE_TEXT)
    assert len(found) >= len(APPS)
    for userinfo in found:
        assert _is_substitution(userinfo), userinfo


def test_env_example_defines_every_required_variable() -> None:
    required = {
        m.group(1)
        for m in SUBST_RE.finditer(COMPOSE_TEXT)
        if m.group(2) is None or "?" in m.group(2)
    }
    assert required, "expected ${VAR} substitutions for the secrets"
    example = (ROOT / "deploy" / ".env.example").read_text()
    defined = set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=", example, flags=re.M))
    assert required <= defined, sorted(required - defined)


def test_postgres_creates_every_database() -> None:
    pg = SERVICES["postgres"]
    assert any("init-databases.sh:/docker-entrypoint-initdb.d/" in str(v) for v in pg["volumes"])
    script = (ROOT / "deploy" / "postgres" / "init-databases.sh").read_text()
    calls = dict(re.findall(r"^csc_create_database (\w+) (\w+)$", script, flags=re.M))
    assert set(calls) == {db for _, _, _, db in APPS.values()}
    env = _env("postgres")
    for password_var in calls.values():
        assert _is_substitution(env[password_var]), password_var
    assert 'CREATE DATABASE :"name"' in script
    assert "PASSWORD :'password'" in script


def test_dockerfile_is_multi_stage_and_runs_as_non_root() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / "Dockerfile").read_text().splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
    froms = [i for i, ln in enumerate(lines) if ln.upper().startswith("FROM ")]
    assert len(froms) >= 2
    final = lines[froms[-1] :]
    users = [ln.split(None, 1)[1] for ln in final if ln.upper().startswith("USER ")]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":", 1)[0]
    assert user not in {"root", "0"}
    assert any(ln.startswith("ENV") and "/app/.venv/bin" in ln for ln in final)


def test_dockerignore_keeps_secrets_and_venv_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git"} <= set(ignored)


def _substitute(value: str, env: dict[str, str]) -> str:
    """What compose makes of a value, given the .env (refusing what it would refuse)."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        got = env.get(name, "")
        if op in (":?", "?") and not got:
            raise AssertionError(f"{name} is required by compose but empty in .env.example")
        if op in (":-", "-") and not got:
            return arg
        return got

    return SUBST_RE.sub(one, value)


@pytest.mark.parametrize("name", list(APPS))
def test_each_service_starts_on_compose_settings_and_a_filled_env_example(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every setting a service needs in production is in compose or .env.example:
    its settings load with CSC_ENV=prod (which refuses a default or empty secret)."""
    from shared.cli.keys import fill_env
    from shared.cli.services import SERVICES as KNOWN

    dotenv = dict(
        line.split("=", 1)
        for line in fill_env((ROOT / "deploy" / ".env.example").read_text()).splitlines()
        if line and not line.startswith("#")
    )
    for var in list(os.environ):
        if var.startswith(("CSC_", *(info[2] for info in APPS.values()))):
            monkeypatch.delenv(var)
    for var, value in _env(name).items():
        monkeypatch.setenv(var, _substitute(value, dotenv))
    settings = KNOWN[name].spec().settings_cls()
    assert settings.env == "prod"
    assert settings.database_url.get_secret_value().startswith(f"postgresql://{APPS[name][3]}")


def test_csc_keys_env_fills_every_secret_with_a_fresh_value() -> None:
    from shared.cli.keys import fill_env

    example = (ROOT / "deploy" / ".env.example").read_text()
    first, second = fill_env(example), fill_env(example)
    values = [line.split("=", 1)[1] for line in first.splitlines()
              if line and not line.startswith("#")]
    assert values and all(values)
    assert first != second  # fresh each time
    kid = dict(line.split("=", 1) for line in first.splitlines()
               if line and not line.startswith("#"))
    assert kid["IDENTITY_SSN_KEYS"].split(":", 1)[0] == kid["IDENTITY_SSN_ACTIVE_KEY"]
