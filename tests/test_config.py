"""load_settings reads a dict env and refuses a bad value with a message naming it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from smsapp.config import ConfigError, load_settings

GOOD_SECRET = "s" * 40
PRODUCTION = {
    "SMSAPP_ENV": "production",
    "SMSAPP_SECRET_KEY": GOOD_SECRET,
    "PUBLIC_BASE_URL": "https://sms.example.com",
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_it_defaults_to_development_sqlite_under_data_sandbox_and_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.env == "development"
    assert not settings.is_production
    assert settings.data_dir == Path("data")
    assert settings.database.dialect == "sqlite"
    assert settings.database.sqlite_path == Path("data") / "smsapp.db"
    assert settings.sms_provider == "sandbox"
    assert settings.public_base_url == "http://127.0.0.1:8080"
    assert settings.twilio_api_base_url == "https://api.twilio.com"
    assert not settings.secure_cookies
    assert (tmp_path / "data" / "secret_key").exists()


@pytest.mark.parametrize(
    ("url", "dialect", "expected"),
    [
        ("sqlite:///relative/app.db", "sqlite", "relative/app.db"),
        ("sqlite:////abs/app.db", "sqlite", "/abs/app.db"),
        ("postgresql://u:pw@db:5432/smsapp", "postgresql", None),
        ("postgres://u@db/smsapp", "postgresql", None),
    ],
)
def test_it_reads_good_database_urls(
    data_dir: Path, url: str, dialect: str, expected: str | None
) -> None:
    settings = load_settings({"SMSAPP_DATA_DIR": str(data_dir), "DATABASE_URL": url})
    assert settings.database.dialect == dialect
    if expected is None:
        assert settings.database.url.startswith("postgresql://")
        assert settings.database.sqlite_path is None
    else:
        assert settings.database.sqlite_path == Path(expected)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://x",
        "postgresql://",
        "postgresql://host",
        "postgresql://host/",
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "postgresql://u@host:notaport/db",
        "postgresql://u@host:99999/db",
    ],
)
def test_it_refuses_a_malformed_database_url_naming_it(data_dir: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings({"SMSAPP_DATA_DIR": str(data_dir), "DATABASE_URL": url})


@pytest.mark.parametrize(
    "url",
    [
        "mysql://admin:hunter2secret@db/smsapp",
        "postgresql://admin:hunter2secret@/",
        "postgresql://admin:hunter2secret@db",
        "postgresql://admin:hunter2secret@db:port/smsapp",
    ],
)
def test_it_never_echoes_a_database_password_in_the_error(data_dir: Path, url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"SMSAPP_DATA_DIR": str(data_dir), "DATABASE_URL": url})
    assert "DATABASE_URL" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


def test_it_redacts_the_password_of_a_good_postgres_url(data_dir: Path) -> None:
    settings = load_settings(
        {"SMSAPP_DATA_DIR": str(data_dir), "DATABASE_URL": "postgresql://u:hunter2@db/smsapp"}
    )
    assert settings.database.redacted() == "postgresql://u:***@db/smsapp"


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"SMSAPP_SECRET_KEY": ""}, "SMSAPP_SECRET_KEY"),
        ({"SMSAPP_SECRET_KEY": "too-short"}, "at least 32 characters"),
        ({"PUBLIC_BASE_URL": "http://sms.example.com"}, "https"),
        ({"PUBLIC_BASE_URL": ""}, "https"),
    ],
)
def test_it_refuses_production_without_a_strong_secret_and_https(
    data_dir: Path, overrides: dict[str, str], complaint: str
) -> None:
    env = {**PRODUCTION, "SMSAPP_DATA_DIR": str(data_dir), **overrides}
    with pytest.raises(ConfigError, match="production") as caught:
        load_settings(env)
    assert complaint in str(caught.value)
    assert not (data_dir / "secret_key").exists()


def test_it_starts_in_production_with_a_secret_and_an_https_base_url(data_dir: Path) -> None:
    settings = load_settings({**PRODUCTION, "SMSAPP_DATA_DIR": str(data_dir)})
    assert settings.is_production
    assert settings.secret_key == GOOD_SECRET
    assert settings.public_base_url == "https://sms.example.com"
    assert settings.secure_cookies
    assert not (data_dir / "secret_key").exists()


def test_it_reads_the_secret_key_from_a_file(data_dir: Path, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("f" * 48 + "\n", encoding="utf-8")
    env = {
        "SMSAPP_ENV": "production",
        "SMSAPP_SECRET_KEY_FILE": str(secret_file),
        "PUBLIC_BASE_URL": "https://sms.example.com",
        "SMSAPP_DATA_DIR": str(data_dir),
    }
    assert load_settings(env).secret_key == "f" * 48


def test_it_refuses_a_secret_file_it_cannot_read(data_dir: Path, tmp_path: Path) -> None:
    env = {"SMSAPP_SECRET_KEY_FILE": str(tmp_path / "missing"), "SMSAPP_DATA_DIR": str(data_dir)}
    with pytest.raises(ConfigError, match="SMSAPP_SECRET_KEY_FILE"):
        load_settings(env)


def test_it_makes_a_development_secret_once_and_keeps_it_private(data_dir: Path) -> None:
    first = load_settings({"SMSAPP_DATA_DIR": str(data_dir)})
    second = load_settings({"SMSAPP_DATA_DIR": str(data_dir)})
    secret_file = data_dir / "secret_key"
    assert len(first.secret_key) >= 32
    assert second.secret_key == first.secret_key
    assert secret_file.read_text(encoding="utf-8").strip() == first.secret_key
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600


def test_it_prefers_a_given_secret_to_making_one_in_development(data_dir: Path) -> None:
    settings = load_settings({"SMSAPP_DATA_DIR": str(data_dir), "SMSAPP_SECRET_KEY": GOOD_SECRET})
    assert settings.secret_key == GOOD_SECRET
    assert not (data_dir / "secret_key").exists()


@pytest.mark.parametrize(
    "twilio",
    [
        {},
        {"TWILIO_ACCOUNT_SID": "AC123"},
        {"TWILIO_AUTH_TOKEN": "token"},
    ],
)
def test_it_needs_the_twilio_sid_and_token_for_twilio(
    data_dir: Path, twilio: dict[str, str]
) -> None:
    env = {"SMSAPP_DATA_DIR": str(data_dir), "SMS_PROVIDER": "twilio", **twilio}
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        load_settings(env)


def test_it_takes_twilio_with_its_credentials(data_dir: Path) -> None:
    settings = load_settings(
        {
            "SMSAPP_DATA_DIR": str(data_dir),
            "SMS_PROVIDER": "Twilio",
            "TWILIO_ACCOUNT_SID": "AC123",
            "TWILIO_AUTH_TOKEN": "token",
            "TWILIO_API_BASE_URL": "http://127.0.0.1:9999/",
        }
    )
    assert settings.sms_provider == "twilio"
    assert settings.twilio_account_sid == "AC123"
    assert settings.twilio_api_base_url == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMS_PROVIDER", "nexmo"),
        ("SANDBOX_WEBHOOK_SECRET", "not-a-standard-webhooks-secret"),
        ("SMTP_URL", "http://mail.example.com"),
        ("SMTP_URL", "mail.example.com:587"),
        ("SMSAPP_ENV", "staging"),
        ("PUBLIC_BASE_URL", "sms.example.com"),
        ("SHORT_LINK_BASE_URL", "ftp://s.example.com"),
        ("ALERT_WEBHOOK_URL", "not a url"),
        ("SMSAPP_SEND_LEASE_SECONDS", "1"),
        ("SMSAPP_SEND_LEASE_SECONDS", "5 minutes"),
        ("SMSAPP_SANDBOX_LATENCY_SECONDS", "-1"),
        ("SMSAPP_SANDBOX_FAILURE_RATE", "1.5"),
        ("SMSAPP_SANDBOX_FAILURE_RATE", "nan"),
    ],
)
def test_it_refuses_a_bad_setting_naming_it(data_dir: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({"SMSAPP_DATA_DIR": str(data_dir), name: value})


def test_it_takes_good_optional_settings(data_dir: Path) -> None:
    settings = load_settings(
        {
            "SMSAPP_DATA_DIR": str(data_dir),
            "SANDBOX_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "SMTP_URL": "smtp+starttls://user:pw@mail.example.com:587",
            "SHORT_LINK_BASE_URL": "https://s.example.com/",
            "METRICS_TOKEN": "metrics",
            "SMSAPP_SEND_LEASE_SECONDS": "60",
            "SMSAPP_SANDBOX_LATENCY_SECONDS": "0.5",
            "SMSAPP_SANDBOX_FAILURE_RATE": "0",
        }
    )
    assert (settings.send_lease_seconds, settings.sandbox_latency_seconds) == (60, 0.5)
    assert settings.sandbox_failure_rate == 0
    assert settings.sandbox_webhook_secret == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert settings.smtp_url == "smtp+starttls://user:pw@mail.example.com:587"
    assert settings.short_link_base_url == "https://s.example.com"
    assert settings.metrics_token == "metrics"
