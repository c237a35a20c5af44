"""TwilioProvider against a local stand-in of Twilio's Messages API: every answer Twilio can
give maps to the right ProviderError kind, and `find` reconciles ambiguous sends."""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from smsapp.clock import ManualClock
from smsapp.engine.providers import Accepted, Outgoing, ProviderError, TwilioProvider
from smsapp.engine.providers.twilio import classify_transport_error, parse_retry_after
from smsapp.logs import JsonFormatter
from tests.twilio_standin import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    Created,
    Drop,
    Error,
    Hang,
    Raw,
    TwilioStandin,
)

PUBLIC = "https://sms.example.com"
TO = "+61412345678"
FROM = "+61400000000"
BODY = "Acme: 20% off today https://s.example/abc123 Reply STOP to opt out"


def outgoing(body: str = BODY, *, to: str = TO, from_: str = FROM, ref: str = "att-1") -> Outgoing:
    return Outgoing(to=to, from_=from_, body=body, reference=ref)


@dataclass
class Rig:
    standin: TwilioStandin
    session: aiohttp.ClientSession
    base_url: str
    clock: ManualClock

    def provider(self, **options: object) -> TwilioProvider:
        settings: dict[str, object] = {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "api_base_url": self.base_url,
            "public_base_url": PUBLIC,
            "clock": self.clock,
            **options,
        }
        return TwilioProvider(self.session, **settings)  # type: ignore[arg-type]


@pytest.fixture
async def rig(aiohttp_server: AiohttpServer, clock: ManualClock) -> AsyncIterator[Rig]:
    standin = TwilioStandin(clock)
    server = await aiohttp_server(standin.app)
    async with aiohttp.ClientSession() as session:
        yield Rig(standin, session, str(server.make_url("")).rstrip("/"), clock)
    standin.release()


@pytest.fixture
def twilio(rig: Rig) -> TwilioProvider:
    return rig.provider()


async def send_error(provider: TwilioProvider, message: Outgoing | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.send(message or outgoing())
    return caught.value


# --- send ------------------------------------------------------------------------------------


async def test_it_sends_form_fields_with_basic_auth_and_our_reference_in_the_callback(
    rig: Rig, twilio: TwilioProvider
) -> None:
    accepted = await twilio.send(outgoing(ref="att-42/x"))

    [request] = rig.standin.sends
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert dict(request.form) == {
        "To": TO,
        "From": FROM,
        "Body": BODY,
        "StatusCallback": f"{PUBLIC}/webhooks/twilio/status?ref=att-42%2Fx",
    }
    assert accepted == Accepted(rig.standin.messages[0]["sid"], "queued")
    assert accepted.provider_message_id.startswith("SM")


async def test_it_uses_the_callback_url_it_is_given(rig: Rig, twilio: TwilioProvider) -> None:
    given = Outgoing(TO, "Acme", BODY, "att-1", status_callback_url=f"{PUBLIC}/elsewhere?ref=1")
    await twilio.send(given)
    [request] = rig.standin.sends
    assert request.form_value("StatusCallback") == f"{PUBLIC}/elsewhere?ref=1"
    assert request.form_value("From") == "Acme"


async def test_it_reports_the_status_twilio_answers(rig: Rig, twilio: TwilioProvider) -> None:
    rig.standin.script(Created(status="accepted"))
    assert (await twilio.send(outgoing())).status == "accepted"


async def test_it_rejects_an_invalid_number_for_good(rig: Rig, twilio: TwilioProvider) -> None:
    rig.standin.script(
        Error(400, 21211, "The 'To' number +61412345678 is not a valid phone number.")
    )
    error = await send_error(twilio)
    assert (error.kind, error.permanent, error.code, error.http_status) == (
        "rejected",
        True,
        "21211",
        400,
    )
    assert not error.opted_out
    assert error.retry_after is None
    assert "+61412345678" not in str(error)  # Twilio's text quotes the number; ours masks it
    assert "*678" in str(error)


async def test_it_marks_an_unsubscribed_recipient_as_opted_out(
    rig: Rig, twilio: TwilioProvider
) -> None:
    rig.standin.script(Error(400, 21610, "Attempt to send to unsubscribed recipient"))
    error = await send_error(twilio)
    assert (error.kind, error.permanent, error.code, error.opted_out) == (
        "rejected",
        True,
        "21610",
        True,
    )


async def test_it_rejects_bad_credentials(rig: Rig) -> None:
    provider = rig.provider(auth_token="wrong")
    error = await send_error(provider)
    assert (error.kind, error.code, error.http_status) == ("rejected", "20003", 401)
    assert rig.standin.messages == []


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("1.5", 1.5), ("Mon, 05 Jan 2026 00:00:30 GMT", 30.0), (None, None)],
)
async def test_it_backs_off_on_429_with_retry_after(
    rig: Rig, twilio: TwilioProvider, header: str | None, seconds: float | None
) -> None:
    rig.standin.script(Error(429, 20429, "Too Many Requests", retry_after=header))
    error = await send_error(twilio)
    assert (error.kind, error.permanent, error.code, error.http_status) == (
        "rate_limited",
        False,
        "20429",
        429,
    )
    assert error.retry_after == seconds
    assert rig.standin.messages == []


