"""Phone normalisation: table-driven, plus a check that the single number_type call decides
exactly what is_valid_number + number_type would."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from smsapp.phones import SMS_CAPABLE, is_alphanumeric_sender, normalise_phone


@pytest.mark.parametrize(
    ("raw", "region", "e164", "reason"),
    [
        ("0412 345 678", "AU", "+61412345678", None),
        ("+61412345678", "US", "+61412345678", None),
        ("04 1234 5678", "AU", "+61412345678", None),
        ("(02) 9876 5432", "AU", None, "not_mobile"),
        ("1300 123 456", "AU", None, "not_mobile"),
        ("0412", "AU", None, "invalid_number"),
        ("", "AU", None, "missing_phone"),
        ("   ", "AU", None, "missing_phone"),
        ("hello", "AU", None, "unparseable"),
        ("021 234 5678", "NZ", "+64212345678", None),
        ("(415) 555-2671", "US", "+14155552671", None),  # US numbers are FIXED_LINE_OR_MOBILE
        ("07911 123456", "GB", "+447911123456", None),
    ],
)
def test_it_normalises_to_e164_or_says_why_not(
    raw: str, region: str, e164: str | None, reason: str | None
) -> None:
    result = normalise_phone(raw, region)
    assert (result.e164, result.reason) == (e164, reason)


def test_it_decides_like_is_valid_number_and_number_type_together() -> None:
    rng = random.Random(1)
    samples = [f"0{rng.randrange(10**8, 10**10)}" for _ in range(3000)]
    samples += [
        f"+{rng.choice([1, 44, 61, 64, 65, 81])}{rng.randrange(10**7, 10**11)}" for _ in range(3000)
    ]
    for raw in samples:
        try:
            number = phonenumbers.parse(raw, "AU")
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(number):
            expected = "invalid_number"
        elif phonenumbers.number_type(number) not in SMS_CAPABLE:
            expected = "not_mobile"
        else:
            expected = None
        assert normalise_phone(raw, "AU").reason == expected, raw


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ACME", True),
        ("Acme Shoes", True),
        ("Shop24", True),
        ("12345", False),
        ("TwelveChars1", False),
        ("", False),
        ("Acme!", False),
    ],
)
def test_it_recognises_alphanumeric_sender_ids(value: str, ok: bool) -> None:
    assert is_alphanumeric_sender(value) is ok
