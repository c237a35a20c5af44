"""Inbound messages (pack §10, §11): what a person texts to one of our numbers.

`InboundWriter.receive` is the whole of it, for both providers; the routes only authenticate
and parse.

- Routing: the inbound `To` maps to exactly one tenant through `sending_numbers`. An unknown
  number is recorded in `webhook_events` (outcome `unknown_number`) and touches no tenant.
- The sender: `From`, normalised in the tenant's default country, maps to the tenant's contact;
  a number we never imported becomes a contact without consent, so its opt-out holds and it
  never enters a campaign.
- The text is classified by the opt-out matrix (`smsapp.optout_matrix`), and its effects are
  written in a transaction that commits before the webhook answers:
    opt_out  DNC (source `stop_keyword`), `OPT_OUT` (when the number was not on the list
             already), the contact's queued jobs cancelled (`CANCELLED`), and one confirmation
             unless one was queued for that number in the last 24 h;
    opt_in   DNC removed, `RESUBSCRIBE`, a confirmation;
    help     `HELP`, a reply naming the tenant and how to opt out;
    reply    `REPLIED`.
  Every message gets an `inbound_messages` row, attributed like an opt-out (pack §12: the most
  recent campaign message sent to the contact within 7 days).
- Stop rule (pack §7): a transaction that writes an opt-out (or an opt-in) takes the stop lock
  of its tenant first, so once the webhook has answered no campaign message to that number
  starts.

Group commit (pack §16: ≥ 1,000 a second): each request hands its message to the writer and
waits; one task writes all the messages waiting at that moment in one transaction
(`record_batch`), with a constant number of set-based statements whatever its size, and only
once it has committed does each request get its answer. A batch applies its messages exactly
as one after another would: they are planned in arrival order in memory against what the
transaction read (two texts of one person in one batch, STOP then START, end as they would
one by one). A batch that holds an opt-out or opt-in takes the stop locks of their tenants
first, in id order. When a lock is busy for more than a moment (the tenant's sender has
provider calls under way), the batch rolls back and those messages wait for it in a queue of
their own while the others are written at once. A batch that fails is written again one
message at a time, so one bad message fails only its own request (a 500: the provider
retries).

Confirmations go through the outbox (sent by its dispatcher ahead of campaign traffic, from
the number the person texted). Their texts are short and GSM-7 only: each part costs.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from aiohttp import web

from smsapp.clock import Clock
from smsapp.db import Database, Executor, Row, json_dumps
from smsapp.encoding import GSM_BASIC, apply_suggestions
from smsapp.fields import E164
from smsapp.optout_matrix import Classification, classify
from smsapp.outbox import Purpose
from smsapp.phones import normalise_phone
from smsapp.webhook_events import EventKey, Provider, claim_many, set_outcomes

log = logging.getLogger(__name__)

ATTRIBUTION_WINDOW = timedelta(days=7)
CONFIRMATION_INTERVAL = timedelta(hours=24)
MAX_BODY = 1600  # Twilio's own limit on one message's body
MAX_NAME_IN_REPLY = 40
MAX_BATCH = 500  # messages in one transaction; more wait for the next
LOCK_WAIT = 0.05  # seconds a batch waits for its stop locks before it sets their messages aside

OPT_OUT_TEXT = (
    "{name}: you are unsubscribed and will get no more messages. Reply START to resubscribe."
)
OPT_IN_TEXT = "{name}: you are subscribed again. Reply STOP to opt out."
HELP_TEXT = "{name}: reply to this message to reach us. Reply STOP to opt out."
DNC_REASON = "opt-out reply"


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


async def route_many(db: Executor, to_numbers: Iterable[str]) -> dict[str, Row]:
    """The sending number (with its tenant) that each `To` names, by the text as received; a
    `To` that names none is missing. The text is tried as given, then normalised as an
    Australian number."""
    candidates: dict[str, list[str]] = {}
    for raw in set(to_numbers):
        text = raw.strip()
        tries = [text] if text else []
        normalised = normalise_phone(text, "AU").e164 if text else None
        if normalised is not None and normalised != text:
            tries.append(normalised)
        candidates[raw] = tries
    wanted = sorted({n for tries in candidates.values() for n in tries})
    if not wanted:
        return {}
    found = {r["phone_e164"]: r for r in await db.all("inbound.route_many", numbers=wanted)}
    routed: dict[str, Row] = {}
    for raw, tries in candidates.items():
        for text in tries:
            if text in found:
                routed[raw] = found[text]
                break
    return routed


# --- One batch: many messages, one transaction -----------------------------------------------


class LocksBusy(Exception):
    """A batch could not take a tenant's stop lock in time (the tenant's sender has provider
    calls under way): it wrote nothing. `waiting`: the positions of the messages that need
    that lock."""

    def __init__(self, waiting: list[int]) -> None:
        super().__init__(f"{len(waiting)} messages wait for a stop lock")
        self.waiting = waiting


class BatchConflict(RuntimeError):
    """The list changed under the batch in a way its plan did not foresee (a number taken off
    by hand meanwhile): the batch rolls back and its messages are written again one by one."""


@dataclass
class _Item:
    """One message of a batch, as routed and classified."""

    message: InboundMessage
    number: Row | None  # its sending number and tenant; None: an unknown `To`
    phone: str | None  # the sender as E.164; None: unusable
    wants: Classification  # classified as though the number were listed
    event_id: int | None = None  # its webhook_events row; None: a duplicate
    classification: Classification = "reply"
    outcome: str = "duplicate"

    @property
    def tenant_id(self) -> int:
        assert self.number is not None
        return int(self.number["tenant_id"])

    @property
    def keywords(self) -> list[str]:
        assert self.number is not None
        return list(self.number["optout_keywords"] or [])

    @property
    def body(self) -> str:
        return self.message.body[:MAX_BODY]

    @property
    def changes_list(self) -> bool:
        """May put its sender on the tenant's list or take it off: needs the stop lock."""
        return self.phone is not None and self.wants in ("opt_out", "opt_in")


