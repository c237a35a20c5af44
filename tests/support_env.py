"""The environment variables the app reads, for tests that start it with a clean configuration."""

from __future__ import annotations

# Besides every SMSAPP_* variable; each may also come as NAME_FILE.
CONFIG_NAMES = (
    "DATABASE_URL",
    "PUBLIC_BASE_URL",
    "SHORT_LINK_BASE_URL",
    "SMTP_URL",
    "SMS_PROVIDER",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "SANDBOX_WEBHOOK_SECRET",
    "METRICS_TOKEN",
    "ALERT_WEBHOOK_URL",
)


def is_config_name(name: str) -> bool:
    """Whether the app reads the environment variable `name` as configuration."""
    return name.startswith("SMSAPP_") or name.removesuffix("_FILE") in CONFIG_NAMES
