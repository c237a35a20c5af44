"""Message encoding (pack §8): the GSM 03.38 tables transcribed again here from the standard,
a table of counts derived from it, suggestions, `render_for_count`, and a seeded random check
of `split_parts` against an independent splitter working on the wire units themselves
(septets with their escapes, UTF-16 code units)."""

from __future__ import annotations

import random
import struct

import pytest

from smsapp.encoding import (
    BASIC_TABLE,
    GSM_BASIC,
    GSM_EXTENSION,
    GSM_REPLACEMENTS,
    Encoding,
    analyse,
    render_for_count,
    split_parts,
    units_of,
)

# 3GPP TS 23.038 §6.2.1 (and unicode.org GSM0338.TXT): septet → Unicode code point, basic
# table. ASCII ranges are filled in below; 0x1B (escape) has no character.
BASIC_SPECIALS = {
    0x00: 0x0040, 0x01: 0x00A3, 0x02: 0x0024, 0x03: 0x00A5, 0x04: 0x00E8, 0x05: 0x00E9,
    0x06: 0x00F9, 0x07: 0x00EC, 0x08: 0x00F2, 0x09: 0x00C7, 0x0A: 0x000A, 0x0B: 0x00D8,
    0x0C: 0x00F8, 0x0D: 0x000D, 0x0E: 0x00C5, 0x0F: 0x00E5, 0x10: 0x0394, 0x11: 0x005F,
    0x12: 0x03A6, 0x13: 0x0393, 0x14: 0x039B, 0x15: 0x03A9, 0x16: 0x03A0, 0x17: 0x03A8,
    0x18: 0x03A3, 0x19: 0x0398, 0x1A: 0x039E, 0x1C: 0x00C6, 0x1D: 0x00E6, 0x1E: 0x00DF,
    0x1F: 0x00C9, 0x24: 0x00A4, 0x40: 0x00A1, 0x5B: 0x00C4, 0x5C: 0x00D6, 0x5D: 0x00D1,
    0x5E: 0x00DC, 0x5F: 0x00A7, 0x60: 0x00BF, 0x7B: 0x00E4, 0x7C: 0x00F6, 0x7D: 0x00F1,
    0x7E: 0x00FC, 0x7F: 0x00E0,
}  # fmt: skip
BASIC = {
    **{code: code for code in range(0x20, 0x80) if code != 0x60},  # ASCII where it coincides
    **BASIC_SPECIALS,
}
# Extension table: escape 0x1B, then this septet.
EXTENSION = {
    "\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
    "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65,
}  # fmt: skip
ESC = 0x1B
SEPTET_OF = {chr(cp): septet for septet, cp in BASIC.items()}
SPECIALS = "".join(chr(cp) for cp in BASIC_SPECIALS.values())  # @£$¥èéùìòÇ LF Ø ø CR Å å Δ …


def test_the_basic_table_is_the_standards_septet_by_septet() -> None:
    assert len(BASIC) == 127
    for septet, code_point in BASIC.items():
        assert BASIC_TABLE[septet] == chr(code_point), hex(septet)
    assert GSM_BASIC == {chr(cp) for cp in BASIC.values()}
    assert "\x1b" not in GSM_BASIC


def test_the_extension_table_is_the_standards() -> None:
    assert set(EXTENSION) == GSM_EXTENSION
    assert not GSM_BASIC & GSM_EXTENSION


def test_every_printable_ascii_character_but_the_backtick_is_gsm() -> None:
    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    assert analyse(printable.replace("`", "")).encoding == "GSM-7"
    assert analyse(printable).unicode_characters == ("`",)


def test_every_replacement_is_gsm_and_replaces_a_non_gsm_character() -> None:
    for character, replacement in GSM_REPLACEMENTS.items():
        assert character not in GSM_BASIC | GSM_EXTENSION, repr(character)
        assert all(ch in GSM_BASIC for ch in replacement), repr(character)