@dataclass
class _Sender:
    """What a batch knows of one (tenant, number), updated in arrival order."""

    contact_id: int | None
    campaign_id: int | None
    was_listed: bool  # on the list when the transaction read it
    listed: bool  # on the list after the messages planned so far
    confirmed: bool  # an opt-out confirmation queued in the last 24 h, or by this batch
    removed: bool = False  # the stored entry goes (an opt-in while it was there)
    cancels_for: _Item | None = None  # the opt-out that cancels the contact's queued jobs


@dataclass
class _Writes:
    """What a batch writes, gathered in arrival order before the writes."""

    dnc_delete: list[tuple[int, str]] = field(default_factory=list)
    dnc_insert: list[tuple[int, str]] = field(default_factory=list)
    # per item: its message event, and the outbox purpose of its reply
    event: dict[int, str] = field(default_factory=dict)
    reply: dict[int, Purpose] = field(default_factory=dict)


def _prepare(message: InboundMessage, number: Row | None) -> _Item:
    if number is None:
        return _Item(message, None, None, "reply")
    phone = sender_number(message.from_number, number["default_country"])
    keywords = number["optout_keywords"] or []
    return _Item(message, number, phone, classify(message.body, keywords, on_dnc=True))


async def record_batch(
    db: Database,
    clock: Clock,
    messages: Sequence[InboundMessage],
    *,
    lock_wait: float | None = None,
) -> list[str]:
    """Apply many authenticated inbound messages in one transaction, exactly as one after
    another would; answers each one's outcome (`duplicate` when its event was handled before,
    by an earlier batch or earlier in this one).

    `lock_wait`: how long the batch may wait for its stop locks, in seconds (None: as long as
    it takes); past it the batch rolls back, having written nothing, and raises LocksBusy with
    the messages of the tenant whose lock it was waiting for."""
    now = clock.now()
    numbers = await route_many(db, [m.to_number for m in messages])
    items = [_prepare(m, numbers.get(m.to_number)) for m in messages]
    # The tenants whose list this batch may change: their stop locks come first in the
    # transaction (the lock order of smsapp.db.stop_lock), in id order.
    locked = sorted({i.tenant_id for i in items if i.changes_list})
    async with db.transaction() as tx:
        taken: list[int] = []
        try:
            await asyncio.wait_for(_stop_locks(tx, locked, taken), lock_wait)
        except TimeoutError:
            busy = locked[len(taken)]
            raise LocksBusy([
                n for n, i in enumerate(items) if i.changes_list and i.tenant_id == busy
            ]) from None  # fmt: skip
        keys = [
            EventKey(m.provider, m.event_id, m.provider_message_id, m.payload)
            for m in (i.message for i in items)
        ]
        claimed = await claim_many(tx, keys, kind="inbound", now=now)
        live: list[_Item] = []
        for item, event_id in zip(items, claimed, strict=True):
            if event_id is not None:
                item.event_id = event_id
                live.append(item)
        if not live:
            return [i.outcome for i in items]
        senders = await _senders(tx, live, now)
        writes = _plan(live, senders, set(locked))
        await _write(tx, live, senders, writes, now)
    return [i.outcome for i in items]


