"""The built-in sandbox provider: accepts, remembers for `find`, fails deterministically with
a seeded random, and produces signed status callbacks once their latency has passed."""

from __future__ import annotations

import base64
import json
import random
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from smsapp.clock import ManualClock
from smsapp.config import load_settings
from smsapp.engine.providers import (
    Accepted,
    Outgoing,
    ProviderError,
    SandboxProvider,
    TwilioProvider,
    make_provider,
)
from smsapp.engine.webhook_signatures import verify_standard

TO = "+61412345678"
FROM = "+61400000000"
SECRET = "whsec_" + base64.b64encode(b"sandbox-test-secret-32-bytes-lon").decode()


def outgoing(n: int = 1, *, to: str = TO, body: str | None = None) -> Outgoing:
    return Outgoing(to=to, from_=FROM, body=body or f"Hello {n}", reference=f"att-{n}")


def sandbox(clock: ManualClock, **options: object) -> SandboxProvider:
    settings: dict[str, object] = {
        "public_base_url": "https://sms.example.com",
        "webhook_secret": SECRET,
        "latency": timedelta(seconds=5),
        **options,
    }
    return SandboxProvider(clock, **settings)  # type: ignore[arg-type]


async def test_it_accepts_and_finds_what_it_accepted(clock: ManualClock) -> None:
    provider = sandbox(clock)
    since = clock.now()
    accepted = await provider.send(outgoing())

    assert accepted.status == "queued"
    assert accepted.provider_message_id.startswith("SB")
    int(accepted.provider_message_id[2:], 16)  # hex
    assert await provider.find(outgoing(), since) == accepted
    assert await provider.find(outgoing(body="Something else"), since) is None
    assert await provider.find(outgoing(2), since) is None
    assert (provider.name, provider.can_reconcile) == ("sandbox", True)


async def test_it_does_not_find_what_it_never_accepted(clock: ManualClock) -> None:
    provider = sandbox(clock)
    assert await provider.find(outgoing(), clock.now()) is None


async def test_it_fails_the_same_messages_with_the_same_seed(clock: ManualClock) -> None:
    async def outcomes(seed: int) -> list[str]:
        provider = sandbox(clock, failure_rate=0.5, rng=random.Random(seed))
        for n in range(40):
            await provider.send(outgoing(n))
        return [c.status for c in provider.due_callbacks(clock.now() + timedelta(minutes=1))]

    first, again, other = await outcomes(7), await outcomes(7), await outcomes(8)
    assert first == again
    assert first != other
    assert set(first) == {"delivered", "failed", "undelivered"}


@pytest.mark.parametrize(("rate", "delivered"), [(0.0, 20), (1.0, 0)])
async def test_it_fails_at_the_configured_rate(
    clock: ManualClock, rate: float, delivered: int
) -> None:
    provider = sandbox(clock, failure_rate=rate, rng=random.Random(1))
    for n in range(20):
        await provider.send(outgoing(n))
    callbacks = provider.due_callbacks(clock.now() + timedelta(seconds=5))
    assert sum(c.status == "delivered" for c in callbacks) == delivered
    for callback in callbacks:
        payload = json.loads(callback.body)
        if callback.status == "delivered":
            assert "error_code" not in payload
        else:
            assert payload["error_code"] in {"30003", "30008"}


async def test_it_makes_callbacks_due_after_the_latency_once_each(clock: ManualClock) -> None:
    provider = sandbox(clock)
    accepted = await provider.send(outgoing())
    clock.advance(seconds=2)
    later = await provider.send(outgoing(2))

    assert provider.due_callbacks(clock.advance(seconds=2)) == []  # 4 s after the first
    [first] = provider.due_callbacks(clock.advance(seconds=1))  # 5 s
    assert (first.message_id, first.reference, first.status) == (
        accepted.provider_message_id,
        "att-1",
        "delivered",
    )
    assert first.url == "https://sms.example.com/webhooks/sandbox/status?ref=att-1"
    assert json.loads(first.body) == {
        "type": "message.status",
        "message_id": accepted.provider_message_id,
        "reference": "att-1",
        "status": "delivered",
        "to": TO,
        "from": FROM,
        "timestamp": "2026-01-05T00:00:05+00:00",
    }
    assert provider.due_callbacks(clock.now()) == []  # handed out once
    [second] = provider.due_callbacks(clock.advance(seconds=10))
    assert second.message_id == later.provider_message_id


async def test_it_signs_callbacks_that_our_verifier_accepts(clock: ManualClock) -> None:
    provider = sandbox(clock)
    await provider.send(outgoing())
    now = clock.advance(seconds=5)
    [callback] = provider.due_callbacks(now)

    assert callback.headers["Content-Type"] == "application/json"
    assert callback.headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert callback.headers["webhook-id"] == f"msg_{callback.message_id}_delivered"
    assert verify_standard([SECRET], callback.headers, callback.body, now)
    assert not verify_standard([SECRET], callback.headers, callback.body + b" ", now)
    other = "whsec_" + base64.b64encode(b"another-secret-of-thirty-two-byt").decode()
    assert not verify_standard([other], callback.headers, callback.body, now)


