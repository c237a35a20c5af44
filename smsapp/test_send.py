"""A campaign's test send (pack §7): one message now to one number, as the campaign would send
it (its first template, the footer), rendered for the contact with that number if there is one.

The sender and the footer follow the queue builder's rule (`queue_builder.campaign_sender_kind`):
from the tenant's first active phone number whenever it has one, with the tenant's footer
("reply STOP"); from its first active alphanumeric sender only when all its active senders are
alphanumeric, with the unsubscribe-link footer (pack §10). The unsubscribe link
(`{optout_link}`, in that footer or in the template) is:
- for the contact with that number, its real `/u/{token}` link for this campaign — the token
  the queue builder will reuse, made now when it has none — so the test shows, and does, what
  the campaign's message will;
- for a number that is no contact of the tenant, a sample of the real length,
  `{PUBLIC_BASE_URL}/u/test-send-sample`, which is no token (it cannot be one: tokens are
  letters and digits only) and answers "not found": a test send never makes a token for a
  stranger's number, nor a contact.

Transactional: it skips the campaign gates (pause, budget, window, limits), but never goes to a
number on the do-not-contact list (pack §10). At most once: the outbox row with its attempt id is
committed before the provider is called; the cost is recorded (parts × price) like any message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import phonenumbers

from smsapp.clock import Clock
from smsapp.config import Settings
from smsapp.db import Database, Row
from smsapp.dnc import numbers_on_dnc
from smsapp.encoding import count_parts
from smsapp.engine.providers import Outgoing, Provider, ProviderError
from smsapp.fields import Conflict, DomainError, NotFound, require_phone
from smsapp.queue_builder import campaign_sender_kind, unit_price
from smsapp.templating import OPTOUT_LINK, Recipient, render, with_footer
from smsapp.unsubscribe import TOKEN_LENGTH, new_token, unsubscribe_url

# The unsubscribe link of a test to a number that is no contact: as long as a real one, and
# never a token (a hyphen is outside the token alphabet), so it opts nobody out.
SAMPLE_LINK_KEY = "test-send-sample"
assert len(SAMPLE_LINK_KEY) == TOKEN_LENGTH


class ProviderRefused(DomainError):
    status = 502


@dataclass(frozen=True)
class TestSend:
    to: str
    from_: str
    body: str
    parts: int
    encoding: str
    provider_message_id: str
    status: str


async def send_test(
    db: Database, clock: Clock, settings: Settings, provider: Provider, *, tenant_id: int,
    campaign_id: int, phone: object,
) -> TestSend:  # fmt: skip
    tenant = await db.one("tenancy.tenant_by_id", id=tenant_id)
    assert tenant is not None
    campaign = await db.one("campaigns.campaign", tenant_id=tenant_id, id=campaign_id)
    if campaign is None:
        raise NotFound("campaign")
    to = require_phone(phone, tenant["default_country"])
    if await numbers_on_dnc(db, tenant_id=tenant_id, phones=[to]):
        raise Conflict(f"{to} is on the do-not-contact list", code="on_dnc")
    templates = await db.all("campaigns.campaign_templates", campaign_id=campaign_id)
    if not templates:
        raise Conflict("the campaign has no templates", code="no_templates")
    template = templates[0]  # in rotation order
    sender_kind = await campaign_sender_kind(db, tenant_id)
    sender = await db.one("test_send.sending_number", tenant_id=tenant_id, kind=sender_kind)
    if sender is None:
        raise Conflict("add a sending number first", code="no_sending_number")
    contact = await db.one("test_send.contact_by_phone", tenant_id=tenant_id, phone=to)
    recipient = Recipient(
        contact["first_name"] if contact else None,
        contact["last_name"] if contact else None,
        (contact["attributes"] or {}) if contact else {},
    )
    placeholder = "{" + OPTOUT_LINK + "}"
    full = with_footer(template["body"], footer=tenant["optout_footer"],
                       tenant_name=tenant["name"], optout_link=placeholder,
                       sender_kind=sender_kind)  # fmt: skip
    optout_link = ""
    if placeholder in full:
        optout_link = await _optout_link(db, clock, settings, tenant_id, campaign_id, contact)
    # A test send carries the campaign's target itself, not a contact's tracked short link: a
    # test click must not count in the campaign's report.
    link = campaign["link_url"] or ""
    body = render(full, recipient, link=link, optout_link=optout_link)
    encoding, parts = count_parts(body)
    now = clock.now()
    attempt_id = uuid.uuid4().hex
    payload = {"purpose": "test_send", "campaign_id": campaign_id, "to": to,
               "from": sender["phone_e164"], "body": body}  # fmt: skip
    async with db.transaction() as tx:
        outbox_id: int = await tx.val("test_send.insert_outbox", tenant_id=tenant_id,
                                      payload=payload, attempt_id=attempt_id, now=now)  # fmt: skip
    try:
        accepted = await provider.send(
            Outgoing(to=to, from_=sender["phone_e164"], body=body, reference=attempt_id)
        )
    except ProviderError as exc:
        await db.run("test_send.outbox_failed", id=outbox_id, error=f"{exc.kind}: {exc}",
                     now=clock.now())  # fmt: skip
        raise ProviderRefused(f"the provider did not take the message ({exc.kind}): {exc}",
                              code="provider_error", provider_code=exc.code) from None  # fmt: skip
    price = unit_price(tenant, to_country(to, tenant["default_country"]))
    async with db.transaction() as tx:
        await tx.run(
            "test_send.outbox_sent",
            id=outbox_id,
            now=clock.now(),
            payload={**payload, "provider_message_id": accepted.provider_message_id},
        )
        await tx.run(
            "test_send.insert_cost",
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            outbox_id=outbox_id,
            parts=parts,
            unit_price=price,
            amount=None if price is None else price * parts,
            now=clock.now(),
        )
    return TestSend(to, sender["phone_e164"], body, parts, encoding,
                    accepted.provider_message_id, accepted.status)  # fmt: skip


async def _optout_link(
    db: Database,
    clock: Clock,
    settings: Settings,
    tenant_id: int,
    campaign_id: int,
    contact: Row | None,
) -> str:
    """The contact's unsubscribe link for this campaign (its token made now when it has none,
    as the queue builder would, which reuses it), or the sample when the number is no
    contact's."""
    if contact is None:
        return unsubscribe_url(settings.public_base_url, SAMPLE_LINK_KEY)
    async with db.transaction() as tx:
        await tx.run("test_send.insert_unsubscribe_token", token=new_token(),
                     tenant_id=tenant_id, campaign_id=campaign_id, contact_id=contact["id"],
                     now=clock.now())  # fmt: skip
        token = await tx.val("test_send.unsubscribe_token", campaign_id=campaign_id,
                             contact_id=contact["id"])  # fmt: skip
    return unsubscribe_url(settings.public_base_url, str(token))


def to_country(e164: str, default: str) -> str:
    """The destination's country, for the price book."""
    region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    return region or default