A = "a"
EMOJI = "😀"  # U+1F600: a surrogate pair in UTF-16

# (text, encoding, units, segments, per_segment, units of each part)
CASES: list[tuple[str, str, Encoding, int, int, int, list[int]]] = [
    ("empty", "", "GSM-7", 0, 0, 160, []),
    ("one char", A, "GSM-7", 1, 1, 160, [1]),
    ("160 GSM", A * 160, "GSM-7", 160, 1, 160, [160]),
    ("161 GSM", A * 161, "GSM-7", 161, 2, 153, [153, 8]),
    ("153x2", A * 306, "GSM-7", 306, 2, 153, [153, 153]),
    ("153x2+1", A * 307, "GSM-7", 307, 3, 153, [153, 153, 1]),
    ("153x3", A * 459, "GSM-7", 459, 3, 153, [153, 153, 153]),
    ("153x3+1", A * 460, "GSM-7", 460, 4, 153, [153, 153, 153, 1]),
    ("euro alone", "€", "GSM-7", 2, 1, 160, [2]),
    ("form feed", "\f", "GSM-7", 2, 1, 160, [2]),
    ("bracket counts 2", "[", "GSM-7", 2, 1, 160, [2]),
    ("all extension", "^{}\\[~]|€\f", "GSM-7", 20, 1, 160, [20]),
    ("158 + euro = 160", A * 158 + "€", "GSM-7", 160, 1, 160, [160]),
    ("159 + euro = 161", A * 159 + "€", "GSM-7", 161, 2, 153, [153, 8]),
    ("152 + euro moves whole", A * 152 + "€" + A * 10, "GSM-7", 164, 2, 153, [152, 12]),
    ("151 + euro ends a part", A * 151 + "€" + A * 10, "GSM-7", 163, 2, 153, [153, 10]),
    ("306 septets, 3 parts", A * 152 + "€" + A * 152, "GSM-7", 306, 3, 153, [152, 153, 1]),
    ("80 euros", "€" * 80, "GSM-7", 160, 1, 160, [160]),
    ("81 euros", "€" * 81, "GSM-7", 162, 2, 153, [152, 10]),
    ("pipes at a boundary", A * 152 + "||" + A * 10, "GSM-7", 166, 2, 153, [152, 14]),
    ("CRLF", "\r\n", "GSM-7", 2, 1, 160, [2]),
    ("CRLF in text", "Hello\r\nWorld", "GSM-7", 12, 1, 160, [12]),
    ("basic specials", SPECIALS, "GSM-7", len(SPECIALS), 1, 160, [len(SPECIALS)]),
    ("dollar and currency sign", "$¤", "GSM-7", 2, 1, 160, [2]),
    ("capital C cedilla", "Ça va", "GSM-7", 5, 1, 160, [5]),
    ("small c cedilla", "ça va", "UCS-2", 5, 1, 70, [5]),
    ("accents in the table", "èéùìòà ÄÖÑÜäöñü ÉÅåØøÆæß", "GSM-7", 24, 1, 160, [24]),
    ("È is not (only è)", "È", "UCS-2", 1, 1, 70, [1]),
    ("ó is not (only ò)", "ó", "UCS-2", 1, 1, 70, [1]),
    ("decomposed é", "e\u0301", "UCS-2", 2, 1, 70, [2]),
    ("Greek capital omega", "Ω", "GSM-7", 1, 1, 160, [1]),
    ("ohm sign", "\u2126", "UCS-2", 1, 1, 70, [1]),
    ("Greek alpha looks Latin", "\u0391", "UCS-2", 1, 1, 70, [1]),
    ("escape char itself", "\x1b", "UCS-2", 1, 1, 70, [1]),
    ("tab", "a\tb", "UCS-2", 3, 1, 70, [3]),
    ("backtick", "`", "UCS-2", 1, 1, 70, [1]),
    ("NBSP", "10\u00a0am", "UCS-2", 5, 1, 70, [5]),
    ("one emoji", EMOJI, "UCS-2", 2, 1, 70, [2]),
    ("70 UCS-2", "ç" * 70, "UCS-2", 70, 1, 70, [70]),
    ("71 UCS-2", "ç" * 71, "UCS-2", 71, 2, 67, [67, 4]),
    ("67x2", "ç" * 134, "UCS-2", 134, 2, 67, [67, 67]),
    ("67x2+1", "ç" * 135, "UCS-2", 135, 3, 67, [67, 67, 1]),
    ("euro is 1 unit in UCS-2", "ç" + "€" * 69, "UCS-2", 70, 1, 70, [70]),
    ("68 + emoji = 70", A * 68 + EMOJI, "UCS-2", 70, 1, 70, [70]),
    ("69 + emoji = 71", A * 69 + EMOJI, "UCS-2", 71, 2, 67, [67, 4]),
    ("35 emoji", EMOJI * 35, "UCS-2", 70, 1, 70, [70]),
    ("36 emoji", EMOJI * 36, "UCS-2", 72, 2, 67, [66, 6]),
    ("pair ends a part", A * 65 + EMOJI + A * 10, "UCS-2", 77, 2, 67, [67, 10]),
    ("pair would straddle", A * 66 + EMOJI + A * 10, "UCS-2", 78, 2, 67, [66, 12]),
    ("134 units, 3 parts", A * 66 + EMOJI + A * 66, "UCS-2", 134, 3, 67, [66, 67, 1]),
    ("mixed with one ç", "Merci " + "a" * 60 + " ça", "UCS-2", 69, 1, 70, [69]),
    ("smart apostrophe", A * 150 + "’", "UCS-2", 151, 3, 67, [67, 67, 17]),
    ("em dash", "Sale — today", "UCS-2", 12, 1, 70, [12]),
    ("CJK", "你好", "UCS-2", 2, 1, 70, [2]),
    ("astral CJK", "\U00020000", "UCS-2", 2, 1, 70, [2]),
    ("flag", "🇦🇺", "UCS-2", 4, 1, 70, [4]),
    ("ZWJ family", "👨\u200d👩\u200d👧", "UCS-2", 8, 1, 70, [8]),
]


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment", "part_units"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_it_counts_like_the_standard(
    text: str,
    encoding: Encoding,
    units: int,
    segments: int,
    per_segment: int,
    part_units: list[int],
) -> None:
    result = analyse(text)
    assert (result.encoding, result.units, result.segments, result.per_segment) == (
        encoding,
        units,
        segments,
        per_segment,
    )
    parts = split_parts(text)
    assert [units_of(part, encoding) for part in parts] == part_units
    assert "".join(parts) == text
    assert list(result.parts) == parts


