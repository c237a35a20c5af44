"""Field parsing and formatting shared by contacts, the do-not-contact list and suppression
rules, and the domain errors their handlers turn into HTTP answers (no aiohttp here).

Times: ISO-8601; a time without a zone (or a bare date) is read in the tenant's timezone, as
the CSV import reads `consent_at`. Times go out as ISO-8601 UTC with a `Z`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from smsapp.db import Executor
from smsapp.phones import normalise_phone

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
E164 = re.compile(r"^\+[1-9][0-9]{5,14}$")

PHONE_REASONS = {
    "missing_phone": "a phone number is required",
    "unparseable": "cannot be read as a phone number",
    "invalid_number": "is not a valid phone number",
    "not_mobile": "is not a mobile number, so it cannot receive SMS",
}


class DomainError(Exception):
    """A refusal worth a clear answer; `status` is the HTTP status a handler answers with."""

    status = 400

    def __init__(self, message: str, *, code: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


class InvalidInput(DomainError):
    status = 400

    def __init__(self, message: str, *, code: str = "bad_request", **extra: Any) -> None:
        super().__init__(message, code=code, **extra)


class NotFound(DomainError):
    status = 404

    def __init__(self, what: str) -> None:
        super().__init__(f"no such {what}", code="not_found")


class Conflict(DomainError):
    status = 409


@dataclass(frozen=True)
class TenantDefaults:
    country: str  # the region a number without its own country is parsed in
    timezone: str  # the zone a time without its own zone is read in


async def tenant_defaults(db: Executor, tenant_id: int) -> TenantDefaults:
    tenant = await db.one("tenancy.tenant_by_id", id=tenant_id)
    if tenant is None:
        raise NotFound("tenant")
    return TenantDefaults(str(tenant["default_country"]), str(tenant["timezone"]))


def require_phone(raw: object, region: str) -> str:
    """The E.164 form of `raw`, or InvalidInput with code `invalid_phone` and the reason."""
    if raw is not None and not isinstance(raw, str):
        raise InvalidInput(
            "phone must be a string", code="invalid_phone", reason="unparseable", field="phone"
        )
    result = normalise_phone(raw, region)
    if result.e164 is None:
        reason = result.reason or "invalid_number"
        explained = PHONE_REASONS.get(reason, reason)
        message = explained if reason == "missing_phone" else f"{raw!r} {explained}"
        raise InvalidInput(message, code="invalid_phone", reason=reason, field="phone")
    return result.e164


def lookup_phone(raw: str, region: str) -> str | None:
    """A number named in a URL: taken as is when already E.164 (an entry written from a
    provider's callback may hold a number this library no longer calls valid), else
    normalised; None when it cannot be any number."""
    text = raw.strip()
    if E164.match(text):
        return text
    return normalise_phone(text, region).e164


def optional_text(body: dict[str, Any], field: str, *, max_length: int = 200) -> str | None:
    """A trimmed string, None when absent, null or blank."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    text = value.strip()
    if len(text) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters", field=field)
    return text or None


def optional_email(body: dict[str, Any], field: str = "email") -> str | None:
    email = optional_text(body, field, max_length=320)
    if email is None:
        return None
    email = email.lower()
    if not EMAIL.match(email):
        raise InvalidInput(f"{field} {email!r} is not an email address", field=field)
    return email


def parse_instant(value: object, field: str, tz: str) -> datetime | None:
    """An ISO-8601 time (or date) as aware UTC; naive values are read in `tz`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be an ISO-8601 string or null", field=field)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{field} {value!r} is not an ISO-8601 time (e.g. 2026-01-31T09:30:00+11:00)",
            field=field,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """A stored time as ISO-8601 UTC with `Z`, as /healthz writes it."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse unknown keys: a misspelt field must not be silently ignored."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}",
            field=unknown[0],
        )
