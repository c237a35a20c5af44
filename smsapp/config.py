"""Configuration, read from the environment only (names: pack §17, all in .env.example).

Every secret may also come from a file named by `NAME_FILE` (Docker secrets). Values are
validated once, at start-up, and a bad one stops the process with a message naming it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Environment = Literal["development", "production"]
Provider = Literal["sandbox", "twilio"]

SECRET_NAMES = (
    "SMSAPP_SECRET_KEY",
    "TWILIO_AUTH_TOKEN",
    "SANDBOX_WEBHOOK_SECRET",
    "METRICS_TOKEN",
    "DATABASE_URL",
    "SMTP_URL",
)

DEFAULT_TWILIO_API_BASE_URL = "https://api.twilio.com"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what is wanted."""


@dataclass(frozen=True)
class DatabaseUrl:
    dialect: Literal["sqlite", "postgresql"]
    url: str
    sqlite_path: Path | None = None

    def redacted(self) -> str:
        if self.dialect == "sqlite":
            return self.url
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return parts._replace(netloc=netloc).geturl()
        return self.url


@dataclass(frozen=True)
class Settings:
    env: Environment
    data_dir: Path
    database: DatabaseUrl
    secret_key: str
    public_base_url: str
    short_link_base_url: str | None
    smtp_url: str | None
    sms_provider: Provider
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_api_base_url: str
    sandbox_webhook_secret: str | None
    metrics_token: str | None
    alert_webhook_url: str | None
    # How long a job may stay `sending` before another process reconciles it (pack §7).
    send_lease_seconds: int = 300
    # The built-in sandbox provider's simulated network (the demo).
    sandbox_latency_seconds: float = 3.0
    sandbox_failure_rate: float = 0.03

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def secure_cookies(self) -> bool:
        return self.public_base_url.startswith("https://")


def parse_database_url(raw: str, data_dir: Path) -> DatabaseUrl:
    if not raw:
        path = data_dir / "smsapp.db"
        return DatabaseUrl("sqlite", f"sqlite:///{path}", path)
    parts = urlsplit(raw)
    if parts.scheme == "sqlite":
        # sqlite:///relative/path.db and sqlite:////absolute/path.db, as SQLAlchemy and yoyo
        # read them
        path_text = raw[len("sqlite:///") :] if raw.startswith("sqlite:///") else ""
        if not path_text or path_text.endswith("/"):
            raise ConfigError(
                f"DATABASE_URL {raw!r} names no SQLite file: use sqlite:///path/to/file.db"
            )
        if path_text == ":memory:":
            raise ConfigError(
                "DATABASE_URL sqlite:///:memory: is not supported: the app opens several "
                "connections to one file; name a file instead"
            )
        path = Path(path_text)
        return DatabaseUrl("sqlite", f"sqlite:///{path}", path)
    if parts.scheme in ("postgresql", "postgres"):
        if not parts.hostname and "host=" not in (parts.query or ""):
            raise ConfigError(
                f"DATABASE_URL {_redact_url(raw)!r} names no host: "
                "use postgresql://user:password@host:5432/dbname"
            )
        if not parts.path.strip("/"):
            raise ConfigError(
                f"DATABASE_URL {_redact_url(raw)!r} names no database: "
                "use postgresql://user:password@host:5432/dbname"
            )
        try:
            parts.port  # noqa: B018  (raises ValueError on a malformed port)
        except ValueError as exc:
            raise ConfigError(f"DATABASE_URL {_redact_url(raw)!r} has a bad port: {exc}") from None
        normalised = "postgresql" + raw[len(parts.scheme) :]
        return DatabaseUrl("postgresql", normalised)
    raise ConfigError(
        f"DATABASE_URL {_redact_url(raw)!r} is not understood: use sqlite:///path/to/file.db "
        "or postgresql://user:password@host:5432/dbname"
    )


def _redact_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.password:
        return raw.replace(f":{parts.password}@", ":***@")
    return raw


def _read(env: Mapping[str, str], name: str) -> str | None:
    """`NAME` from the environment, or the contents of the file named by `NAME_FILE`."""
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={file_name!r} cannot be read: {exc.strerror}") from None
    value = env.get(name, "").strip()
    return value or None


def _http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} {value!r} must be an absolute http(s) URL, e.g. https://sms.example.com")
    return value.rstrip("/")


