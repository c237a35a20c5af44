"""Inbound messages (pack §10, §11): what a person texts to one of our numbers.

`receive` is the whole of it, for both providers; the routes only authenticate and parse.

- Routing: the inbound `To` maps to exactly one tenant through `sending_numbers`. An unknown
  number is recorded in `webhook_events` (outcome `unknown_number`) and touches no tenant.
- The sender: `From`, normalised in the tenant's default country, maps to the tenant's contact;
  a number we never imported becomes a contact without consent, so its opt-out holds and it
  never enters a campaign.
- The text is classified by the opt-out matrix (`smsapp.optout_matrix`), and its effects are
  written in one transaction that commits before the webhook answers:
    opt_out  DNC (source `stop_keyword`), `OPT_OUT` (when the number was not on the list
             already), the contact's queued jobs cancelled (`CANCELLED`), and one confirmation
             unless one was queued for that number in the last 24 h;
    opt_in   DNC removed, `RESUBSCRIBE`, a confirmation;
    help     `HELP`, a reply naming the tenant and how to opt out;
    reply    `REPLIED`.
  Every message gets an `inbound_messages` row, attributed like an opt-out (pack §12: the most
  recent campaign message sent to the contact within 7 days).
- Stop rule (pack §7): an opt-out takes the tenant's stop lock first (inside `add_to_dnc`),
  so once the webhook has answered no campaign message to that number starts.

Confirmations go through the outbox (sent by its dispatcher ahead of campaign traffic, from
the number the person texted). Their texts are short and GSM-7 only: each part costs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers

from smsapp.clock import Clock
from smsapp.db import Database, Executor, Row
from smsapp.dnc import add_to_dnc, remove_from_dnc
from smsapp.encoding import GSM_BASIC, apply_suggestions
from smsapp.fields import E164
from smsapp.optout_matrix import Classification, classify
from smsapp.outbox import Purpose, enqueue_sms
from smsapp.phones import normalise_phone
from smsapp.webhook_events import Duplicate, Provider, claim

log = logging.getLogger(__name__)

ATTRIBUTION_WINDOW = timedelta(days=7)
CONFIRMATION_INTERVAL = timedelta(hours=24)
MAX_BODY = 1600  # Twilio's own limit on one message's body
MAX_NAME_IN_REPLY = 40

OPT_OUT_TEXT = (
    "{name}: you are unsubscribed and will get no more messages. Reply START to resubscribe."
)
OPT_IN_TEXT = "{name}: you are subscribed again. Reply STOP to opt out."
HELP_TEXT = "{name}: reply to this message to reach us. Reply STOP to opt out."


@dataclass(frozen=True)
class InboundMessage:
    provider: Provider
    event_id: str  # the replay key (pack §11)
    provider_message_id: str | None
    from_number: str
    to_number: str
    body: str
    payload: dict[str, Any]  # stored as received


def name_for_sms(tenant_name: str) -> str:
    """The tenant's name as GSM-7 basic characters only (smart quotes and dashes replaced,
    anything else dropped), short enough to keep a confirmation in one part."""
    text = "".join(ch for ch in apply_suggestions(tenant_name) if ch in GSM_BASIC)
    text = " ".join(text.split())[:MAX_NAME_IN_REPLY].strip()
    return text or "This sender"


def reply_text(purpose: Purpose, tenant_name: str) -> str:
    template = {
        "optout_confirmation": OPT_OUT_TEXT,
        "optin_confirmation": OPT_IN_TEXT,
        "help_reply": HELP_TEXT,
    }[purpose]
    return template.format(name=name_for_sms(tenant_name))


def sender_number(raw: str, country: str) -> str | None:
    """The sender as E.164: normalised like an import, else as given when it is E.164 already
    (an opt-out from a number `phonenumbers` does not know is honoured all the same)."""
    normalised = normalise_phone(raw, country)
    if normalised.e164 is not None:
        return normalised.e164
    text = raw.strip()
    return text if E164.match(text) else None


def _region(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


async def route(db: Executor, to_number: str) -> Row | None:
    """The sending number (with its tenant) that `to_number` names, or None."""
    text = to_number.strip()
    found = await db.one("inbound.route", to_number=text)
    if found is None and text:
        normalised = normalise_phone(text, "AU").e164
        if normalised is not None and normalised != text:
            found = await db.one("inbound.route", to_number=normalised)
    return found


async def receive(db: Database, clock: Clock, message: InboundMessage) -> str:
    """Apply one authenticated inbound message; answers its outcome (`duplicate` when it was
    handled before, in which case nothing was written)."""
    now = clock.now()
    number = await route(db, message.to_number)
    try:
        if number is None:
            async with db.transaction() as tx:
                await claim(tx, provider=message.provider, event_id=message.event_id,
                            kind="inbound", payload=message.payload, now=now,
                            outcome="unknown_number")  # fmt: skip
            return "unknown_number"
        return await _receive(db, clock, message, number, now)
    except Duplicate:
        return "duplicate"


async def _receive(
    db: Database, clock: Clock, message: InboundMessage, number: Row, now: datetime
) -> str:
    tenant_id: int = number["tenant_id"]
    phone = sender_number(message.from_number, number["default_country"])
    # What the transaction needs to know of the sender, in one read beforehand: whether the
    # number is on the list (opt-in or reply), its contact, and the campaign to attribute.
    known: Row = {"on_dnc": False, "contact_id": None, "campaign_id": None}
    if phone is not None:
        found = await db.one("inbound.sender", tenant_id=tenant_id, phone_e164=phone,
                             since=now - ATTRIBUTION_WINDOW)  # fmt: skip
        known = found or known
    keywords = number["optout_keywords"] or []
    classification: Classification = classify(message.body, keywords, bool(known["on_dnc"]))
    body = message.body[:MAX_BODY]
    async with db.transaction() as tx:
        # The writes that take the tenant's stop lock come first in the transaction (the lock
        # order of smsapp.db.stop_lock); a duplicate found next rolls them back.
        newly_listed = False
        if phone is not None and classification == "opt_out":
            _, newly_listed = await add_to_dnc(tx, clock, tenant_id=tenant_id, phone_e164=phone,
                                               source="stop_keyword", reason="opt-out reply",
                                               created_by=None)  # fmt: skip
        elif phone is not None and classification == "opt_in":
            removed = await remove_from_dnc(tx, tenant_id=tenant_id, phone_e164=phone)
            if removed is None:  # taken off the list meanwhile: nothing to restore
                classification = "reply"
        outcome = classification if phone is not None else "unusable_sender"
        event_id = await claim(tx, provider=message.provider, event_id=message.event_id,
                               kind="inbound", payload=message.payload, now=now,
                               outcome=outcome)  # fmt: skip
        contact_id: int | None = known["contact_id"]
        campaign_id: int | None = known["campaign_id"]
        if phone is not None and contact_id is None:
            contact_id = await _contact(tx, tenant_id, phone, now)
        inbound_id = await tx.val(
            "inbound.insert_message",
            tenant_id=tenant_id,
            contact_id=contact_id,
            campaign_id=campaign_id,
            sending_number_id=number["sending_number_id"],
            webhook_event_id=event_id,
            from_e164=phone or message.from_number.strip()[:32],
            to_number=number["phone_e164"],
            body=body,
            classification=classification,
            provider_message_id=message.provider_message_id,
            now=now,
        )
        if phone is None or contact_id is None:
            log.warning("inbound message from an unusable number: recorded, no effect")
            return outcome
        effects = _Effects(tx, now, number, phone, contact_id, campaign_id, inbound_id, body)
        if classification == "opt_out":
            await effects.opt_out(newly_listed)
        elif classification == "opt_in":
            await effects.opt_in()
        elif classification == "help":
            await effects.help()
        else:
            await effects.event("REPLIED")
    return outcome


async def _contact(tx: Executor, tenant_id: int, phone: str, now: datetime) -> int:
    """The contact of `phone`, made without consent when there is none."""
    new_id = await tx.val("inbound.insert_contact", tenant_id=tenant_id, phone_e164=phone,
                          country=_region(phone), now=now)  # fmt: skip
    if new_id is not None:
        return int(new_id)
    existing = await tx.val("inbound.contact_by_phone", tenant_id=tenant_id, phone_e164=phone)
    assert existing is not None, "the contact vanished: a concurrent erase or delete"
    return int(existing)


@dataclass
class _Effects:
    """The writes of one classified message, inside its transaction."""

    tx: Executor
    now: datetime
    number: Row
    phone: str
    contact_id: int
    campaign_id: int | None
    inbound_id: int
    body: str

    @property
    def tenant_id(self) -> int:
        return int(self.number["tenant_id"])

    async def event(self, event_type: str) -> None:
        """An event of the message itself, attributed to its campaign."""
        await self.tx.val(  # `val`: one trip to SQLite's writer thread (`run` takes two)
            "inbound.insert_event",
            tenant_id=self.tenant_id,
            campaign_id=self.campaign_id,
            contact_id=self.contact_id,
            send_job_id=None,
            type=event_type,
            data={"inbound_message_id": self.inbound_id, "body": self.body},
            now=self.now,
        )

    async def reply(self, purpose: Purpose) -> None:
        await enqueue_sms(
            self.tx,
            tenant_id=self.tenant_id,
            purpose=purpose,
            to_e164=self.phone,
            from_=self.number["phone_e164"],
            body=reply_text(purpose, self.number["tenant_name"]),
            now=self.now,
            contact_id=self.contact_id,
            campaign_id=self.campaign_id,
        )

    async def opt_out(self, newly_listed: bool) -> None:
        if newly_listed:
            await self.event("OPT_OUT")
        cancelled = await self.tx.all("inbound.cancel_queued_jobs", tenant_id=self.tenant_id,
                                      contact_id=self.contact_id, now=self.now)  # fmt: skip
        for job in cancelled:
            await self.tx.val(
                "inbound.insert_event",
                tenant_id=self.tenant_id,
                campaign_id=job["campaign_id"],
                contact_id=self.contact_id,
                send_job_id=job["id"],
                type="CANCELLED",
                data={"reason": "opt_out"},
                now=self.now,
            )
        recent = await self.tx.val(
            "inbound.recent_confirmation",
            tenant_id=self.tenant_id,
            to_e164=self.phone,
            purpose="optout_confirmation",
            since=self.now - CONFIRMATION_INTERVAL,
        )
        if recent is None:
            await self.reply("optout_confirmation")

    async def opt_in(self) -> None:
        await self.event("RESUBSCRIBE")
        await self.reply("optin_confirmation")

    async def help(self) -> None:
        await self.event("HELP")
        await self.reply("help_reply")