async def _stop_locks(tx: Executor, tenant_ids: list[int], taken: list[int]) -> None:
    for tenant_id in tenant_ids:
        await tx.stop_lock(tenant_id)
        taken.append(tenant_id)


async def receive(db: Database, clock: Clock, message: InboundMessage) -> str:
    """Apply one message in its own transaction (a batch of one); answers its outcome."""
    [outcome] = await record_batch(db, clock, [message])
    return outcome


def _pairs(live: Iterable[_Item]) -> list[tuple[int, str]]:
    return sorted({(i.tenant_id, i.phone) for i in live if i.phone is not None})


async def _senders(
    tx: Executor, live: list[_Item], now: datetime
) -> dict[tuple[int, str], _Sender]:
    """What the batch needs of each sender, read in one statement, and the contacts of numbers
    we never imported made (without consent) in one more."""
    pairs = _pairs(live)
    if not pairs:
        return {}
    since = {"since": now - ATTRIBUTION_WINDOW, "confirmed_since": now - CONFIRMATION_INTERVAL}
    if tx.dialect == "postgresql":
        rows = await tx.all("inbound.senders", tenant_id=[t for t, _ in pairs],
                            phone_e164=[p for _, p in pairs], **since)  # fmt: skip
    else:
        rows = await tx.all("inbound.senders", senders=[
            {"tenant_id": t, "phone_e164": p} for t, p in pairs
        ], **since)  # fmt: skip
    senders = {
        (int(r["tenant_id"]), r["phone_e164"]): _Sender(
            contact_id=r["contact_id"], campaign_id=r["campaign_id"],
            was_listed=bool(r["on_dnc"]), listed=bool(r["on_dnc"]),
            confirmed=bool(r["confirmed"]),
        )
        for r in rows
    }  # fmt: skip
    unknown = [pair for pair, s in senders.items() if s.contact_id is None]
    if unknown:
        for pair, contact_id in (await _make_contacts(tx, unknown, now)).items():
            senders[pair].contact_id = contact_id
    return senders


async def _make_contacts(
    tx: Executor, pairs: list[tuple[int, str]], now: datetime
) -> dict[tuple[int, str], int]:
    rows = [{"tenant_id": t, "phone_e164": p, "country": _region(p)} for t, p in pairs]
    if tx.dialect == "postgresql":
        made = await tx.all("inbound.insert_contacts", now=now,
                            **_columns(rows, ("tenant_id", "phone_e164", "country")))  # fmt: skip
    else:
        made = await tx.all("inbound.insert_contacts", rows=rows, now=now)
    ids = {(int(r["tenant_id"]), r["phone_e164"]): int(r["id"]) for r in made}
    others = [pair for pair in pairs if pair not in ids]
    if others:  # made meanwhile by another transaction (PostgreSQL)
        rows = [{"tenant_id": t, "phone_e164": p} for t, p in others]
        if tx.dialect == "postgresql":
            found = await tx.all("inbound.contacts_by_phone",
                                 **_columns(rows, ("tenant_id", "phone_e164")))  # fmt: skip
        else:
            found = await tx.all("inbound.contacts_by_phone", rows=rows)
        ids.update({(int(r["tenant_id"]), r["phone_e164"]): int(r["id"]) for r in found})
    missing = [pair for pair in pairs if pair not in ids]
    if missing:
        raise BatchConflict(f"{len(missing)} contacts vanished: a concurrent erase or delete")
    return ids


