"""Which short-link hits are bots (pack §9). A hit is a bot when any rule holds; the first rule
that holds is the hit's reason code:

    head          the method is HEAD (link checkers, unfurlers probing a URL)
    prefetch      `Purpose: prefetch`, `Sec-Purpose: prefetch…` or `X-Moz: prefetch`
    empty_agent   no User-Agent at all (scripts and scanners; every real browser sends one)
    link_preview  a messaging app's link-preview fetcher or a mail security scanner
    crawler       the user agent is on crawlerdetect's maintained crawler list
    too_soon      within 2 s of the message being sent (`send_jobs.sent_at`): a carrier or
                  handset scanner, since no person reads and taps that fast
    burst         within 1 s of the link's previous hit: one tap fetched twice, or a scanner

The rules that read the request alone (head … crawler) are here, pure, and the redirect decides
them as it journals the hit (`request_reason`). The two that need the link's story (too_soon,
burst) are decided when the hit writer folds hits into the database, by SQL on the links'
stored times (`short_links.fold…`, smsapp/queries/short_links.sql). See docs/click-integrity.md
for why each rule is there.
"""

from __future__ import annotations

import functools
import re

from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]
from multidict import MultiMapping

REASONS = ("head", "prefetch", "empty_agent", "link_preview", "crawler", "too_soon", "burst")

# Fetchers that make a link preview when a link is pasted or received, and the mail and
# messaging security scanners that open links before the person does. iMessage presents itself
# as `facebookexternalhit/1.1 Facebot Twitterbot/1.0`.
LINK_PREVIEW = re.compile(
    r"facebookexternalhit|facebot|facebookcatalog|twitterbot|whatsapp|slackbot|slack-imgproxy"
    r"|telegrambot|skypeuripreview|discordbot|linkedinbot|pinterestbot|redditbot|embedly"
    r"|iframely|mastodon|applebot|google-pagerenderer"
    r"|googleimageproxy|google-safety|google-read-aloud|google-inspectiontool|googleother"
    r"|feedfetcher-google|bingpreview|microsoftpreview|ms office|microsoft office"
    r"|msoffice|safelinks|ms-office|office existence discovery"
    r"|barracuda|mimecast|proofpoint|symantec|forcepoint|trendmicro",
    re.IGNORECASE,
)

_detector = CrawlerDetect()


@functools.lru_cache(maxsize=4096)
def _agent_reason(user_agent: str) -> str | None:
    if not user_agent.strip():
        return "empty_agent"
    if LINK_PREVIEW.search(user_agent):
        return "link_preview"
    if _detector.isCrawler(user_agent):
        return "crawler"
    return None


PREFETCH_HEADERS = ("Purpose", "Sec-Purpose", "X-Moz")


def _is_prefetch(headers: MultiMapping[str]) -> bool:
    # Looked up by name (case-insensitive in the request's headers), not a pass over them all:
    # this runs on every hit.
    for name in PREFETCH_HEADERS:
        for value in headers.getall(name, ()):
            if "prefetch" in value.lower():
                return True
    return False


def request_reason(user_agent: str | None, method: str, headers: MultiMapping[str]) -> str | None:
    """The first of the rules that read the request alone (head … crawler) that holds."""
    if method.upper() == "HEAD":
        return "head"
    if _is_prefetch(headers):
        return "prefetch"
    return _agent_reason((user_agent or "")[:1000])