@pytest.mark.parametrize("created", [True, False])
async def test_it_calls_a_500_ambiguous_and_find_tells_whether_it_was_created(
    rig: Rig, twilio: TwilioProvider, created: bool
) -> None:
    since = rig.clock.now()
    rig.standin.script(Error(500, 20500, "Internal Server Error", created=created))
    error = await send_error(twilio)
    assert (error.kind, error.permanent, error.http_status, error.code) == (
        "ambiguous",
        False,
        500,
        "20500",
    )

    rig.clock.advance(seconds=40)
    found = await twilio.find(outgoing(), since)
    if created:
        assert found == Accepted(rig.standin.messages[0]["sid"], "queued")
    else:
        assert found is None
    assert len(rig.standin.sends) == 1


async def test_it_calls_a_timeout_after_sending_ambiguous(rig: Rig) -> None:
    since = rig.clock.now()
    impatient = rig.provider(timeout=aiohttp.ClientTimeout(total=0.2))
    rig.standin.script(Hang(created=True))
    error = await send_error(impatient)
    assert (error.kind, error.permanent, error.http_status) == ("ambiguous", False, None)

    found = await impatient.find(outgoing(), since)
    assert found is not None
    assert found.provider_message_id == rig.standin.messages[0]["sid"]
    assert len(rig.standin.sends) == 1


async def test_it_calls_a_read_timeout_ambiguous(rig: Rig) -> None:
    impatient = rig.provider(timeout=aiohttp.ClientTimeout(sock_read=0.2))
    rig.standin.script(Hang())
    assert (await send_error(impatient)).kind == "ambiguous"


async def test_it_calls_a_connection_dropped_after_the_request_ambiguous(
    rig: Rig, twilio: TwilioProvider
) -> None:
    rig.standin.script(Drop(created=True))
    error = await send_error(twilio)
    assert error.kind == "ambiguous"
    assert len(rig.standin.sends) == 1


@pytest.mark.parametrize("body", ["<html>Bad gateway</html>", "{}", '{"status": "queued"}'])
async def test_it_calls_a_success_without_a_sid_ambiguous(
    rig: Rig, twilio: TwilioProvider, body: str
) -> None:
    rig.standin.script(Raw(201, body, created=True))
    error = await send_error(twilio)
    assert (error.kind, error.http_status) == ("ambiguous", 201)


async def test_it_calls_a_502_without_json_ambiguous(rig: Rig, twilio: TwilioProvider) -> None:
    rig.standin.script(Raw(502, "<html>Bad gateway</html>"))
    error = await send_error(twilio)
    assert (error.kind, error.http_status, error.code) == ("ambiguous", 502, None)


