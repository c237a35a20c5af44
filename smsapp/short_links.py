"""Short-link tokens (pack §9): at least 8 characters of [A-Za-z0-9] from `secrets`, unique per
(campaign, contact), carrying no personal data. Ours are 10 characters: ~59.5 bits."""

from __future__ import annotations

import secrets
import string
from datetime import timedelta

from smsapp.config import Settings

ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 10
TTL = timedelta(days=60)


def new_token() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(TOKEN_LENGTH))


def base_url(settings: Settings, tenant_override: str | None = None) -> str:
    """Where short links point: the tenant's own short host, else SHORT_LINK_BASE_URL, else
    PUBLIC_BASE_URL."""
    return (tenant_override or settings.short_link_base_url or settings.public_base_url).rstrip("/")


def short_url(base: str, token: str) -> str:
    return f"{base}/s/{token}"
