"""What a template costs to send, as the template and campaign pages show it (pack §7, §8).

One rule, used by the live preview endpoint, the server-rendered preview and the lists, and
the queue builder's own: the body is counted with the footer the queue builder would append
(`templating.footer_text`, for the tenant's sender kind as `queue_builder.campaign_sender_kind`
decides it: from an alphanumeric sender the unsubscribe link replaces "reply STOP"), with
`{link}` at the real short-link length and `{optout_link}` at the real `/u/{token}` length (on
the app's own host), through `encoding.render_for_count`. Other placeholders (`{first_name}`,
attributes) are counted as written: their length depends on the contact, and the campaign page
shows a message rendered for a real one. No aiohttp here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smsapp.config import Settings
from smsapp.encoding import Analysis, analyse, render_for_count
from smsapp.money import dollars_text
from smsapp.short_links import TOKEN_LENGTH, base_url, short_url
from smsapp.templating import (
    LINK,
    OPTOUT_LINK,
    Recipient,
    SenderKind,
    TemplateError,
    check_syntax,
    footer_text,
    placeholders,
    render,
    with_footer,
)
from smsapp.unsubscribe import TOKEN_LENGTH as UNSUBSCRIBE_TOKEN_LENGTH
from smsapp.unsubscribe import unsubscribe_url

SAMPLE_TOKEN = "x" * TOKEN_LENGTH
SAMPLE_UNSUBSCRIBE_TOKEN = "x" * UNSUBSCRIBE_TOKEN_LENGTH
NAMED_CHARACTERS = {
    "\u00a0": "no-break space",
    "\u2009": "thin space",
    "\u200b": "zero-width space",
}
OPTOUT_PLACEHOLDER = "{" + OPTOUT_LINK + "}"


@dataclass(frozen=True)
class Preview:
    analysis: Analysis
    footer: str | None  # the footer as appended, or None when the body carries its own
    link: str  # a short link of the real length, as counted
    sender_kind: SenderKind  # what the tenant's campaigns go from, as the queue builder decides
    message: str  # the body as a recipient sees it, with that link and the footer
    placeholders: list[str]
    problem: str | None  # a syntax error the template would be refused for
    price_per_message: str | None  # at the tenant's default country's price, e.g. "$0.055"

    def as_json(self) -> dict[str, Any]:
        """The keys of POST /api/messages/preview, about the counted text, plus what the page
        shows beside them."""
        answer = self.analysis.as_json()
        answer.pop("suggested_text")  # of the counted text (footer included): not the body
        answer.pop("parts")
        answer.update(
            {
                "footer": self.footer,
                "link_length": len(self.link),
                "sender_kind": self.sender_kind,
                "message": self.message,
                "placeholders": self.placeholders,
                "problem": self.problem,
                "price_per_message": self.price_per_message,
            }
        )
        return answer


def char_label(ch: str) -> str:
    """A character as a page shows it: itself, or a name when it cannot be seen."""
    if ch.isprintable() and not ch.isspace():
        return ch
    name = NAMED_CHARACTERS.get(ch)
    code = f"U+{ord(ch):04X}"
    return f"{name} ({code})" if name else code


def sample_link(settings: Settings, tenant: Mapping[str, Any]) -> str:
    """A short link as long as the real ones of this tenant."""
    return short_url(base_url(settings, tenant["short_link_base_url"]), SAMPLE_TOKEN)


def sample_optout_link(settings: Settings) -> str:
    """An unsubscribe link as long as the real ones: `/u/{token}` on the app's own host, as the
    queue builder makes them (never on the short host)."""
    return unsubscribe_url(settings.public_base_url, SAMPLE_UNSUBSCRIBE_TOKEN)


def footer_for(
    body: str, tenant: Mapping[str, Any], optout_link: str, sender_kind: SenderKind
) -> str | None:
    """The footer the queue builder appends to `body` for this sender kind, filled (its
    `{optout_link}` with `optout_link`), or None when the body already names the sender and
    carries an opt-out."""
    return footer_text(body, footer=str(tenant["optout_footer"]), tenant_name=str(tenant["name"]),
                       optout_link=optout_link, sender_kind=sender_kind)  # fmt: skip


def preview(
    settings: Settings, tenant: Mapping[str, Any], body: str, sender_kind: SenderKind
) -> Preview:
    """`sender_kind`: `queue_builder.campaign_sender_kind` of the tenant."""
    link = sample_link(settings, tenant)
    optout_link = sample_optout_link(settings)
    footer = footer_for(body, tenant, optout_link, sender_kind)
    with_optout_link = body.replace(OPTOUT_PLACEHOLDER, optout_link)
    counted = render_for_count(with_optout_link, footer=footer, link_length=len(link))
    analysis = analyse(counted)
    message = with_optout_link.replace("{" + LINK + "}", link)
    if footer:
        message = f"{message}\n{footer}" if message else footer
    problem = None
    try:
        check_syntax(body)
    except TemplateError as exc:
        problem = str(exc)
    return Preview(
        analysis=analysis,
        footer=footer,
        link=link,
        sender_kind=sender_kind,
        message=message,
        placeholders=placeholders(body),
        problem=problem,
        price_per_message=_price(tenant, analysis.segments),
    )


def _price(tenant: Mapping[str, Any], segments: int) -> str | None:
    book: Mapping[str, int] = tenant["price_book"] or {}
    price = book.get(str(tenant["default_country"]).upper())
    if price is None or segments == 0:
        return None
    return dollars_text(int(price) * segments)


def rendered_for(
    settings: Settings,
    tenant: Mapping[str, Any],
    body: str,
    recipient: Recipient,
    sender_kind: SenderKind,
) -> str:
    """The template as one contact would get it (the footer as the queue builder appends it
    for `sender_kind`), with sample short and unsubscribe links in place of the contact's."""
    link = sample_link(settings, tenant)
    optout_link = sample_optout_link(settings)
    full = with_footer(body, footer=str(tenant["optout_footer"]), tenant_name=str(tenant["name"]),
                       optout_link=optout_link, sender_kind=sender_kind)  # fmt: skip
    return render(full, recipient, link=link, optout_link=optout_link)