async def test_it_calls_a_refused_connection_unreached(
    clock: ManualClock, unused_port: int
) -> None:
    async with aiohttp.ClientSession() as session:
        provider = TwilioProvider(
            session,
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            api_base_url=f"http://127.0.0.1:{unused_port}",
            public_base_url=PUBLIC,
            clock=clock,
        )
        error = await send_error(provider)
        assert (error.kind, error.permanent, error.http_status) == ("unreached", False, None)

        with pytest.raises(ProviderError) as caught:
            await provider.find(outgoing(), clock.now())
        assert caught.value.kind == "unreached"


def test_it_calls_a_connect_timeout_unreached_and_a_total_timeout_ambiguous() -> None:
    assert classify_transport_error(aiohttp.ConnectionTimeoutError()).kind == "unreached"
    assert classify_transport_error(aiohttp.SocketTimeoutError()).kind == "ambiguous"
    assert classify_transport_error(TimeoutError()).kind == "ambiguous"
    assert classify_transport_error(aiohttp.ServerDisconnectedError()).kind == "ambiguous"


def test_it_reads_retry_after_as_seconds_or_a_date(clock: ManualClock) -> None:
    now = clock.now()
    assert parse_retry_after("12", now) == 12.0
    assert parse_retry_after("Mon, 05 Jan 2026 00:01:00 GMT", now) == 60.0
    assert parse_retry_after("Sun, 04 Jan 2026 23:00:00 GMT", now) == 0.0  # past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


async def test_it_never_logs_the_body_and_the_formatter_masks_numbers(
    rig: Rig, twilio: TwilioProvider, caplog: pytest.LogCaptureFixture
) -> None:
    rig.standin.script(Error(400, 21211, f"The 'To' number {TO} is not a valid phone number."))
    with caplog.at_level(logging.WARNING, logger="smsapp.engine.providers.twilio"):
        await send_error(twilio)
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert lines
    for line in lines:
        assert "20% off" not in line
        assert TO not in line
        assert TO[1:] not in line
    entry = json.loads(lines[0])
    assert (entry["kind"], entry["code"], entry["reference"]) == ("rejected", "21211", "att-1")


# --- find ------------------------------------------------------------------------------------


async def test_it_finds_a_queued_message_whose_date_sent_is_empty(
    rig: Rig, twilio: TwilioProvider
) -> None:
    since = rig.clock.now()
    rig.standin.add_message(to=TO, from_=FROM, body=BODY, status="queued")

    found = await twilio.find(outgoing(), since)

    assert found == Accepted(rig.standin.messages[0]["sid"], "queued")
    [listing] = rig.standin.lists
    assert dict(listing.query) == {"To": TO, "From": FROM, "PageSize": "100"}


@pytest.mark.parametrize("status", ["accepted", "sending", "sent", "delivered"])
async def test_it_finds_a_message_the_provider_still_holds(
    rig: Rig, twilio: TwilioProvider, status: str
) -> None:
    since = rig.clock.now()
    rig.standin.add_message(to=TO, from_=FROM, body=BODY, status=status, sent=since)
    found = await twilio.find(outgoing(), since)
    assert found is not None and found.status == status


@pytest.mark.parametrize(
    ("to", "from_", "body", "status", "days_ago"),
    [
        (TO, FROM, "Acme: 30% off today", "queued", 0.0),  # another body
        (TO, "+61400000001", BODY, "queued", 0.0),  # another sender
        ("+61412345679", FROM, BODY, "queued", 0.0),  # another recipient
        (TO, FROM, BODY, "failed", 0.0),  # given up on: a resend cannot deliver twice
        (TO, FROM, BODY, "undelivered", 0.0),
        (TO, FROM, BODY, "queued", 1.1),  # before the day ahead of the attempt
    ],
)
async def test_it_does_not_find_another_message(
    rig: Rig,
    twilio: TwilioProvider,
    to: str,
    from_: str,
    body: str,
    status: str,
    days_ago: float,
) -> None:
    since = rig.clock.now()
    created = since - timedelta(days=days_ago)
    rig.standin.add_message(to=to, from_=from_, body=body, status=status, created=created)
    assert await twilio.find(outgoing(), since) is None


