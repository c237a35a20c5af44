"""The opt-out matrix of pack §10: what an inbound text asks for. Pure: no I/O.

    classify(body, extra_keywords, on_dnc) → "opt_out" | "opt_in" | "help" | "reply"

The text is trimmed, upper-cased and stripped of punctuation and emoji. Apostrophes are
dropped ("don't" → DONT); every other character that is not a letter or a digit becomes a
space ("stop!!" → STOP, "opt-out" → OPT OUT, "🛑 stop 🛑" → STOP). A second, compact form
without any space catches spelled-apart keywords ("S.T.O.P", "un-subscribe").

The Spam Act asks that any clear unsubscribe request be honoured, so the rules err towards
opting out, and are checked first:
  1. the whole text is an opt-out keyword (STOP, UNSUBSCRIBE, CANCEL, END, QUIT, OPT OUT, …)
     or one of the tenant's own keywords (optout_keywords, e.g. NO);
  2. its first word is STOP, STOPALL, UNSUBSCRIBE, UNSUB or OPTOUT (or it starts OPT OUT);
  3. it holds a clear phrase (REMOVE ME, OPT ME OUT, TAKE ME OFF, NO MORE TEXTS, …) that is
     not negated by one of the three words before it ("please don't remove me" is a reply).
A leading or trailing courtesy word (PLEASE, PLS, THANKS, …) is set aside first, so "Stop
please" and "please unsubscribe" opt out while "please don't stop" stays a reply.
Then opt-in (START, YES, UNSTOP, SUBSCRIBE, RESUME as the whole text, only when the number
is on the tenant's list: a plain "yes" from a subscribed person is a reply), then help
(HELP or INFO as the whole text), and everything else is a reply ("stopping by at 5").

Tenant keywords are whole-text only: a word such as NO is far too common to act on as the
first word of a longer message ("no worries, see you then").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Literal

Classification = Literal["opt_out", "opt_in", "help", "reply"]
CLASSIFICATIONS: tuple[Classification, ...] = ("opt_out", "opt_in", "help", "reply")

OPT_OUT_WHOLE = frozenset(
    {
        "STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "UNSUB", "CANCEL", "END", "QUIT",
        "OPTOUT", "OPT OUT", "REVOKE", "REMOVE", "NO MORE",
    }
)  # fmt: skip
OPT_OUT_WHOLE_COMPACT = frozenset(w.replace(" ", "") for w in OPT_OUT_WHOLE)
OPT_OUT_FIRST_WORD = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "UNSUB", "OPTOUT"})
OPT_OUT_PHRASES = (
    "REMOVE ME",
    "OPT ME OUT",
    "OPT OUT",
    "TAKE ME OFF",
    "UNSUBSCRIBE ME",
    "UNSUBSCRIBE",
    "STOP TEXTING",
    "STOP MESSAGING",
    "STOP SENDING",
    "STOP CONTACTING",
    "STOP SPAMMING",
    "DO NOT TEXT",
    "DONT TEXT",
    "DO NOT MESSAGE",
    "DONT MESSAGE",
    "DO NOT CONTACT",
    "DONT CONTACT",
    "NO MORE TEXTS",
    "NO MORE TEXT",
    "NO MORE MESSAGES",
    "NO MORE SMS",
    "LEAVE ME ALONE",
)
# Words that, among the three before a phrase, turn it around ("don't remove me").
NEGATIONS = frozenset(
    {"DONT", "NOT", "NEVER", "WONT", "DIDNT", "DOESNT", "CANT", "SHOULDNT", "WOULDNT", "ISNT"}
)
COURTESY_LEADING = ("PLEASE", "PLS", "PLZ", "KINDLY")
COURTESY_TRAILING = ("PLEASE", "PLS", "PLZ", "THANKS", "THANK YOU", "THX", "TY")
OPT_IN_WHOLE = frozenset({"START", "YES", "UNSTOP", "SUBSCRIBE", "RESUME"})
HELP_WHOLE = frozenset({"HELP", "INFO"})
APOSTROPHES = frozenset("'\u2018\u2019\u02bc`\u00b4")


def normalise(body: str) -> str:
    """Upper-case words separated by single spaces: punctuation, symbols and emoji gone."""
    out: list[str] = []
    for ch in body.upper():
        if ch in APOSTROPHES:
            continue
        category = unicodedata.category(ch)
        # Letters and digits stay; combining marks (accents, emoji variation selectors)
        # belong to the character before them and are dropped with it when it is a symbol.
        if category[0] in ("L", "N"):
            out.append(ch)
        elif category[0] == "M":
            continue
        else:
            out.append(" ")
    return " ".join("".join(out).split())


def _strip_courtesy(text: str) -> str:
    changed = True
    while changed and text:
        changed = False
        for word in COURTESY_LEADING:
            if text.startswith(word + " "):
                text, changed = text[len(word) + 1 :], True
        for word in COURTESY_TRAILING:
            if text.endswith(" " + word):
                text, changed = text[: -len(word) - 1], True
    return text


def _holds_phrase(words: list[str], phrase: str) -> bool:
    """Whether `phrase` occurs as whole words, with no negation among the 3 words before."""
    target = phrase.split()
    size = len(target)
    for start in range(len(words) - size + 1):
        if words[start : start + size] == target:
            before = words[max(0, start - 3) : start]
            if not NEGATIONS.intersection(before):
                return True
    return False


def is_opt_out(text: str, extra_keywords: Iterable[str] = ()) -> bool:
    """`text` as `normalise` returns it."""
    core = _strip_courtesy(text)
    compact = core.replace(" ", "")
    extras = {" ".join(k.upper().split()) for k in extra_keywords}
    extras_compact = {k.replace(" ", "") for k in extras}
    if core in OPT_OUT_WHOLE or compact in OPT_OUT_WHOLE_COMPACT:
        return True
    if core in extras or (compact and compact in extras_compact):
        return True
    words = core.split()
    if not words:
        return False
    if words[0] in OPT_OUT_FIRST_WORD or words[:2] == ["OPT", "OUT"]:
        return True
    return any(_holds_phrase(words, phrase) for phrase in OPT_OUT_PHRASES)


def _is_whole(text: str, keywords: frozenset[str]) -> bool:
    core = _strip_courtesy(text)
    return core in keywords or core.replace(" ", "") in keywords


def classify(body: str, extra_keywords: Iterable[str] = (), on_dnc: bool = False) -> Classification:
    """What the inbound `body` asks for (pack §10). `extra_keywords`: the tenant's own opt-out
    words; `on_dnc`: whether the sender's number is on the tenant's do-not-contact list."""
    text = normalise(body)
    if is_opt_out(text, extra_keywords):
        return "opt_out"
    if on_dnc and _is_whole(text, OPT_IN_WHOLE):
        return "opt_in"
    if _is_whole(text, HELP_WHOLE):
        return "help"
    return "reply"