def _plan(live: list[_Item], senders: dict[tuple[int, str], _Sender], locked: set[int]) -> _Writes:
    """Each message's classification, outcome and effects, in arrival order, in memory: the
    state of each sender (listed, confirmed recently) moves as one message after another
    would move it."""
    writes = _Writes()
    for n, item in enumerate(live):
        if item.number is None:
            item.outcome = "unknown_number"
            continue
        if item.phone is None:
            item.classification = classify(item.message.body, item.keywords, on_dnc=False)
            item.outcome = "unusable_sender"
            continue
        sender = senders[(item.tenant_id, item.phone)]
        classification = item.wants
        if classification == "opt_in" and not sender.listed:
            classification = classify(item.message.body, item.keywords, on_dnc=False)
        item.classification = classification
        item.outcome = classification
        if classification in ("opt_out", "opt_in"):
            assert item.tenant_id in locked, "a change to the list without the stop lock"
        if classification == "opt_out":
            if not sender.listed:
                sender.listed = True
                writes.event[n] = "OPT_OUT"
            if sender.cancels_for is None:
                sender.cancels_for = item
            if not sender.confirmed:
                sender.confirmed = True
                writes.reply[n] = "optout_confirmation"
        elif classification == "opt_in":
            sender.listed = False
            sender.removed = sender.removed or sender.was_listed
            writes.event[n] = "RESUBSCRIBE"
            writes.reply[n] = "optin_confirmation"
        elif classification == "help":
            writes.event[n] = "HELP"
            writes.reply[n] = "help_reply"
        else:
            writes.event[n] = "REPLIED"
    for pair, sender in senders.items():
        if sender.removed:
            writes.dnc_delete.append(pair)
        if sender.listed and (sender.removed or not sender.was_listed):
            writes.dnc_insert.append(pair)
    return writes