def test_the_table_has_enough_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("character", sorted(EXTENSION))
def test_each_extension_character_counts_two_septets(character: str) -> None:
    result = analyse(character)
    assert (result.encoding, result.units) == ("GSM-7", 2)
    # ... and is never split from its escape: 152 basic + it = 154 > 153.
    assert [units_of(p, "GSM-7") for p in split_parts(A * 152 + character + A * 9)] == [152, 11]


@pytest.mark.parametrize("character", list(SPECIALS))
def test_each_basic_special_counts_one_septet(character: str) -> None:
    result = analyse(character)
    assert (result.encoding, result.units, result.unicode_characters) == ("GSM-7", 1, ())
    assert analyse(character * 160).segments == 1


# --- suggestions ----------------------------------------------------------------------------

# (text, unicode_characters, suggestions as "character→replacement", suggested_text)
SUGGESTION_CASES: list[tuple[str, list[str], list[str], str | None]] = [
    ("plain", [], [], None),
    ("It’s", ["’"], ["’→'"], "It's"),
    ("‘a’ ‚b‛", ["‘", "’", "‚", "‛"], ["‘→'", "’→'", "‚→'", "‛→'"], "'a' 'b'"),
    ("“Hi” „x‟", ["“", "”", "„", "‟"], ['“→"', '”→"', '„→"', '‟→"'], '"Hi" "x"'),
    ("a – b — c", ["–", "—"], ["–→-", "—→-"], "a - b - c"),
    ("Wait…", ["…"], ["…→..."], "Wait..."),
    ("10\u00a0am", ["\u00a0"], ["\u00a0→ "], "10 am"),
    (
        "thin\u2009space\u202fnarrow",
        ["\u2009", "\u202f"],
        ["\u2009→ ", "\u202f→ "],
        "thin space narrow",
    ),
    ("x´y", ["´"], ["´→'"], "x'y"),
    ("Hi\u200bthere\u00ad", ["\u200b", "\u00ad"], ["\u200b→", "\u00ad→"], "Hithere"),
    ("a\tb", ["\t"], ["\t→ "], "a b"),
    ("It’s 😀", ["’", EMOJI], ["’→'"], None),  # the emoji stays: still UCS-2
    ("ça’", ["ç", "’"], ["’→'"], None),  # letters are never suggested
    ("😀a’😀ç’", [EMOJI, "’", "ç"], ["’→'"], None),  # distinct, first appearance
    ("café €5 – {link}", ["–"], ["–→-"], "café €5 - {link}"),
]


