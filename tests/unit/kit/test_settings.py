"""ServiceSettings: per-service prefix, system-wide CSC_* variables, and the
refusal to start outside dev with an empty or default secret."""

from __future__ import annotations

import os

import pytest
from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from shared.servicekit.settings import InsecureSettingsError, ServiceSettings


class S(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")
    api_key: SecretStr = SecretStr("change-me")


REAL_DSN = "postgresql://demo:s3cret-pw@db.internal:5432/demo"
REAL_KEY = "k-7f3a9c1e0b"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("CSC_", "DEMO_", "SERVICE_")):
            monkeypatch.delenv(name)


def test_prod_with_defaults_names_every_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "prod")
    with pytest.raises(InsecureSettingsError) as caught:
        S()
    message = str(caught.value)
    assert "DEMO_DATABASE_URL still has its default value" in message
    assert "DEMO_API_KEY still has its default value" in message
    assert "change-me" not in message
    assert "csc:csc" not in message


def test_unset_env_means_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InsecureSettingsError, match="CSC_ENV=prod"):
        S()


def test_test_env_is_not_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "test")
    with pytest.raises(InsecureSettingsError, match="DEMO_API_KEY"):
        S()


def test_empty_secret_is_named_as_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "prod")
    monkeypatch.setenv("DEMO_DATABASE_URL", REAL_DSN)
    monkeypatch.setenv("DEMO_API_KEY", "")
    with pytest.raises(InsecureSettingsError) as caught:
        S()
    message = str(caught.value)
    assert "DEMO_API_KEY is empty" in message
    assert "DEMO_DATABASE_URL" not in message


def test_whitespace_secret_counts_as_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "prod")
    monkeypatch.setenv("DEMO_DATABASE_URL", REAL_DSN)
    monkeypatch.setenv("DEMO_API_KEY", "   ")
    with pytest.raises(InsecureSettingsError, match="DEMO_API_KEY is empty"):
        S()


def test_refusal_never_repeats_the_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # A pydantic ValidationError would print every input value, the real
    # database password included; the refusal must be our own error.
    monkeypatch.setenv("CSC_ENV", "prod")
    monkeypatch.setenv("DEMO_DATABASE_URL", REAL_DSN)
    monkeypatch.setenv("DEMO_API_KEY", "")
    with pytest.raises(InsecureSettingsError) as caught:
        S()
    assert not isinstance(caught.value, ValidationError)
    assert "s3cret-pw" not in str(caught.value)
    assert "s3cret-pw" not in repr(caught.value)


def test_dev_starts_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "dev")
    s = S()
    assert s.env == "dev"
    assert s.api_key.get_secret_value() == "change-me"


def test_prod_with_real_values_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "prod")
    monkeypatch.setenv("DEMO_DATABASE_URL", REAL_DSN)
    monkeypatch.setenv("DEMO_API_KEY", REAL_KEY)
    s = S()
    assert s.env == "prod"
    assert s.database_url.get_secret_value() == REAL_DSN
    assert s.api_key.get_secret_value() == REAL_KEY
    assert REAL_KEY not in repr(s)


def test_common_variables_ignore_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "dev")
    monkeypatch.setenv("CSC_KAFKA_BOOTSTRAP", "kafka-1:9093")
    monkeypatch.setenv("DEMO_KAFKA_BOOTSTRAP", "wrong:1")
    monkeypatch.setenv("CSC_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("DEMO_PORT", "8123")
    s = S()
    assert s.kafka_bootstrap == "kafka-1:9093"
    assert s.log_level == "DEBUG"
    assert s.port == 8123
    assert s.bind_port == 8123


def test_prefixed_env_is_not_read_for_common_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_ENV", "dev")  # only CSC_ENV counts
    with pytest.raises(InsecureSettingsError):
        S()


def test_bind_port_falls_back_to_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "dev")
    assert S().bind_port == S.default_port


def test_unknown_env_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "production")
    with pytest.raises(ValidationError):
        S()


def test_bad_number_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "dev")
    monkeypatch.setenv("CSC_KAFKA_PARTITIONS", "0")
    with pytest.raises(ValidationError, match=r"kafka_partitions|CSC_KAFKA_PARTITIONS"):
        S()


class Aliased(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")
    shared_token: SecretStr = Field(
        SecretStr("dev-token"), validation_alias=AliasChoices("CSC_SHARED_TOKEN")
    )
    made_key: SecretStr = Field(default_factory=lambda: SecretStr("factory-default"))


def test_secret_read_through_an_alias_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSC_ENV", "prod")
    monkeypatch.setenv("DEMO_DATABASE_URL", REAL_DSN)
    with pytest.raises(InsecureSettingsError) as caught:
        Aliased()
    message = str(caught.value)
    assert "CSC_SHARED_TOKEN still has its default value" in message
    assert "DEMO_SHARED_TOKEN" not in message
    assert "DEMO_MADE_KEY still has its default value" in message


def test_aliased_secret_with_real_values_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSC_ENV", "prod")
    monkeypatch.setenv("DEMO_DATABASE_URL", REAL_DSN)
    monkeypatch.setenv("CSC_SHARED_TOKEN", "t-real")
    monkeypatch.setenv("DEMO_MADE_KEY", "m-real")
    s = Aliased()
    assert s.shared_token.get_secret_value() == "t-real"
    assert s.made_key.get_secret_value() == "m-real"