async def _write(
    tx: Executor,
    live: list[_Item],
    senders: dict[tuple[int, str], _Sender],
    writes: _Writes,
    now: datetime,
) -> None:
    """The batch's writes, set-based: the list, the cancelled jobs, the inbound messages, then
    their events, replies and outcomes."""
    pg = tx.dialect == "postgresql"
    if writes.dnc_delete:
        removed = await _each(tx, "inbound.delete_dnc", writes.dnc_delete, now)
        if removed != len(writes.dnc_delete):
            raise BatchConflict("a number was taken off the list meanwhile")
    if writes.dnc_insert:
        added = await _each(tx, "inbound.insert_dnc", writes.dnc_insert, now)
        if added != len(writes.dnc_insert):
            raise BatchConflict("a number was put on the list meanwhile")
    cancelling = {
        s.contact_id: s.cancels_for for s in senders.values()
        if s.cancels_for is not None and s.contact_id is not None
    }  # fmt: skip
    cancelled: dict[int, list[Row]] = {}
    if cancelling:
        rows = [{"tenant_id": i.tenant_id, "contact_id": c} for c, i in cancelling.items()]
        if pg:
            jobs = await tx.all("inbound.cancel_queued_jobs", now=now,
                                **_columns(rows, ("tenant_id", "contact_id")))  # fmt: skip
        else:
            jobs = await tx.all("inbound.cancel_queued_jobs", rows=rows, now=now)
        for job in sorted(jobs, key=lambda j: j["id"]):
            cancelled.setdefault(job["contact_id"], []).append(job)

    message_rows = []
    for item in live:
        if item.number is None:
            continue
        sender = senders.get((item.tenant_id, item.phone)) if item.phone else None
        message_rows.append({
            "tenant_id": item.tenant_id,
            "contact_id": sender.contact_id if sender else None,
            "campaign_id": sender.campaign_id if sender else None,
            "sending_number_id": item.number["sending_number_id"],
            "webhook_event_id": item.event_id,
            "from_e164": item.phone or item.message.from_number.strip()[:32],
            "to_number": item.number["phone_e164"],
            "body": item.body,
            "classification": item.classification,
            "provider_message_id": item.message.provider_message_id,
        })  # fmt: skip
    # The events, in arrival order: a message's own event names its inbound message, whose id
    # the database gives (`data` None here: filled in below, or by the statement itself).
    events: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    for n, item in enumerate(live):
        if item.phone is None or item.number is None:
            continue
        sender = senders[(item.tenant_id, item.phone)]
        if n in writes.event:
            events.append({
                "tenant_id": item.tenant_id, "campaign_id": sender.campaign_id,
                "contact_id": sender.contact_id, "send_job_id": None, "type": writes.event[n],
                "data": None, "webhook_event_id": item.event_id, "body": item.body,
            })  # fmt: skip
        if sender.cancels_for is item:
            for job in cancelled.get(sender.contact_id or 0, []):
                events.append({
                    "tenant_id": item.tenant_id, "campaign_id": job["campaign_id"],
                    "contact_id": sender.contact_id, "send_job_id": job["id"],
                    "type": "CANCELLED", "data": json_dumps({"reason": "opt_out"}),
                    "webhook_event_id": None, "body": None,
                })  # fmt: skip
        if n in writes.reply:
            purpose = writes.reply[n]
            outbox.append({
                "tenant_id": item.tenant_id, "purpose": purpose, "to_e164": item.phone,
                "payload": json_dumps({
                    "to": item.phone, "from": item.number["phone_e164"],
                    "body": reply_text(purpose, item.number["tenant_name"]),
                    "contact_id": sender.contact_id, "campaign_id": sender.campaign_id,
                }),
            })  # fmt: skip
    outcomes = {i.event_id: i.outcome for i in live if i.event_id is not None}
    if tx.dialect == "postgresql":
        # One statement: the messages, their events (which read the messages' ids), the
        # replies and the outcomes.
        recorded = await tx.val(
            "inbound.write_batch",
            now=now,
            **_columns(message_rows, MESSAGE_COLUMNS),
            **_columns(events, EVENT_COLUMNS, prefix="event_"),
            **_columns(outbox, OUTBOX_COLUMNS, prefix="outbox_"),
            outcome_id=list(outcomes),
            outcome=list(outcomes.values()),
        )
        if recorded != len(message_rows):  # cannot happen: nothing else writes these rows
            raise RuntimeError(f"inbound batch: {recorded} of {len(message_rows)} recorded")
        return
    message_ids: dict[int, int] = {}
    if message_rows:
        made = await tx.all("inbound.insert_messages", rows=message_rows, now=now)
        message_ids = {int(r["webhook_event_id"]): int(r["id"]) for r in made}
    for event in events:
        if event["data"] is None:
            event["data"] = json_dumps({
                "inbound_message_id": message_ids[event["webhook_event_id"]],
                "body": event["body"],
            })  # fmt: skip
    await tx.bulk("inbound.insert_events", [{**e, "now": now} for e in events])
    await tx.bulk("inbound.insert_outbox", [{**o, "now": now} for o in outbox])
    await set_outcomes(tx, outcomes)


MESSAGE_COLUMNS = ("tenant_id", "contact_id", "campaign_id", "sending_number_id",
                   "webhook_event_id", "from_e164", "to_number", "body", "classification",
                   "provider_message_id")  # fmt: skip
EVENT_COLUMNS = ("tenant_id", "campaign_id", "contact_id", "send_job_id", "type", "data",
                 "webhook_event_id")  # fmt: skip
OUTBOX_COLUMNS = ("tenant_id", "purpose", "to_e164", "payload")


async def _each(tx: Executor, query: str, pairs: list[tuple[int, str]], now: datetime) -> int:
    """Run a set-based statement over (tenant_id, phone_e164) pairs; the rows it changed."""
    rows = [{"tenant_id": t, "phone_e164": p} for t, p in sorted(pairs)]
    if tx.dialect == "postgresql":
        found = await tx.all(query, now=now, **_columns(rows, ("tenant_id", "phone_e164")))
    else:
        found = await tx.all(query, rows=rows, now=now)
    return len(found)


