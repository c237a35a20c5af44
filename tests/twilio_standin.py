"""A local aiohttp server that speaks enough of Twilio's Messages API for the adapter's tests.

Create (POST …/Messages.json) answers with the next scripted `Answer`, or 201 when none is
scripted. List (GET …/Messages.json) filters on To, From and DateSent like Twilio (a message not
yet sent has no date_sent, so any DateSent filter leaves it out), newest first, paged with
next_page_uri. Every request is recorded in arrival order.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from smsapp.clock import Clock

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "standin-auth-token"
API_VERSION = "2010-04-01"


@dataclass(frozen=True)
class Created:
    status: str = "queued"


@dataclass(frozen=True)
class Error:
    """An error answer in Twilio's JSON shape; `created` keeps the message anyway (a 5xx that
    hides a created message)."""

    http_status: int
    code: int | None = None
    message: str = "error"
    retry_after: str | None = None
    created: bool = False


@dataclass(frozen=True)
class Hang:
    """Never answer (the handler awaits an event nobody sets during the test)."""

    created: bool = False


@dataclass(frozen=True)
class Drop:
    """Close the connection after reading the request, without answering."""

    created: bool = False


@dataclass(frozen=True)
class Raw:
    http_status: int
    body: str
    created: bool = False


Answer = Created | Error | Hang | Drop | Raw


@dataclass(frozen=True)
class Recorded:
    seq: int
    method: str
    path: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    headers: dict[str, str]

    def form_value(self, name: str) -> str | None:
        return next((v for k, v in self.form if k == name), None)

    def query_names(self) -> set[str]:
        return {k for k, _ in self.query}


@dataclass
class TwilioStandin:
    clock: Clock
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    create_answers: deque[Answer] = field(default_factory=deque)
    list_answers: deque[Answer] = field(default_factory=deque)
    never: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def messages_path(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

    @property
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(f"/{API_VERSION}/Accounts/{{sid}}/Messages.json", self._create)
        app.router.add_get(f"/{API_VERSION}/Accounts/{{sid}}/Messages.json", self._list)
        return app

    def script(self, *answers: Answer) -> None:
        self.create_answers.extend(answers)

    def script_list(self, *answers: Answer) -> None:
        self.list_answers.extend(answers)

    def release(self) -> None:
        """At teardown only: lets hanging handlers end so the server shuts down promptly."""
        self.never.set()

    @property
    def sends(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    @property
    def lists(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "GET"]

    def add_message(
        self,
        *,
        to: str,
        from_: str,
        body: str,
        status: str = "queued",
        created: datetime | None = None,
        sent: datetime | None = None,
    ) -> dict[str, Any]:
        created = created or self.clock.now()
        sid = "SM" + uuid.uuid4().hex
        message: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": format_datetime(created),
            "date_sent": format_datetime(sent) if sent else None,
            "date_updated": format_datetime(created),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {"media": f"{self.messages_path[:-5]}/{sid}/Media.json"},
            "to": to,
            "uri": f"{self.messages_path[:-5]}/{sid}.json",
            "_created": created,
            "_sent": sent,
        }
        self.messages.append(message)
        return message

    @staticmethod
    def public(message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if not k.startswith("_")}

    async def _record(self, request: web.Request) -> Recorded:
        form: list[tuple[str, str]] = []
        if request.method == "POST":
            posted = await request.post()
            form = [(k, v) for k, v in posted.items() if isinstance(v, str)]
        recorded = Recorded(
            seq=len(self.requests) + 1,
            method=request.method,
            path=request.path,
            query=list(request.query.items()),
            form=form,
            headers=dict(request.headers),
        )
        self.requests.append(recorded)
        return recorded

    def _authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return (
            request.headers.get("Authorization") == f"Basic {expected}"
            and request.match_info["sid"] == self.account_sid
        )

    @staticmethod
    def _error(status: int, code: int | None, message: str, **headers: str) -> web.Response:
        payload = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return web.json_response(payload, status=status, headers=headers)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        if not self._authorised(request):
            return self._error(401, 20003, "Authenticate")
        answer = self.create_answers.popleft() if self.create_answers else Created()
        message = None
        if isinstance(answer, Created) or answer.created:
            message = self.add_message(
                to=recorded.form_value("To") or "",
                from_=recorded.form_value("From") or "",
                body=recorded.form_value("Body") or "",
                status=answer.status if isinstance(answer, Created) else "queued",
            )
        return await self._answer(request, answer, message)

    async def _answer(
        self, request: web.Request, answer: Answer, message: dict[str, Any] | None
    ) -> web.StreamResponse:
        if isinstance(answer, Hang):
            await self.never.wait()
            return web.Response(status=504)
        if isinstance(answer, Drop):
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if isinstance(answer, Raw):
            return web.Response(
                status=answer.http_status, text=answer.body, content_type="application/json"
            )
        if isinstance(answer, Error):
            headers = {"Retry-After": answer.retry_after} if answer.retry_after else {}
            return self._error(answer.http_status, answer.code, answer.message, **headers)
        assert message is not None
        return web.json_response(self.public(message), status=201)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if not self._authorised(request):
            return self._error(401, 20003, "Authenticate")
        if self.list_answers:
            return await self._answer(request, self.list_answers.popleft(), None)
        query = request.query
        filters = {
            k: query[k] for k in ("To", "From", "DateSent", "DateSent<", "DateSent>") if k in query
        }
        matching = [m for m in self.messages if self._passes(m, filters)]
        # Newest first; among equal times, the later-created message first.
        ordered = [
            m for _, m in sorted(enumerate(matching), key=lambda im: (im[1]["_created"], im[0]))
        ][::-1]
        page_size = int(query.get("PageSize", "50"))
        page = int(query.get("Page", "0"))
        chunk = ordered[page * page_size : (page + 1) * page_size]
        has_next = (page + 1) * page_size < len(ordered)

        def uri(page_number: int) -> str:
            params = {**filters, "PageSize": str(page_size), "Page": str(page_number)}
            if page_number:
                params["PageToken"] = f"PA{page_number}"
            return f"{self.messages_path}?{urlencode(params)}"

        return web.json_response(
            {
                "messages": [self.public(m) for m in chunk],
                "page": page,
                "page_size": page_size,
                "start": page * page_size,
                "end": page * page_size + max(len(chunk) - 1, 0),
                "uri": uri(page),
                "first_page_uri": uri(0),
                "next_page_uri": uri(page + 1) if has_next else None,
                "previous_page_uri": uri(page - 1) if page else None,
            }
        )

    @staticmethod
    def _passes(message: dict[str, Any], filters: dict[str, str]) -> bool:
        if "To" in filters and message["to"] != filters["To"]:
            return False
        if "From" in filters and message["from"] != filters["From"]:
            return False
        sent: datetime | None = message["_sent"]
        day = sent.date() if sent else None
        for name in ("DateSent", "DateSent>", "DateSent<"):
            if name not in filters:
                continue
            wanted = date.fromisoformat(filters[name])
            if day is None:
                return False
            if name == "DateSent" and day != wanted:
                return False
            if name == "DateSent>" and day < wanted:
                return False
            if name == "DateSent<" and day > wanted:
                return False
        return True