def _development_secret(data_dir: Path) -> str:
    """The demo keeps its own secret key in the data dir, made once and reused."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return key


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    mode = (env.get("SMSAPP_ENV") or "development").strip().lower()
    if mode not in ("development", "production"):
        raise ConfigError(f"SMSAPP_ENV {mode!r} must be 'development' or 'production'")

    data_dir = Path(env.get("SMSAPP_DATA_DIR") or "./data")
    database = parse_database_url(_read(env, "DATABASE_URL") or "", data_dir)

    public_base_url = _http_url(
        "PUBLIC_BASE_URL", env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:8080"
    )
    short_raw = env.get("SHORT_LINK_BASE_URL")
    short_link_base_url = _http_url("SHORT_LINK_BASE_URL", short_raw) if short_raw else None

    provider = (env.get("SMS_PROVIDER") or "sandbox").strip().lower()
    if provider not in ("sandbox", "twilio"):
        raise ConfigError(f"SMS_PROVIDER {provider!r} must be 'sandbox' or 'twilio'")
    twilio_sid = _read(env, "TWILIO_ACCOUNT_SID")
    twilio_token = _read(env, "TWILIO_AUTH_TOKEN")
    if provider == "twilio" and not (twilio_sid and twilio_token):
        raise ConfigError("SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    twilio_base = _http_url(
        "TWILIO_API_BASE_URL", env.get("TWILIO_API_BASE_URL") or DEFAULT_TWILIO_API_BASE_URL
    )

    sandbox_secret = _read(env, "SANDBOX_WEBHOOK_SECRET")
    if sandbox_secret and not sandbox_secret.startswith("whsec_"):
        raise ConfigError(
            "SANDBOX_WEBHOOK_SECRET must be a Standard Webhooks secret: whsec_<base64>"
        )

    smtp_url = _read(env, "SMTP_URL")
    if smtp_url and urlsplit(smtp_url).scheme not in ("smtp", "smtps", "smtp+starttls"):
        raise ConfigError(
            "SMTP_URL must look like smtp://user:password@host:587 (or smtps://, smtp+starttls://)"
        )

    alert_url = env.get("ALERT_WEBHOOK_URL")
    lease_raw = (env.get("SMSAPP_SEND_LEASE_SECONDS") or "300").strip()
    if not lease_raw.isdigit() or not 2 <= int(lease_raw) <= 86_400:
        raise ConfigError(
            f"SMSAPP_SEND_LEASE_SECONDS {lease_raw!r} must be a whole number of seconds "
            "from 2 to 86400 (longer than the provider's request timeout)"
        )
    latency = _number(env, "SMSAPP_SANDBOX_LATENCY_SECONDS", "3", 0.0, 3600.0)
    failure_rate = _number(env, "SMSAPP_SANDBOX_FAILURE_RATE", "0.03", 0.0, 1.0)
    secret_key = _read(env, "SMSAPP_SECRET_KEY")
    if mode == "production":
        problems = []
        if not secret_key:
            problems.append("SMSAPP_SECRET_KEY (or SMSAPP_SECRET_KEY_FILE) is required")
        elif len(secret_key) < 32:
            problems.append("SMSAPP_SECRET_KEY must be at least 32 characters")
        if not public_base_url.startswith("https://"):
            problems.append("PUBLIC_BASE_URL must be an https:// URL")
        if problems:
            raise ConfigError("SMSAPP_ENV=production refuses to start: " + "; ".join(problems))
        assert secret_key is not None  # refused above when missing
    elif not secret_key:
        secret_key = _development_secret(data_dir)

    return Settings(
        env=mode,  # type: ignore[arg-type]
        data_dir=data_dir,
        database=database,
        secret_key=secret_key,
        public_base_url=public_base_url,
        short_link_base_url=short_link_base_url,
        smtp_url=smtp_url,
        sms_provider=provider,  # type: ignore[arg-type]
        twilio_account_sid=twilio_sid,
        twilio_auth_token=twilio_token,
        twilio_api_base_url=twilio_base,
        sandbox_webhook_secret=sandbox_secret,
        metrics_token=_read(env, "METRICS_TOKEN"),
        alert_webhook_url=_http_url("ALERT_WEBHOOK_URL", alert_url) if alert_url else None,
        send_lease_seconds=int(lease_raw),
        sandbox_latency_seconds=latency,
        sandbox_failure_rate=failure_rate,
    )


def _number(env: Mapping[str, str], name: str, default: str, low: float, high: float) -> float:
    raw = (env.get(name) or default).strip()
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails too
        raise ConfigError(f"{name} {raw!r} must be a number from {low:g} to {high:g}")
    return value
