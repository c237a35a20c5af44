"""Message templates (pack §7): placeholders, rendering, and the opt-out footer.

Placeholders are `{first_name}`, `{last_name}`, `{link}` (the contact's short link) and any
contact attribute by name (`{tier}` reads attributes.tier). An unknown placeholder is an error
when the campaign is created, never at send time; a contact without the attribute gets "".
Every campaign message must identify the sender and carry an opt-out (Spam Act s17–18): when a
template lacks either, the tenant's footer is appended on a new line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
BRACE = re.compile(r"[{}]")
CONTACT_FIELDS = ("first_name", "last_name")
LINK = "link"
OPTOUT_LINK = "optout_link"  # the /u/{token} unsubscribe link, for alphanumeric senders
FOOTER_PLACEHOLDERS = frozenset({"tenant_name", OPTOUT_LINK})
DEFAULT_FOOTER = "{tenant_name}: reply STOP to opt out"
# Alphanumeric senders cannot receive replies (pack §10): their messages carry the unsubscribe
# link instead, through this footer unless the tenant's own footer already has {optout_link}.
ALPHANUMERIC_FOOTER = "{tenant_name}: opt out at {optout_link}"
SenderKind = Literal["phone", "alphanumeric"]
STOP_WORD = re.compile(r"\bSTOP\b", re.IGNORECASE)


class TemplateError(ValueError):
    pass


def placeholders(body: str) -> list[str]:
    """The placeholder names used in `body`, in order of first use."""
    names: list[str] = []
    for name in PLACEHOLDER.findall(body):
        if name not in names:
            names.append(name)
    return names


def check_syntax(body: str) -> None:
    """Braces only as `{name}` placeholders: a stray `{` is a typo the sender would see."""
    stripped = PLACEHOLDER.sub("", body)
    stray = BRACE.search(stripped)
    if stray is not None:
        around = stripped[max(0, stray.start() - 10) : stray.start() + 10]
        raise TemplateError(
            f"braces are only for placeholders such as {{first_name}}; check {around!r}"
        )


def unknown_placeholders(body: str, attributes: Iterable[str]) -> list[str]:
    known = {*CONTACT_FIELDS, LINK, *attributes}
    return [name for name in placeholders(body) if name not in known]


def has_optout(text: str) -> bool:
    return bool(STOP_WORD.search(text)) or "{" + OPTOUT_LINK + "}" in text


def needs_footer(body: str, tenant_name: str, sender_kind: SenderKind = "phone") -> bool:
    """True unless the template already names the sender and carries an opt-out. From an
    alphanumeric sender only the unsubscribe link is an opt-out (a STOP reply cannot arrive)."""
    names_sender = tenant_name.strip().lower() in body.lower() if tenant_name.strip() else False
    if sender_kind == "alphanumeric":
        return not (names_sender and "{" + OPTOUT_LINK + "}" in body)
    return not (names_sender and has_optout(body))


def footer_for_sender(footer: str, sender_kind: SenderKind) -> str:
    """The footer a message from this kind of sender gets: the tenant's, except that from an
    alphanumeric sender a footer without `{optout_link}` (such as "reply STOP") is replaced by
    ALPHANUMERIC_FOOTER."""
    if sender_kind == "alphanumeric" and "{" + OPTOUT_LINK + "}" not in footer:
        return ALPHANUMERIC_FOOTER
    return footer


@dataclass(frozen=True)
class Recipient:
    first_name: str | None
    last_name: str | None
    attributes: Mapping[str, object]


def render(body: str, recipient: Recipient, *, link: str, optout_link: str = "") -> str:
    values = {
        "first_name": recipient.first_name or "",
        "last_name": recipient.last_name or "",
        LINK: link,
        OPTOUT_LINK: optout_link,
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        value = recipient.attributes.get(name)
        return "" if value is None else str(value)

    return PLACEHOLDER.sub(replace, body)


def footer_text(
    body: str,
    *,
    footer: str,
    tenant_name: str,
    optout_link: str = "",
    sender_kind: SenderKind = "phone",
) -> str | None:
    """The footer `body` gets from this kind of sender, filled, or None when the body needs
    none: the one rule of the queue builder (`with_footer`) and the previews."""
    if not needs_footer(body, tenant_name, sender_kind):
        return None
    footer = footer_for_sender(footer, sender_kind)
    return footer.replace("{tenant_name}", tenant_name).replace(
        "{" + OPTOUT_LINK + "}", optout_link
    )


def with_footer(
    body: str,
    *,
    footer: str,
    tenant_name: str,
    optout_link: str = "",
    sender_kind: SenderKind = "phone",
) -> str:
    """The template body with the tenant's footer appended when the body needs it. Pass
    optout_link="{optout_link}" to keep the placeholder for `render` to fill per contact."""
    text = footer_text(body, footer=footer, tenant_name=tenant_name, optout_link=optout_link,
                       sender_kind=sender_kind)  # fmt: skip
    return body if text is None else f"{body}\n{text}"