async def test_its_callbacks_verify_with_the_standard_webhooks_library(
    clock: ManualClock,
) -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    provider = SandboxProvider(clock)  # no secret configured: it makes one
    assert provider.webhook_secret.startswith("whsec_")
    assert len(base64.b64decode(provider.webhook_secret[6:])) == 32

    await provider.send(outgoing())
    [callback] = provider.due_callbacks(clock.now() + timedelta(minutes=1))
    assert verify_standard([provider.webhook_secret], callback.headers, callback.body, clock.now())
    webhook = standardwebhooks.Webhook(provider.webhook_secret)
    expected = webhook.sign(
        callback.headers["webhook-id"], clock.now() + timedelta(minutes=1), callback.body.decode()
    )
    assert callback.headers["webhook-signature"] == expected


async def test_each_sandbox_makes_its_own_secret(clock: ManualClock) -> None:
    assert SandboxProvider(clock).webhook_secret != SandboxProvider(clock).webhook_secret


async def test_it_uses_the_callback_url_it_is_given(clock: ManualClock) -> None:
    provider = sandbox(clock)
    await provider.send(
        Outgoing(TO, FROM, "Hi", "att-9", status_callback_url="http://app.test/cb?ref=att-9")
    )
    [callback] = provider.due_callbacks(clock.now() + timedelta(seconds=5))
    assert callback.url == "http://app.test/cb?ref=att-9"


@pytest.mark.parametrize(
    ("message", "code", "opted_out"),
    [
        (Outgoing("0412345678", FROM, "Hi", "a"), "21211", False),
        (Outgoing("+61499999999", FROM, "Hi", "a"), "21610", True),
        (Outgoing(TO, FROM, "", "a"), "21602", False),
    ],
)
async def test_it_rejects_like_a_provider(
    clock: ManualClock, message: Outgoing, code: str, opted_out: bool
) -> None:
    provider = sandbox(clock, opted_out={"+61499999999"})
    with pytest.raises(ProviderError) as caught:
        await provider.send(message)
    error = caught.value
    assert (error.kind, error.permanent, error.code, error.opted_out) == (
        "rejected",
        True,
        code,
        opted_out,
    )
    assert provider.messages == []


@pytest.mark.parametrize("created", [True, False])
async def test_it_can_be_told_to_fail_the_next_send(clock: ManualClock, created: bool) -> None:
    provider = sandbox(clock)
    since = clock.now()
    provider.fail_next(ProviderError("boom", kind="ambiguous", http_status=500), created=created)

    with pytest.raises(ProviderError) as caught:
        await provider.send(outgoing())
    assert caught.value.kind == "ambiguous"

    found = await provider.find(outgoing(), since)
    assert (found is not None) == created
    assert isinstance(await provider.send(outgoing(2)), Accepted)  # the script is used up


async def test_it_stops_finding_a_message_once_it_failed(clock: ManualClock) -> None:
    provider = sandbox(clock, failure_rate=1.0, rng=random.Random(3))
    since = clock.now()
    await provider.send(outgoing())
    assert await provider.find(outgoing(), since) is not None
    [callback] = provider.due_callbacks(clock.advance(seconds=5))
    assert callback.status in {"failed", "undelivered"}
    assert await provider.find(outgoing(), since) is None


async def test_it_forgets_old_messages_whose_callbacks_went_out(clock: ManualClock) -> None:
    provider = sandbox(clock)
    await provider.send(outgoing(1))
    await provider.send(outgoing(2))
    provider.due_callbacks(clock.advance(seconds=5))
    clock.advance(days=3)
    await provider.send(outgoing(3))
    assert [m.outgoing.reference for m in provider.messages] == ["att-3"]


def test_it_refuses_a_failure_rate_outside_0_to_1(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        SandboxProvider(clock, failure_rate=1.5)


async def test_make_provider_picks_the_configured_provider(
    clock: ManualClock, tmp_path: Path
) -> None:
    base = {
        "SMSAPP_DATA_DIR": str(tmp_path),
        "SMSAPP_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
        "PUBLIC_BASE_URL": "https://sms.example.com",
    }
    async with aiohttp.ClientSession() as session:
        default = make_provider(load_settings(base), session, clock)
        assert isinstance(default, SandboxProvider)
        assert default.webhook_secret.startswith("whsec_")

        configured = make_provider(
            load_settings({**base, "SANDBOX_WEBHOOK_SECRET": SECRET}), session, clock
        )
        assert isinstance(configured, SandboxProvider)
        assert configured.webhook_secret == SECRET

        twilio_env = {
            **base,
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": "AC123",
            "TWILIO_AUTH_TOKEN": "token",
            "TWILIO_API_BASE_URL": "http://127.0.0.1:9999",
        }
        twilio = make_provider(load_settings(twilio_env), session, clock)
        assert isinstance(twilio, TwilioProvider)
        assert twilio.messages_url == (
            "http://127.0.0.1:9999/2010-04-01/Accounts/AC123/Messages.json"
        )
