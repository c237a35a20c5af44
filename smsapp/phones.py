"""Phone numbers, with `phonenumbers` only (pack §6): parse with the row's country (else the
tenant's default), keep only valid SMS-capable numbers, store E.164."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberDesc,
    PhoneNumberFormat,
    PhoneNumberType,
)
from phonenumbers.phonenumberutil import _number_type_helper

SMS_CAPABLE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")

# The shortcut for the shapes nearly every Australian mobile number arrives in, once spaces
# and hyphens are dropped: 0412345678, +61412345678, 61412345678 and 412345678 (a spreadsheet
# ate the 0). For each of them `phonenumbers.parse(text, "AU")` gives country code 61 and
# national number 4XXXXXXXX: it ignores spaces and hyphens, and strips the national prefix 0,
# or the country code 61 because 614XXXXXXXX is no Australian number. So the parse, which costs
# more than the rest together, is skipped. The type is still phonenumbers' own: `number_type`
# finds the region of +61 numbers by asking each of AU, CC and CX in turn for the number's type
# in that region (`_number_type_helper`) and answers the first that is not UNKNOWN; AU comes
# first, so its answer, when not UNKNOWN, is `number_type`'s, found in one step instead of
# two. tests/test_phones.py checks every shape and near miss against the full parse.
_AU_MOBILE_SHAPE = re.compile(r"(?:\+61|61|0)?(4[0-9]{8})")
_SEPARATORS = str.maketrans("", "", " -")
_SHAPE_MAX_CHARS = 40  # far below phonenumbers' 250-character limit on what it parses
_AU = PhoneMetadata.metadata_for_region("AU")
# The region order and metadata the shortcut relies on; with any other, the full path is taken.
_AU_ANSWERS_FIRST = (
    _AU is not None
    and _AU.leading_digits is None
    and COUNTRY_CODE_TO_REGION_CODE.get(61, ())[:1] == ("AU",)
)
# The types `_number_type_helper` tries, in its order, before fixed line and mobile.
_TYPES_BEFORE_MOBILE = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
                        "pager", "uan", "voicemail")  # fmt: skip


def _pattern_for(desc: PhoneNumberDesc | None, digits: int) -> re.Pattern[str] | None:
    """`desc`'s pattern when a national number of `digits` digits may match it (the length
    test of phonenumbers' `_is_number_matching_desc`), else None: no such number matches."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and digits not in desc.possible_length:
        return None
    return re.compile(desc.national_number_pattern)


def _au_mobile_patterns() -> tuple[re.Pattern[str], re.Pattern[str], list[re.Pattern[str]]] | None:
    """AU's general and mobile patterns and those of the types tried before them, for 9-digit
    national numbers; None when the shortcut cannot answer as `_number_type_helper` would."""
    if _AU is None or not _AU_ANSWERS_FIRST or _AU.same_mobile_and_fixed_line_pattern:
        return None
    general, mobile = _pattern_for(_AU.general_desc, 9), _pattern_for(_AU.mobile, 9)
    if general is None or mobile is None:
        return None
    before = [_pattern_for(getattr(_AU, name), 9) for name in _TYPES_BEFORE_MOBILE]
    return general, mobile, [p for p in before if p is not None]


_AU_MOBILE_PATTERNS = _au_mobile_patterns()


@dataclass(frozen=True)
class Normalised:
    e164: str | None
    reason: str | None  # missing_phone, unparseable, invalid_number, not_mobile

    @property
    def ok(self) -> bool:
        return self.e164 is not None


def au_mobile_shape(text: str) -> str | None:
    """The national number (4XXXXXXXX) when `text` has one of the common Australian mobile
    shapes, else None (`phonenumbers.parse` decides)."""
    if len(text) > _SHAPE_MAX_CHARS:
        return None
    match = _AU_MOBILE_SHAPE.fullmatch(text.translate(_SEPARATORS))
    return match.group(1) if match else None


def _is_au_mobile(national: str) -> bool:
    """True when `_number_type_helper(national, AU)` answers MOBILE or FIXED_LINE_OR_MOBILE,
    decided with its own patterns, compiled once: it answers one of those two exactly when
    the number matches the general and the mobile pattern and none of the types it tries
    first (whether the fixed-line pattern matches too only picks which of the two). False:
    ask phonenumbers."""
    if _AU_MOBILE_PATTERNS is None:
        return False
    general, mobile, before = _AU_MOBILE_PATTERNS
    return (
        general.fullmatch(national) is not None
        and mobile.fullmatch(national) is not None
        and not any(p.fullmatch(national) for p in before)
    )


def _au_type(national: str) -> int:
    """`number_type` of +61 `national`, or UNKNOWN when AU does not know it (CC or CX may)."""
    assert _AU is not None
    return _number_type_helper(national, _AU) if _AU_ANSWERS_FIRST else PhoneNumberType.UNKNOWN


def normalise_phone(raw: str | None, region: str = "AU") -> Normalised:
    text = (raw or "").strip()
    if not text:
        return Normalised(None, "missing_phone")
    region = (region or "AU").upper()
    national = au_mobile_shape(text) if region == "AU" else None
    if national is not None:
        if _is_au_mobile(national):
            return Normalised("+61" + national, None)
        kind = _au_type(national)
        if kind in SMS_CAPABLE:
            return Normalised("+61" + national, None)
        if kind != PhoneNumberType.UNKNOWN:
            return Normalised(None, "not_mobile")
        number = PhoneNumber(country_code=61, national_number=int(national))
    else:
        try:
            number = phonenumbers.parse(text, region)
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