def _columns(
    rows: Sequence[dict[str, Any]], names: Sequence[str], prefix: str = ""
) -> dict[str, list[Any]]:
    """Rows as one list per column, for PostgreSQL's unnest."""
    return {prefix + name: [row[name] for row in rows] for name in names}


# --- Group commit ----------------------------------------------------------------------------


Waiting = list[tuple[InboundMessage, asyncio.Future[str]]]


class _Queue:
    """Messages waiting to be written, and the one task writing them: one batch at a time,
    each with whatever was waiting when the previous one committed (no timer: a lone message
    is written at once, and a busy server writes many per transaction).

    With `held`, a batch waits at most `lock_wait` for its stop locks; when a tenant's lock is
    busy, the messages that need it move to `held` (which waits as long as it takes) and the
    others are written at once: a sender's provider calls hold up only the opt-outs and
    opt-ins of its own tenant."""

    def __init__(
        self, max_batch: int, lock_wait: float | None = None, held: _Queue | None = None
    ) -> None:
        self._max_batch = max_batch
        self._lock_wait = lock_wait
        self._held = held
        self._waiting: Waiting = []
        self._writing: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed (figures for tests)

    def put(self, db: Database, clock: Clock, entries: Waiting) -> None:
        self._waiting.extend(entries)
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write(db, clock))

    async def _write(self, db: Database, clock: Clock) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                await self._commit(db, clock, batch)
            except BaseException:  # cancelled (shutdown): nobody may wait forever
                for _, future in [*batch, *self._waiting]:
                    if not future.done():
                        future.cancel()
                self._waiting.clear()
                raise

    async def _commit(self, db: Database, clock: Clock, batch: Waiting) -> None:
        messages = [message for message, _ in batch]
        lock_wait = self._lock_wait if self._held is not None else None
        try:
            outcomes = await record_batch(db, clock, messages, lock_wait=lock_wait)
        except LocksBusy as busy:
            assert self._held is not None
            waiting = set(busy.waiting)
            self._held.put(db, clock, [e for n, e in enumerate(batch) if n in waiting])
            rest = [e for n, e in enumerate(batch) if n not in waiting]
            if rest:  # written at once (another tenant's lock found busy sets more aside)
                await self._commit(db, clock, rest)
            return
        except Exception as exc:
            if len(batch) > 1:
                # Nothing of the batch was written (it rolled back): one by one, so that one
                # bad message fails only its own request.
                log.warning("a batch of %d inbound messages failed (%r): one by one",
                            len(batch), exc)  # fmt: skip
                for one in batch:
                    await self._commit(db, clock, [one])
                return
            log.exception("an inbound message could not be recorded")
            _, future = batch[0]
            if not future.done():
                future.set_exception(exc)
            return
        self.batches += 1
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():  # its request may have gone away: the message is kept
                future.set_result(outcome)


class InboundWriter:
    """Group commit of inbound messages: `receive` answers once its message is committed.

    Every message goes to one queue, whose batches wait at most `lock_wait` for their stop
    locks; the opt-outs and opt-ins whose tenant's lock is busy move to a second queue that
    waits for it, so that the provider calls of one tenant's sender never hold up the replies
    of anyone, nor the opt-outs of other tenants, for longer than that."""

    def __init__(self, max_batch: int = MAX_BATCH, lock_wait: float = LOCK_WAIT) -> None:
        self.held = _Queue(max_batch)
        self.queue = _Queue(max_batch, lock_wait, held=self.held)

    async def receive(self, db: Database, clock: Clock, message: InboundMessage) -> str:
        """Wait until `message` is committed; its outcome. Raises what its transaction raised
        when it could not be written (the route answers 500: the provider retries)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.queue.put(db, clock, [(message, future)])
        return await future

    @property
    def batches(self) -> int:
        return self.queue.batches + self.held.batches


_WRITERS: weakref.WeakKeyDictionary[web.Application, InboundWriter] = weakref.WeakKeyDictionary()


def inbound_writer(app: web.Application) -> InboundWriter:
    """The app's inbound writer, made on its first message."""
    writer = _WRITERS.get(app)
    if writer is None:
        writer = _WRITERS[app] = InboundWriter()
    return writer
