"""How an SMS body is encoded and how many parts it costs (pack §8). Pure: no I/O.

GSM 03.38 (3GPP TS 23.038 §6.2.1): a text made only of characters of the basic table (1 septet
each) and of the extension table (2 septets each: the escape 0x1B, then the character) goes out
as GSM-7; any other character makes the whole message UCS-2, counted in UTF-16 code units.

    encoding  single part  each part of a multi-part message
    GSM-7     160 septets  153 (the user data header takes 7)
    UCS-2     70 units     67

A part never ends between the escape and its character, nor between the two halves of a
surrogate pair, so the count of parts comes from actually splitting (`split_parts`), not from
dividing: 152 basic characters + `€` + 152 more is 306 septets (2 × 153) but 3 parts.

Decisions:
- Empty text: `units` 0, `segments` 0 (nothing would be sent), `split_parts("") == []`,
  encoding GSM-7 with `per_segment` 160.
- `unicode_characters` lists each distinct code point that is in neither table, in order of
  first appearance (an emoji is one entry; the pieces of an emoji ZWJ sequence are several).
  The ESC control character itself (U+001B) is not a character one can send as GSM-7: it
  counts as Unicode.
- `suggestions` offers a GSM replacement only where it keeps the meaning: typographic quotes,
  dashes, the ellipsis, odd spaces, invisible characters (replaced by nothing), `´` and `` ` ``.
  Letters are never "simplified" (`ç` is not suggested as `Ç` or `c`), and `suggested_text` is
  given only when applying every suggestion makes the whole text GSM-7, else None.
- The text is taken as given: no newline normalisation (CRLF is two septets, as sent). Lone
  surrogates are not valid text; the API refuses them, and here each counts one unit.
- `render_for_count` is what a campaign/template preview feeds to `analyse`: `{link}` at the
  real short-link length and the tenant footer appended (pack §7), so the count is what is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Encoding = Literal["GSM-7", "UCS-2"]

# The basic table, position = the septet's value (0x00–0x7F). 0x1B is the escape to the
# extension table, not a character: it is left out of GSM_BASIC below.
BASIC_TABLE: str = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00–0x0F (0x09 is the capital Ç; lower-case ç is not in GSM)
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10–0x1F (Greek capitals U+0394…, 0x1B escape)
    " !\"#¤%&'()*+,-./"  # 0x20–0x2F (0x24 is ¤, the currency sign; $ is 0x02)
    "0123456789:;<=>?"  # 0x30–0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40–0x4F
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50–0x5F
    "¿abcdefghijklmno"  # 0x60–0x6F
    "pqrstuvwxyzäöñüà"  # 0x70–0x7F
)
assert len(BASIC_TABLE) == 128

GSM_BASIC: frozenset[str] = frozenset(BASIC_TABLE) - {"\x1b"}

# The extension table (escape 0x1B + this septet): form feed 0x0A, ^ 0x14, { 0x28, } 0x29,
# \ 0x2F, [ 0x3C, ~ 0x3D, ] 0x3E, | 0x40, € 0x65. Each costs 2 septets.
GSM_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

# The largest body the preview API accepts, in characters (code points): 10 parts of 160, a
# common provider cap on concatenated messages. An input guard, not a sending rule.
MAX_BODY_CHARACTERS = 1600

LINK_PLACEHOLDER = "{link}"

_QUOTE = "'"
_DOUBLE = '"'
# Replacements that keep the meaning. Why they matter: one of these pasted from a word
# processor (a curly apostrophe, a non-breaking space) switches the WHOLE message to UCS-2,
# where a part holds 70 (67) instead of 160 (153): a 150-character text goes from 1 part to 3.
GSM_REPLACEMENTS: dict[str, str] = {
    # single quotes, apostrophes, primes, accents used as apostrophes
    "\u2018": _QUOTE,  # ‘ left single quotation mark
    "\u2019": _QUOTE,  # ’ right single quotation mark (the "smart" apostrophe)
    "\u201a": _QUOTE,  # ‚ single low-9 quotation mark
    "\u201b": _QUOTE,  # ‛ single high-reversed-9 quotation mark
    "\u2032": _QUOTE,  # ′ prime
    "\u02bc": _QUOTE,  # ʼ modifier letter apostrophe
    "\u00b4": _QUOTE,  # ´ acute accent
    "`": _QUOTE,  # grave accent (not in GSM)
    # double quotes
    "\u201c": _DOUBLE,  # “
    "\u201d": _DOUBLE,  # ”
    "\u201e": _DOUBLE,  # „
    "\u201f": _DOUBLE,  # ‟
    "\u2033": _DOUBLE,  # ″ double prime
    "\u00ab": _DOUBLE,  # «
    "\u00bb": _DOUBLE,  # »
    # dashes and minus
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # − minus sign
    # ellipsis
    "\u2026": "...",
    # spaces: no-break, typographic widths, ideographic; tab
    "\u00a0": " ",  # no-break space
    **{chr(c): " " for c in range(0x2000, 0x200B)},  # en quad … hair space
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    "\t": " ",
    # line and paragraph separators
    "\u2028": "\n",
    "\u2029": "\n",
    # invisible characters: replaced by nothing
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # zero-width no-break space / byte-order mark
}
assert all(set(v) <= GSM_BASIC for v in GSM_REPLACEMENTS.values())


@dataclass(frozen=True)
class Suggestion:
    character: str
    replacement: str

    def as_json(self) -> dict[str, str]:
        return {"character": self.character, "replacement": self.replacement}


@dataclass(frozen=True)
class Analysis:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # 160/153 (GSM-7), 70/67 (UCS-2): single part or multi-part
    unicode_characters: tuple[str, ...]
    suggestions: tuple[Suggestion, ...]
    suggested_text: str | None
    parts: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """The keys of pack §17, plus `suggested_text` and `parts` (each part's text, units)."""
        return {
            "encoding": self.encoding,
            "units": self.units,
            "segments": self.segments,
            "per_segment": self.per_segment,
            "unicode_characters": list(self.unicode_characters),
            "suggestions": [s.as_json() for s in self.suggestions],
            "suggested_text": self.suggested_text,
            "parts": [
                {"text": part, "units": units_of(part, self.encoding)} for part in self.parts
            ],
        }


def is_gsm7(text: str) -> bool:
    """Whether every character is in the basic or the extension table."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def encoding_of(text: str) -> Encoding:
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def unit_cost(ch: str, encoding: Encoding) -> int:
    """Septets of one GSM character (2 with the escape), or UTF-16 code units of one code point."""
    if encoding == "GSM-7":
        return 2 if ch in GSM_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def units_of(text: str, encoding: Encoding | None = None) -> int:
    enc = encoding or encoding_of(text)
    return sum(unit_cost(ch, enc) for ch in text)


def limits(encoding: Encoding) -> tuple[int, int]:
    """(single-part capacity, per-part capacity of a multi-part message)."""
    return (GSM_SINGLE, GSM_MULTI) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)


def split_parts(text: str) -> list[str]:
    """The parts the text is sent as: one when it fits a single part, else greedy parts of
    153 septets / 67 code units, each escape pair or surrogate pair kept whole (a Python str
    holds an astral character as one code point, so moving whole code points is enough).
    Greedy in order is also the fewest parts: a part only ever closes when the next
    indivisible unit does not fit."""
    if not text:
        return []
    encoding = encoding_of(text)
    single, multi = limits(encoding)
    costs = [unit_cost(ch, encoding) for ch in text]
    if sum(costs) <= single:
        return [text]
    parts: list[str] = []
    start = used = 0
    for i, cost in enumerate(costs):
        if used + cost > multi:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return parts


def _unicode_characters(text: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in GSM_BASIC and ch not in GSM_EXTENSION:
            seen.setdefault(ch, None)
    return tuple(seen)


def apply_suggestions(text: str) -> str:
    """The text with every known GSM replacement applied (other characters unchanged)."""
    return "".join(GSM_REPLACEMENTS.get(ch, ch) for ch in text)


def analyse(text: str) -> Analysis:
    encoding = encoding_of(text)
    single, multi = limits(encoding)
    parts = split_parts(text)
    unicode_characters = _unicode_characters(text)
    suggestions = tuple(
        Suggestion(ch, GSM_REPLACEMENTS[ch]) for ch in unicode_characters if ch in GSM_REPLACEMENTS
    )
    suggested_text: str | None = None
    if suggestions:
        candidate = apply_suggestions(text)
        if is_gsm7(candidate):
            suggested_text = candidate
    return Analysis(
        encoding=encoding,
        units=units_of(text, encoding),
        segments=len(parts),
        per_segment=multi if len(parts) > 1 else single,
        unicode_characters=unicode_characters,
        suggestions=suggestions,
        suggested_text=suggested_text,
        parts=tuple(parts),
    )


_GSM_ALL = GSM_BASIC | GSM_EXTENSION


def count_parts(text: str) -> tuple[Encoding, int]:
    """(encoding, number of parts) of `text`, equal to what `analyse` says, but without
    building the parts unless an escape pair or surrogate pair could straddle one: the queue
    builder counts every job of a campaign."""
    if not text:
        return "GSM-7", 0
    characters = set(text)
    if characters <= _GSM_ALL:
        encoding: Encoding = "GSM-7"
        paired = not characters.isdisjoint(GSM_EXTENSION)
        units = len(text) + sum(text.count(ch) for ch in characters & GSM_EXTENSION)
    else:
        encoding = "UCS-2"
        units = len(text.encode("utf-16-le")) // 2
        paired = units != len(text)
    single, multi = limits(encoding)
    if units <= single:
        return encoding, 1
    if not paired:
        return encoding, -(-units // multi)
    return encoding, len(split_parts(text))


def render_for_count(body: str, *, footer: str | None, link_length: int) -> str:
    """The text to count for a template (pack §7, §8): every `{link}` replaced by `link_length`
    GSM basic characters (the real short link's length; a short URL is letters, digits and
    `/:.-_`, each one septet), and `footer`, when given and not empty, appended on a new line
    (alone when the body is empty). The caller decides whether the footer is needed and fills
    its own placeholders (e.g. `{tenant_name}`); other placeholders are left as written."""
    if link_length < 0:
        raise ValueError("link_length must not be negative")
    text = body.replace(LINK_PLACEHOLDER, "x" * link_length)
    if footer:
        text = f"{text}\n{footer}" if text else footer
    return text
