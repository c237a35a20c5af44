# ruff: noqa: E501  (real user agents are long; they stay one per line)
"""The bot rules of pack §9, table-driven over real user agents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict

from smsapp.click_rules import REASONS, request_reason

NO_HEADERS: CIMultiDict[str] = CIMultiDict()

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

HUMANS = [
    # iOS Safari, iPhone and iPad
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 15_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.7 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    # Chrome on iOS and Android
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; moto g(60)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36",
    # Samsung Internet
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; SAMSUNG SM-G991B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/20.0 Chrome/106.0.5249.126 Mobile Safari/537.36",
    # Firefox on Android, iOS and desktop
    "Mozilla/5.0 (Android 14; Mobile; rv:120.0) Gecko/120.0 Firefox/120.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/120.0 Mobile/15E148 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0",
    # Desktop Chrome, Edge, Safari; Opera and Edge on Android
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 OPR/79.1.4195.76505",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 EdgA/119.0.2151.78",
    # In-app browsers a person taps through
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/441.0.0.33.113;FBBV/537488455;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
    "Mozilla/5.0 (Linux; Android 13; SM-G998B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36 Instagram 309.1.0.41.113 Android",
]

ROBOTS = [
    # Messaging link previews
    ("facebookexternalhit/1.1 Facebot Twitterbot/1.0", "link_preview"),  # iMessage
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "link_preview"),
    ("WhatsApp/2.23.20.0 A", "link_preview"),
    ("WhatsApp/2.2348.50 i", "link_preview"),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "link_preview"),
    ("TelegramBot (like TwitterBot)", "link_preview"),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
        "link_preview",
    ),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "link_preview"),
    ("Twitterbot/1.0", "link_preview"),
    (
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "link_preview",
    ),
    ("Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)", "link_preview"),
    # Mail and link scanners
    ("Microsoft Office Existence Discovery", "link_preview"),
    ("Mozilla/4.0 (compatible; ms-office; MSOffice 16)", "link_preview"),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b",
        "link_preview",
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/56.0.2924.87 Safari/537.36 Google (+https://developers.google.com/+/web/snippet/) Google-PageRenderer",
        "link_preview",
    ),
    (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        "link_preview",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        "link_preview",
    ),
    # Search engines and other crawlers (crawlerdetect's list)
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler"),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.199 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "crawler",
    ),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "crawler"),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "crawler"),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "crawler"),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", "crawler"),
    ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "crawler"),
    (
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        "crawler",
    ),
    ("curl/8.4.0", "crawler"),
    ("python-requests/2.31.0", "crawler"),
    ("Wget/1.21.4", "crawler"),
    ("Go-http-client/1.1", "crawler"),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
        "crawler",
    ),
    ("", "empty_agent"),
    ("   ", "empty_agent"),
]


def test_the_table_is_big_enough() -> None:
    assert len(HUMANS) + len(ROBOTS) >= 40
    assert {reason for _, reason in ROBOTS} == {"link_preview", "crawler", "empty_agent"}


@pytest.mark.parametrize("agent", HUMANS)
def test_it_counts_a_real_browser_as_human(agent: str) -> None:
    assert request_reason(agent, "GET", NO_HEADERS) is None


@pytest.mark.parametrize(("agent", "reason"), ROBOTS)
def test_it_marks_a_robot_with_its_reason(agent: str, reason: str) -> None:
    assert request_reason(agent, "GET", NO_HEADERS) == reason


def test_it_treats_a_missing_agent_as_empty() -> None:
    assert request_reason(None, "GET", NO_HEADERS) == "empty_agent"


PHONE = HUMANS[0]


def test_head_is_a_bot_whatever_the_agent() -> None:
    assert request_reason(PHONE, "HEAD", NO_HEADERS) == "head"
    assert request_reason(PHONE, "head", NO_HEADERS) == "head"


@pytest.mark.parametrize(
    "headers",
    [
        {"Purpose": "prefetch"},
        {"purpose": "Prefetch"},
        {"Sec-Purpose": "prefetch"},
        {"Sec-Purpose": "prefetch;prerender"},
        {"Sec-Purpose": "prefetch; anonymous-client-ip"},
        {"X-Moz": "prefetch"},
    ],
)
def test_a_prefetch_is_a_bot(headers: dict[str, str]) -> None:
    assert request_reason(PHONE, "GET", CIMultiDict(headers)) == "prefetch"


def test_a_prefetch_in_any_of_a_headers_values_is_a_bot() -> None:
    headers = CIMultiDict([("Sec-Purpose", "prerender"), ("sec-purpose", "prefetch")])
    assert request_reason(PHONE, "GET", headers) == "prefetch"


def test_unrelated_headers_do_not_make_a_bot() -> None:
    headers = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Purpose": ""}
    assert request_reason(PHONE, "GET", CIMultiDict(headers)) is None


def test_the_first_rule_that_holds_is_the_reason() -> None:
    """The request's rules in order; the time rules come after them (tests/test_hit_writer.py
    decides those, on both backends, as the fold does)."""
    assert request_reason("", "HEAD", CIMultiDict({"Purpose": "prefetch"})) == "head"
    assert request_reason("", "GET", CIMultiDict({"Purpose": "prefetch"})) == "prefetch"
    assert request_reason("", "GET", NO_HEADERS) == "empty_agent"
    assert request_reason("WhatsApp/2", "GET", NO_HEADERS) == "link_preview"
    assert request_reason(PHONE, "GET", NO_HEADERS) is None
    assert set(REASONS) == {
        "head", "prefetch", "empty_agent", "link_preview", "crawler", "too_soon", "burst"
    }  # fmt: skip
