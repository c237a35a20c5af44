"""Phone normalisation: table-driven, plus checks that the single number_type call decides
exactly what is_valid_number + number_type would, and that the Australian mobile shortcut
(no parse for the common shapes) answers exactly what the full parse answers."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from smsapp.phones import SMS_CAPABLE, au_mobile_shape, is_alphanumeric_sender, normalise_phone


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


def _by_full_parse(raw: str, region: str) -> tuple[str | None, str | None]:
    """What normalise_phone must answer, from phonenumbers' parse and checks alone."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None, "unparseable"
    if not phonenumbers.is_valid_number(number):
        return None, "invalid_number"
    if phonenumbers.number_type(number) not in SMS_CAPABLE:
        return None, "not_mobile"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def _scatter(rng: random.Random, text: str) -> str:
    """`text` with spaces and hyphens dropped in at random places, as people type them."""
    out = []
    for char in text:
        if rng.random() < 0.3:
            out.append(rng.choice([" ", "-", "  ", " - "]))
        out.append(char)
    if rng.random() < 0.2:
        out.append(rng.choice([" ", "-"]))
    return "".join(out)


def test_it_answers_like_the_full_parse_for_every_australian_mobile_shape() -> None:
    rng = random.Random(4)
    # Every 4-digit start of a 9-digit national number beginning with 4 (the mobile ranges are
    # decided by those digits), with a random rest, plus the lowest and highest of each.
    nationals = [f"4{p:03d}{rng.randrange(10**5):05d}" for p in range(1000)]
    nationals += [f"4{p:03d}00000" for p in range(0, 1000, 7)]
    nationals += [f"4{p:03d}99999" for p in range(3, 1000, 7)]
    shapes = [
        "0{}", "+61{}", "61{}", "{}", "+61 {}", "(0{})", "+610{}", "0061{}", "0{}1",
    ]  # fmt: skip
    # Near misses around the shapes, so that a shortcut taking too much is caught too.
    starts = ["", "0", "1", "6", "61", "610", "+6", "+61", "+610", "+64", "+1", "00", "0061", "4"]
    fast = 0
    for national in nationals:
        near = [f"{rng.choice(starts)}{{}}{rng.choice(['', '0', '5'])}" for _ in range(3)]
        for shape in shapes + near:
            raw = shape.format(national)
            for text in (raw, _scatter(rng, raw)):
                fast += au_mobile_shape(text.strip()) is not None
                got = normalise_phone(text, "AU")
                assert (got.e164, got.reason) == _by_full_parse(text, "AU"), text
    assert fast >= len(nationals) * 7  # the shortcut was taken for the common shapes
    assert au_mobile_shape("0412345678") == au_mobile_shape("+61 412-345-678") == "412345678"


@pytest.mark.parametrize(
    "raw",
    [
        "0412\u00a0345\u00a0678",  # no-break spaces: not a shape the shortcut takes
        "\u0660\u0664\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
        "\uff10\uff14\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width digits
        "++61412345678",
        "-0412345678-",
        "0412345678 ext 12",
        "04123456789",
        "041234567",
        "-" * 300 + "0412345678",
    ],
)
def test_it_answers_like_the_full_parse_for_look_alikes(raw: str) -> None:
    got = normalise_phone(raw, "AU")
    assert (got.e164, got.reason) == _by_full_parse(raw.strip(), "AU")


def test_it_takes_the_shortcut_only_for_australia() -> None:
    # 0412345678 read as a New Zealand number is no Australian mobile.
    nz = normalise_phone("0412345678", "nz")
    assert (nz.e164, nz.reason) == _by_full_parse("0412345678", "NZ") != ("+61412345678", None)
    assert normalise_phone("0412345678", "au").e164 == "+61412345678"


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