@pytest.mark.parametrize(
    ("text", "unicode_characters", "suggestions", "suggested_text"), SUGGESTION_CASES
)
def test_it_names_the_unicode_characters_and_suggests_gsm_replacements(
    text: str, unicode_characters: list[str], suggestions: list[str], suggested_text: str | None
) -> None:
    result = analyse(text)
    assert list(result.unicode_characters) == unicode_characters
    assert [f"{s.character}→{s.replacement}" for s in result.suggestions] == suggestions
    assert result.suggested_text == suggested_text
    if suggested_text is not None:
        assert analyse(suggested_text).encoding == "GSM-7"


def test_a_smart_apostrophe_more_than_doubles_the_cost_and_the_suggestion_undoes_it() -> None:
    result = analyse(A * 150 + "’")
    assert (result.encoding, result.segments) == ("UCS-2", 3)
    assert result.suggested_text is not None
    assert (analyse(result.suggested_text).encoding, analyse(result.suggested_text).segments) == (
        "GSM-7",
        1,
    )


def test_as_json_has_the_contract_keys_and_the_extras() -> None:
    body = analyse("It’s " + A * 70).as_json()
    assert body == {
        "encoding": "UCS-2",
        "units": 75,
        "segments": 2,
        "per_segment": 67,
        "unicode_characters": ["’"],
        "suggestions": [{"character": "’", "replacement": "'"}],
        "suggested_text": "It's " + A * 70,
        "parts": [{"text": "It’s " + A * 62, "units": 67}, {"text": A * 8, "units": 8}],
    }


# --- render_for_count -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "footer", "link_length", "rendered"),
    [
        ("Hi {link}", None, 5, "Hi xxxxx"),
        ("{link} and {link}", None, 3, "xxx and xxx"),
        ("no link", None, 22, "no link"),
        ("Sale", "Acme: reply STOP to opt out", 22, "Sale\nAcme: reply STOP to opt out"),
        ("Go {link}", "Acme: STOP to opt out", 4, "Go xxxx\nAcme: STOP to opt out"),
        ("", "Acme: reply STOP", 22, "Acme: reply STOP"),
        ("Sale", "", 22, "Sale"),
        ("Hi {link}", None, 0, "Hi "),
        ("{first_name} {link}", None, 2, "{first_name} xx"),
    ],
)
def test_render_for_count_puts_the_link_length_and_the_footer_in(
    body: str, footer: str | None, link_length: int, rendered: str
) -> None:
    assert render_for_count(body, footer=footer, link_length=link_length) == rendered


