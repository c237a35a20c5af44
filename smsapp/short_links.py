"""Short-link tokens (pack §9): at least 8 characters of [A-Za-z0-9] from `secrets`, unique per
(campaign, contact), carrying no personal data. Ours are 10 characters: ~59.5 bits."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import string
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from smsapp.clock import Clock
from smsapp.config import Settings
from smsapp.db import Database, Executor, Row
from smsapp.fields import InvalidInput, NotFound, iso

ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 10
TTL = timedelta(days=60)


def new_token() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(TOKEN_LENGTH))


def base_url(settings: Settings, tenant_override: str | None = None) -> str:
    """Where short links point: the tenant's own short host, else SHORT_LINK_BASE_URL, else
    PUBLIC_BASE_URL."""
    return (tenant_override or settings.short_link_base_url or settings.public_base_url).rstrip("/")


def short_url(base: str, token: str) -> str:
    return f"{base}/s/{token}"


# --- The redirect: token lookups (cached); hits are recorded by smsapp/hit_writer.py -------


@dataclass(frozen=True)
class Link:
    """What the redirect needs of a link. None of it ever changes once the link exists, so it
    is cached by token; what can change (the job's sent_at, the tenant's fallback URL and short
    host) is read where it is needed: sent_at in the hit writer's transaction, the fallback on
    the (rare) expired path, the tenant's short host by smsapp/short_host.py."""

    id: int
    tenant_id: int
    campaign_id: int | None
    contact_id: int | None
    send_job_id: int | None
    target_url: str
    expires_at: datetime


class LinkCache:
    """Token → Link, least recently used out first. Unknown tokens are not cached (a scan of
    random tokens must not fill memory); a link is never changed, so an entry is never stale.
    A deleted link (its campaign or tenant deleted) is forgotten when the hit writer finds it
    gone."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._links: OrderedDict[str, Link] = OrderedDict()
        self._reading: dict[str, asyncio.Task[Link | None]] = {}
        self.reads = 0  # links read from the database (figures for tests)

    def cached(self, token: str) -> Link | None:
        """The link when it is cached (no await: the redirect's common case)."""
        link = self._links.get(token)
        if link is not None:
            self._links.move_to_end(token)
        return link

    async def load(self, db: Executor, token: str) -> Link | None:
        """Read a link that is not cached, and cache it; None when there is none. Hits on one
        token that arrive while it is being read wait for that one read: the first taps on a
        new campaign's link, or every link's after a restart under load, come together (a
        handset's scanner, a preview, the person), and with 50 connections the benchmark read
        each of its links twice as it started."""
        reading = self._reading.get(token)
        if reading is None:
            reading = asyncio.ensure_future(self._read(db, token))
            self._reading[token] = reading
            reading.add_done_callback(functools.partial(self._read_done, token))
        # Shielded: a request that goes away (its client gone) does not cancel the others' read.
        return await asyncio.shield(reading)

    def _read_done(self, token: str, reading: asyncio.Task[Link | None]) -> None:
        del self._reading[token]
        if not reading.cancelled():
            reading.exception()  # a failed read is each waiter's error; none left is no warning

    async def _read(self, db: Executor, token: str) -> Link | None:
        self.reads += 1
        row = await db.one("short_links.by_token", token=token)
        if row is None:
            return None
        link = Link(**row)
        self._links[token] = link
        if len(self._links) > self.size:
            self._links.popitem(last=False)
        return link

    def forget(self, token: str) -> None:
        self._links.pop(token, None)

    def __len__(self) -> int:
        return len(self._links)


USER_AGENT_KEPT = 300


@functools.lru_cache(maxsize=65_536)  # most hits come from addresses that hit before
def ip_hash(secret_key: str, ip: str | None) -> str:
    """A keyed SHA-256 of the client address (HMAC-SHA256 with the app's secret key): hits from
    one address can be told apart from others without the address itself being stored."""
    return hmac.new(secret_key.encode(), (ip or "").encode(), hashlib.sha256).hexdigest()


# --- Links made through the API (pack §17) ---------------------------------------------------

MAX_TARGET_LENGTH = 2000


def check_target_url(raw: object) -> str:
    """An absolute http(s) URL with a host, at most 2000 characters, no spaces or control
    characters; the scheme comes back lower-case. Anything else is `invalid_target_url`."""

    def refuse(message: str) -> InvalidInput:
        return InvalidInput(message, code="invalid_target_url", field="target_url")

    if not isinstance(raw, str) or not raw.strip():
        raise refuse("target_url must be an http(s) URL")
    url = raw.strip()
    if len(url) > MAX_TARGET_LENGTH:
        raise refuse(f"target_url is longer than {MAX_TARGET_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise refuse("target_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise refuse("target_url is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise refuse("target_url must be an http:// or https:// URL with a host")
    return parts.scheme.lower() + url[len(parts.scheme) :]


def optional_id(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**62:
        raise InvalidInput(f"{name} must be a positive whole number", field=name)
    return value


async def create_link(
    db: Database,
    clock: Clock,
    *,
    tenant_id: int,
    target_url: str,
    campaign_id: int | None,
    contact_id: int | None,
) -> tuple[Row, bool]:
    """(link row, created). One link per (campaign, contact): asking again answers the
    existing one. The campaign and contact must be the tenant's (else 404)."""
    if campaign_id is not None and not await db.val(
        "short_links.campaign_of_tenant", id=campaign_id, tenant_id=tenant_id
    ):
        raise NotFound("campaign")
    if contact_id is not None and not await db.val(
        "short_links.contact_of_tenant", id=contact_id, tenant_id=tenant_id
    ):
        raise NotFound("contact")
    pair = campaign_id is not None and contact_id is not None
    for _ in range(5):
        if pair:
            existing = await db.one(
                "short_links.for_pair",
                tenant_id=tenant_id,
                campaign_id=campaign_id,
                contact_id=contact_id,
            )
            if existing is not None:
                return existing, False
        token = new_token()
        now = clock.now()
        async with db.transaction() as tx:
            new_id = await tx.val(
                "short_links.insert",
                token=token,
                tenant_id=tenant_id,
                campaign_id=campaign_id,
                contact_id=contact_id,
                target_url=target_url,
                expires_at=now + TTL,
                now=now,
            )
        if new_id is not None:
            row = await db.one("short_links.of_tenant", tenant_id=tenant_id, token=token)
            assert row is not None
            return row, True
        # A concurrent request made the pair's link, or (rarely) the token was taken: look again.
    raise RuntimeError("could not make a short link")


def link_json(settings: Settings, row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "token": row["token"],
        "url": short_url(base_url(settings, row["short_link_base_url"]), row["token"]),
        "target_url": row["target_url"],
        "expires_at": iso(row["expires_at"]),
        "clicks_total": row["clicks_total"],
        "clicks_human": row["clicks_human"],
        "first_clicked_at": iso(row["first_clicked_at"]),
        "campaign_id": row["campaign_id"],
        "contact_id": row["contact_id"],
        "created_at": iso(row["created_at"]),
    }