async def test_it_ignores_surrounding_whitespace_and_line_endings_in_the_body(
    rig: Rig, twilio: TwilioProvider
) -> None:
    since = rig.clock.now()
    rig.standin.add_message(to=TO, from_=FROM, body="Line one\r\nLine two \n")
    assert await twilio.find(outgoing("Line one\nLine two"), since) is not None


async def test_it_looks_back_a_day_before_the_attempt(rig: Rig, twilio: TwilioProvider) -> None:
    since = rig.clock.now()
    rig.standin.add_message(to=TO, from_=FROM, body=BODY, created=since - timedelta(hours=23))
    assert await twilio.find(outgoing(), since) is not None


async def test_it_follows_next_page_uri(rig: Rig) -> None:
    provider = rig.provider(find_page_size=2)
    since = rig.clock.now()
    target = rig.standin.add_message(to=TO, from_=FROM, body=BODY, created=since)
    for n in range(5):  # five newer messages to the same number push it to page 3
        rig.standin.add_message(
            to=TO, from_=FROM, body=f"other {n}", created=since + timedelta(seconds=n + 1)
        )

    found = await provider.find(outgoing(), since)

    assert found is not None and found.provider_message_id == target["sid"]
    pages = rig.standin.lists
    assert [dict(p.query).get("Page", "0") for p in pages] == ["0", "1", "2"]
    assert all(dict(p.query)["To"] == TO and dict(p.query)["From"] == FROM for p in pages)


async def test_it_narrows_by_date_sent_when_the_page_cap_cuts_the_list_short(rig: Rig) -> None:
    provider = rig.provider(find_page_size=2, find_max_pages=2)
    since = rig.clock.now()
    target = rig.standin.add_message(
        to=TO, from_=FROM, body=BODY, status="sent", created=since, sent=since
    )
    for n in range(6):  # newer, still queued: they fill both capped pages of the first pass
        rig.standin.add_message(
            to=TO, from_=FROM, body=f"other {n}", created=since + timedelta(seconds=n + 1)
        )

    found = await provider.find(outgoing(), since)

    assert found is not None and found.provider_message_id == target["sid"]
    unfiltered = [p for p in rig.standin.lists if "DateSent>" not in p.query_names()]
    dated = [p for p in rig.standin.lists if "DateSent>" in p.query_names()]
    assert len(unfiltered) == 2
    assert [dict(p.query)["DateSent>"] for p in dated] == ["2026-01-04"]


async def test_it_gives_up_after_the_page_cap(rig: Rig) -> None:
    provider = rig.provider(find_page_size=1, find_max_pages=2)
    since = rig.clock.now()
    rig.standin.add_message(to=TO, from_=FROM, body=BODY, created=since)
    for n in range(3):
        rig.standin.add_message(
            to=TO, from_=FROM, body=f"other {n}", created=since + timedelta(seconds=n + 1)
        )
    assert await provider.find(outgoing(), since) is None
    # two capped pages, then the dated pass: empty, as a queued message has no DateSent
    assert len(rig.standin.lists) == 3


@pytest.mark.parametrize(
    "answer",
    [Error(500, 20500, "Internal Server Error"), Error(429, 20429, "Too Many", retry_after="3")],
)
async def test_it_reports_unreached_when_the_list_cannot_be_read(
    rig: Rig, twilio: TwilioProvider, answer: Error
) -> None:
    rig.standin.script_list(answer)
    with pytest.raises(ProviderError) as caught:
        await twilio.find(outgoing(), rig.clock.now())
    error = caught.value
    assert (error.kind, error.http_status, error.code) == (
        "unreached",
        answer.http_status,
        str(answer.code),
    )
    assert error.retry_after == (3.0 if answer.retry_after else None)


async def test_it_reports_unreached_when_the_list_times_out(rig: Rig) -> None:
    impatient = rig.provider(timeout=aiohttp.ClientTimeout(total=0.2))
    rig.standin.script_list(Hang())
    with pytest.raises(ProviderError) as caught:
        await impatient.find(outgoing(), rig.clock.now())
    assert caught.value.kind == "unreached"


def test_it_can_reconcile(twilio: TwilioProvider) -> None:
    assert (twilio.name, twilio.can_reconcile) == ("twilio", True)


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
