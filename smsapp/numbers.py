"""Sending numbers (and alphanumeric sender IDs) of a tenant."""

from __future__ import annotations

from smsapp.clock import Clock
from smsapp.db import Database
from smsapp.phones import is_alphanumeric_sender, normalise_phone


class NumberError(ValueError):
    pass


async def add_sending_number(
    db: Database, clock: Clock, *, tenant_id: int, value: str, provider: str = "sandbox"
) -> int:
    """Add a number (E.164) or sender ID to a tenant; adding the same one again is a no-op.
    A number that belongs to another tenant is refused."""
    value = value.strip()
    if value.startswith("+") or value[:1].isdigit():
        normalised = normalise_phone(value, "AU")
        if not normalised.ok:
            raise NumberError(f"{value!r} is not a valid mobile number ({normalised.reason})")
        assert normalised.e164 is not None
        phone, kind = normalised.e164, "phone"
    elif is_alphanumeric_sender(value):
        phone, kind = value, "alphanumeric"
    else:
        raise NumberError(
            f"{value!r} is neither a phone number nor an alphanumeric sender ID "
            "(1–11 letters, digits or spaces)"
        )
    now = clock.now()
    new_id = await db.val(
        "numbers.insert",
        tenant_id=tenant_id,
        phone_e164=phone,
        kind=kind,
        provider=provider,
        warmup_started_on=now.date(),
        now=now,
    )
    if new_id is not None:
        return int(new_id)
    existing = await db.one("numbers.by_phone", phone_e164=phone)
    assert existing is not None
    if existing["tenant_id"] != tenant_id:
        raise NumberError(f"{phone} already belongs to another tenant")
    return int(existing["id"])