def test_render_for_count_counts_what_will_be_sent() -> None:
    footer = "Acme: reply STOP to opt out"  # 27 septets, + 1 for the newline
    body = A * 110 + " {link}"  # 111 + 22 = 133
    assert analyse(body).units == 119  # raw: `{` and `}` are 2 septets each, the link 8
    assert analyse(render_for_count(body, footer=None, link_length=22)).units == 133
    full = analyse(render_for_count(body, footer=footer, link_length=22))
    assert (full.units, full.segments) == (161, 2)
    # A UCS-2 body keeps the link and footer at one unit a character.
    ucs2 = analyse(render_for_count("Café’ {link}", footer=footer, link_length=22))
    assert (ucs2.encoding, ucs2.units, ucs2.segments) == ("UCS-2", 6 + 22 + 1 + 27, 1)


def test_render_for_count_refuses_a_negative_link_length() -> None:
    with pytest.raises(ValueError, match="link_length"):
        render_for_count("{link}", footer=None, link_length=-1)


# --- properties, against an independent splitter over the wire units -----------------------


def wire(text: str, encoding: Encoding) -> list[int]:
    """The text as sent: septets (escape + code for the extension table), or UTF-16 units."""
    if encoding == "UCS-2":
        raw = text.encode("utf-16-be")  # strict: raises on a lone surrogate
        return list(struct.unpack(f">{len(raw) // 2}H", raw))
    units: list[int] = []
    for ch in text:
        units += [ESC, EXTENSION[ch]] if ch in EXTENSION else [SEPTET_OF[ch]]
    return units


def wire_split(units: list[int], encoding: Encoding) -> list[list[int]]:
    """Cut at the limit, one unit earlier when the cut would separate an escape from its
    character or a high surrogate from its low one."""
    single, multi = (160, 153) if encoding == "GSM-7" else (70, 67)
    if len(units) <= single:
        return [units] if units else []
    chunks, pos = [], 0
    while pos < len(units):
        end = min(pos + multi, len(units))
        if end < len(units):
            last = units[end - 1]
            if (encoding == "GSM-7" and last == ESC) or (
                encoding == "UCS-2" and 0xD800 <= last <= 0xDBFF
            ):
                end -= 1
        chunks.append(units[pos:end])
        pos = end
    return chunks


POOLS = {
    "gsm": "".join(chr(cp) for cp in BASIC.values()) + "".join(EXTENSION),
    "extension-heavy": "a€[]{}",
    "ucs2": "abcç’–😀🇦🇺\U00020000€{",
    "emoji-heavy": "a😀👍",
}


@pytest.mark.parametrize("pool", sorted(POOLS))
def test_split_parts_agrees_with_a_splitter_over_the_wire_units(pool: str) -> None:
    rng = random.Random(f"encoding-{pool}")
    alphabet = POOLS[pool]
    for _ in range(1500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 520)))
        result = analyse(text)
        parts = split_parts(text)
        assert "".join(parts) == text
        assert all(parts)
        assert len(parts) == result.segments
        limit = result.per_segment
        assert all(units_of(part, result.encoding) <= limit for part in parts)
        assert result.units == len(wire(text, result.encoding))
        # Each part is valid on its own (no lone surrogate, no dangling escape) and the cut
        # points are exactly those of the independent splitter.
        assert [wire(part, result.encoding) for part in parts] == wire_split(
            wire(text, result.encoding), result.encoding
        )
        for part in parts:
            part.encode("utf-16-le")
            if result.encoding == "GSM-7":
                assert wire(part, "GSM-7")[-1] != ESC


def test_it_counts_parts_fast_exactly_as_analyse_does() -> None:
    import random

    from smsapp.encoding import count_parts

    rng = random.Random(11)
    pools = ["abc XYZ 123", "abc€[]{}^~|\\", "abc’é😀", "x" * 3 + "😀€ç"]
    for pool in pools:
        for _ in range(800):
            text = "".join(rng.choice(pool) for _ in range(rng.randrange(0, 400)))
            analysis = analyse(text)
            assert count_parts(text) == (analysis.encoding, analysis.segments), text
