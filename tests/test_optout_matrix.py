"""The opt-out matrix of pack §10, table-driven: what each inbound body asks for."""

from __future__ import annotations

import pytest

from smsapp.optout_matrix import classify, normalise

# (body, tenant extra keywords, on the tenant's DNC list, expected)
CASES: list[tuple[str, tuple[str, ...], bool, str]] = [
    # whole-text keywords, any case, punctuation and emoji stripped
    ("STOP", (), False, "opt_out"),
    ("stop", (), False, "opt_out"),
    ("  Stop.  ", (), False, "opt_out"),
    ("STOP!!!", (), False, "opt_out"),
    ("🛑 stop 🛑", (), False, "opt_out"),
    ("stop🙏", (), False, "opt_out"),
    ("S.T.O.P", (), False, "opt_out"),
    ("StopAll", (), False, "opt_out"),
    ("stop all", (), False, "opt_out"),
    ("unsubscribe", (), False, "opt_out"),
    ("Un-subscribe", (), False, "opt_out"),
    ("UNSUB", (), False, "opt_out"),
    ("cancel", (), False, "opt_out"),
    ("End", (), False, "opt_out"),
    ("quit.", (), False, "opt_out"),
    ("optout", (), False, "opt_out"),
    ("opt-out", (), False, "opt_out"),
    ("Opt out", (), False, "opt_out"),
    ("REVOKE", (), False, "opt_out"),
    ("remove", (), False, "opt_out"),
    ("No more", (), False, "opt_out"),
    # first word
    ("Stop please", (), False, "opt_out"),
    ("STOP sending me this", (), False, "opt_out"),
    ("stop, I never signed up", (), False, "opt_out"),
    ("Unsubscribe me now", (), False, "opt_out"),
    ("opt out of everything", (), False, "opt_out"),
    # courtesy words around a keyword
    ("Please stop", (), False, "opt_out"),
    ("pls unsubscribe thanks", (), False, "opt_out"),
    ("Cancel please!", (), False, "opt_out"),
    # clear phrases
    ("Please remove me from your list", (), False, "opt_out"),
    ("can you opt me out", (), False, "opt_out"),
    ("Take me off this list!", (), False, "opt_out"),
    ("no more texts thanks", (), False, "opt_out"),
    ("How do I unsubscribe?", (), False, "opt_out"),
    ("I'd like to opt out", (), False, "opt_out"),
    ("please stop texting me", (), False, "opt_out"),
    ("Do not text this number again", (), False, "opt_out"),
    ("Leave me alone", (), False, "opt_out"),
    # negated or not a request: replies
    ("don't stop", (), False, "reply"),
    ("Don’t stop!", (), False, "reply"),
    ("please don't stop texting me", (), False, "reply"),
    ("don't remove me, I love these", (), False, "reply"),
    ("I do not want to unsubscribe", (), False, "reply"),
    ("stopping by at 5", (), False, "reply"),
    ("Stopped by yesterday, great shop", (), False, "reply"),
    ("Can I cancel my booking for Friday?", (), False, "reply"),
    ("the end of the month works", (), False, "reply"),
    ("What time do you close?", (), False, "reply"),
    ("🙂👍", (), False, "reply"),
    ("", (), False, "reply"),
    # tenant extra keywords: whole text only
    ("NO", ("NO",), False, "opt_out"),
    ("no.", ("NO",), False, "opt_out"),
    ("No thanks", ("NO",), False, "opt_out"),
    ("no worries, see you then", ("NO",), False, "reply"),
    ("NO", (), False, "reply"),
    ("Go away", ("GO AWAY",), False, "opt_out"),
    ("go-away!", ("GO AWAY",), False, "opt_out"),
    ("baaa", ("baaa",), False, "opt_out"),
    # opt-in only from the DNC list
    ("START", (), True, "opt_in"),
    ("start", (), False, "reply"),
    ("Yes", (), True, "opt_in"),
    ("yes", (), False, "reply"),
    ("Yes please!", (), True, "opt_in"),
    ("unstop", (), True, "opt_in"),
    ("Subscribe", (), True, "opt_in"),
    ("RESUME 😀", (), True, "opt_in"),
    ("yes I'll be there", (), True, "reply"),
    ("STOP", (), True, "opt_out"),
    # help
    ("HELP", (), False, "help"),
    ("help?", (), False, "help"),
    ("Info", (), False, "help"),
    ("HELP", (), True, "help"),
    ("help me choose a size", (), False, "reply"),
]


@pytest.mark.parametrize(("body", "extra", "on_dnc", "expected"), CASES)
def test_it_classifies_inbound_bodies(
    body: str, extra: tuple[str, ...], on_dnc: bool, expected: str
) -> None:
    assert classify(body, extra, on_dnc) == expected


def test_the_table_is_large_enough_and_covers_every_class() -> None:
    assert len(CASES) >= 40
    assert {case[3] for case in CASES} == {"opt_out", "opt_in", "help", "reply"}


@pytest.mark.parametrize(
    ("body", "normalised"),
    [
        ("  stop!! ", "STOP"),
        ("Don't  STOP", "DONT STOP"),
        ("opt-out", "OPT OUT"),
        ("🛑stop🛑", "STOP"),
        ("Café, 5pm?", "CAFÉ 5PM"),
        ("1️⃣ yes", "1 YES"),
        ("\u200dstop\u200d", "STOP"),
    ],
)
def test_it_normalises_case_punctuation_and_emoji(body: str, normalised: str) -> None:
    assert normalise(body) == normalised
