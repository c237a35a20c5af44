"""Phone numbers, with `phonenumbers` only (pack §6): parse with the row's country (else the
tenant's default), keep only valid SMS-capable numbers, store E.164."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

SMS_CAPABLE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


@dataclass(frozen=True)
class Normalised:
    e164: str | None
    reason: str | None  # missing_phone, unparseable, invalid_number, not_mobile

    @property
    def ok(self) -> bool:
        return self.e164 is not None


def normalise_phone(raw: str | None, region: str = "AU") -> Normalised:
    text = (raw or "").strip()
    if not text:
        return Normalised(None, "missing_phone")
    try:
        number = phonenumbers.parse(text, (region or "AU").upper())
    except NumberParseException:
        return Normalised(None, "unparseable")
    # number_type is UNKNOWN exactly when is_valid_number is false (both match the national
    # number against its region's patterns), so one call decides both: the import parses
    # every row, and this halves the cost of each.
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        return Normalised(None, "invalid_number")
    if kind not in SMS_CAPABLE:
        return Normalised(None, "not_mobile")
    return Normalised(phonenumbers.format_number(number, PhoneNumberFormat.E164), None)


def is_alphanumeric_sender(value: str) -> bool:
    """An alphanumeric sender ID: up to 11 letters, digits or spaces, at least one letter."""
    return bool(ALPHANUMERIC_SENDER.match(value))
