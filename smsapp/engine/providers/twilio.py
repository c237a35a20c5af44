"""Twilio's Messages REST API (2010-04-01) over aiohttp.

How each answer maps to ProviderError.kind (pack §7):
  201/200                     Accepted(sid, status)
  429                         rate_limited, retry_after from Retry-After
  other 4xx                   rejected (permanent) with Twilio's error code; 21610 = opted out
  5xx, a 2xx without a sid,   ambiguous: Twilio says message creation is not idempotent and a
  timeout or dropped          5xx may still have created it, so the loop must call `find`
  connection after sending    before any retry
  no connection at all        unreached (the request never left; safe to retry)
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from smsapp.clock import Clock
from smsapp.engine.providers.base import (
    HELD_STATUSES,
    Accepted,
    ErrorKind,
    Outgoing,
    ProviderError,
    status_callback_url,
)
from smsapp.logs import mask_phone_numbers

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)
OPTED_OUT_CODE = "21610"


def classify_transport_error(exc: BaseException) -> ProviderError:
    """A failure below HTTP: did the request possibly reach Twilio?"""
    # Connect errors and connect timeouts happen before a byte of the request is written.
    if isinstance(
        exc,
        aiohttp.ClientConnectorError
        | aiohttp.ConnectionTimeoutError
        | aiohttp.ServerFingerprintMismatch
        | aiohttp.InvalidURL,
    ):
        return ProviderError(f"Twilio not reached: {type(exc).__name__}", kind="unreached")
    # Everything else (read timeout, total timeout, reset or closed connection, bad payload)
    # may come after Twilio read the request.
    return ProviderError(f"Twilio did not answer: {type(exc).__name__}", kind="ambiguous")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _parse_twilio_date(value: object) -> datetime | None:
    # Twilio dates are RFC 2822: "Mon, 05 Jan 2026 00:00:00 +0000".
    if not isinstance(value, str) or not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _same_body(ours: str, theirs: object) -> bool:
    if not isinstance(theirs, str):
        return False
    return ours.replace("\r\n", "\n").strip() == theirs.replace("\r\n", "\n").strip()


class TwilioProvider:
    name = "twilio"
    can_reconcile = True

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        account_sid: str,
        auth_token: str,
        public_base_url: str,
        clock: Clock,
        api_base_url: str = "https://api.twilio.com",
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        find_page_size: int = 100,
        find_max_pages: int = 5,
    ) -> None:
        self._session = session
        self._account_sid = account_sid
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {credentials}", "Accept": "application/json"}
        self._base = api_base_url.rstrip("/")
        self._public_base_url = public_base_url
        self._clock = clock
        self._timeout = timeout
        self._page_size = find_page_size
        self._max_pages = find_max_pages

    @property
    def messages_url(self) -> str:
        return f"{self._base}/{API_VERSION}/Accounts/{self._account_sid}/Messages.json"

    async def send(self, outgoing: Outgoing) -> Accepted:
        callback = outgoing.status_callback_url or status_callback_url(
            self._public_base_url, self.name, outgoing.reference
        )
        form = {
            "To": outgoing.to,
            "From": outgoing.from_,
            "Body": outgoing.body,
            "StatusCallback": callback,
        }
        try:
            async with self._session.post(
                self.messages_url,
                data=form,
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,  # a redirected POST would be replayed as a GET
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                payload = await self._json(response)
        except (TimeoutError, aiohttp.ClientError) as exc:
            error = classify_transport_error(exc)
            self._log_failure("send", outgoing, error)
            raise error from exc

        if 200 <= status < 300:
            sid = payload.get("sid") if payload else None
            if payload and isinstance(sid, str) and sid:
                return Accepted(sid, str(payload.get("status") or "queued"))
            error = ProviderError(
                f"Twilio answered {status} without a message sid",
                kind="ambiguous",
                http_status=status,
            )
        else:
            error = self._http_error(status, payload, retry_after)
        self._log_failure("send", outgoing, error)
        raise error

    async def find(self, outgoing: Outgoing, since: datetime) -> Accepted | None:
        # A still-queued message has an empty DateSent, so filtering on DateSent alone would
        # miss exactly the message we are looking for. The first pass lists this To/From pair
        # unfiltered, newest first; only when that was cut short by the page cap does a second
        # pass narrow to messages sent since the day before.
        cutoff = since - timedelta(days=1)
        params = {"To": outgoing.to, "From": outgoing.from_, "PageSize": str(self._page_size)}
        found, complete = await self._search(params, outgoing, cutoff)
        if found is None and not complete:
            dated = {**params, "DateSent>": cutoff.astimezone(UTC).date().isoformat()}
            found, _ = await self._search(dated, outgoing, cutoff)
        return found

    async def _search(
        self, params: Mapping[str, str], outgoing: Outgoing, cutoff: datetime
    ) -> tuple[Accepted | None, bool]:
        """(match, whether every page was read)."""
        url = self.messages_url
        query: Mapping[str, str] | None = params
        for _ in range(self._max_pages):
            page = await self._get_page(url, query, outgoing)
            messages = page.get("messages")
            for message in messages if isinstance(messages, list) else []:
                if isinstance(message, dict) and self._matches(message, outgoing, cutoff):
                    return Accepted(str(message["sid"]), str(message["status"])), True
            next_uri = page.get("next_page_uri")
            if not next_uri:
                return None, True
            if not isinstance(next_uri, str) or not next_uri.startswith("/"):
                return None, False  # not a page of this API; never send our credentials there
            # next_page_uri is relative to the API host and already carries the filters.
            url, query = self._base + next_uri, None
        return None, False

    async def _get_page(
        self, url: str, query: Mapping[str, str] | None, outgoing: Outgoing
    ) -> dict[str, Any]:
        try:
            async with self._session.get(
                url, params=query, headers=self._headers, timeout=self._timeout
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                payload = await self._json(response)
        except (TimeoutError, aiohttp.ClientError) as exc:
            error = ProviderError(
                f"Twilio message list failed: {type(exc).__name__}", kind="unreached"
            )
            self._log_failure("find", outgoing, error)
            raise error from exc
        if status == 200 and payload is not None:
            return payload
        # Whatever went wrong, the question went unanswered: the loop may ask again later.
        http = self._http_error(status, payload, retry_after)
        error = ProviderError(
            f"Twilio message list failed: {http}",
            kind="unreached",
            code=http.code,
            http_status=status,
            retry_after=http.retry_after,
        )
        self._log_failure("find", outgoing, error)
        raise error

    @staticmethod
    def _matches(message: dict[str, Any], outgoing: Outgoing, cutoff: datetime) -> bool:
        if message.get("status") not in HELD_STATUSES or not message.get("sid"):
            return False
        if message.get("to") != outgoing.to or message.get("from") != outgoing.from_:
            return False
        if not _same_body(outgoing.body, message.get("body")):
            return False
        created = _parse_twilio_date(message.get("date_created"))
        # An unreadable date counts as recent: a false "found" costs one message, a false
        # "not found" sends it twice.
        return created is None or created >= cutoff

    @staticmethod
    async def _json(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
        raw = await response.read()
        try:
            data = json.loads(raw)
        except ValueError:  # includes UnicodeDecodeError
            return None
        return data if isinstance(data, dict) else None

    def _http_error(
        self, status: int, payload: Mapping[str, Any] | None, retry_after: str | None
    ) -> ProviderError:
        code_value = payload.get("code") if payload else None
        code = str(code_value) if code_value is not None else None
        detail = payload.get("message") if payload else None
        text = f"Twilio answered {status}" + (f" ({code})" if code else "")
        if isinstance(detail, str) and detail:
            # Twilio's messages quote the number ("The 'To' number +61… is not valid").
            text += ": " + mask_phone_numbers(detail)
        kind: ErrorKind
        if status == 429:
            kind = "rate_limited"
        elif 400 <= status < 500:
            kind = "rejected"
        else:
            kind = "ambiguous"
        return ProviderError(
            text,
            kind=kind,
            code=code,
            http_status=status,
            retry_after=parse_retry_after(retry_after, self._clock.now()),
            opted_out=code == OPTED_OUT_CODE,
        )

    @staticmethod
    def _log_failure(action: str, outgoing: Outgoing, error: ProviderError) -> None:
        # Never the body; the reference identifies the job.
        log.warning(
            "twilio %s failed: %s",
            action,
            error,
            extra={
                "provider": "twilio",
                "reference": outgoing.reference,
                "kind": error.kind,
                "code": error.code,
                "http_status": error.http_status,
            },
        )
