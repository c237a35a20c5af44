"""Webhook signatures checked against the providers' own reference libraries: Twilio's
RequestValidator and the Standard Webhooks package (both test-only dependencies)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from multidict import MultiDict

from smsapp.engine.webhook_signatures import (
    generate_standard_secret,
    sign_standard,
    twilio_signature,
    verify_standard,
    verify_twilio,
)

TOKEN = "12345678901234567890123456789012"
URL = "https://sms.example.com/webhooks/twilio/status?ref=att-7"
PARAMS = {
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "MessageSid": "SM0123456789abcdef0123456789abcdef",
    "MessageStatus": "delivered",
    "To": "+61412345678",
    "From": "+61400000000",
    "ErrorCode": "",
}
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type":"message.status","message_id":"SB1","status":"delivered"}'


def standard_headers(secret: str, when: datetime, body: bytes = BODY) -> dict[str, str]:
    timestamp = int(when.timestamp())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(secret, "msg_1", timestamp, body),
    }


# --- Twilio ----------------------------------------------------------------------------------


def test_it_verifies_signatures_made_by_twilios_validator() -> None:
    validator_module = pytest.importorskip("twilio.request_validator")
    validator = validator_module.RequestValidator(TOKEN)
    signature = validator.compute_signature(URL, PARAMS)

    assert twilio_signature(TOKEN, URL, PARAMS) == signature
    assert verify_twilio(TOKEN, URL, PARAMS, signature)
    assert validator.validate(URL, PARAMS, twilio_signature(TOKEN, URL, PARAMS))


def test_it_refuses_a_tampered_url_params_or_token() -> None:
    signature = twilio_signature(TOKEN, URL, PARAMS)
    assert verify_twilio(TOKEN, URL, dict(PARAMS), signature)
    assert not verify_twilio(TOKEN, URL.replace("att-7", "att-8"), PARAMS, signature)
    assert not verify_twilio(TOKEN, URL.replace("https", "http"), PARAMS, signature)
    assert not verify_twilio(TOKEN, URL, {**PARAMS, "MessageStatus": "failed"}, signature)
    assert not verify_twilio(TOKEN, URL, {**PARAMS, "Extra": "1"}, signature)
    assert not verify_twilio(TOKEN[:-1] + "3", URL, PARAMS, signature)
    assert not verify_twilio(TOKEN, URL, PARAMS, "")
    assert not verify_twilio(TOKEN, URL, PARAMS, None)
    assert not verify_twilio("", URL, PARAMS, signature)
    assert not verify_twilio(TOKEN, URL, PARAMS, "ünïcode")


def test_it_signs_repeated_params_like_twilio() -> None:
    validator_module = pytest.importorskip("twilio.request_validator")
    validator = validator_module.RequestValidator(TOKEN)
    form = MultiDict([("MediaUrl", "b"), ("Body", "hi"), ("MediaUrl", "a")])
    expected = validator.compute_signature(URL, form)
    assert twilio_signature(TOKEN, URL, form) == expected
    assert twilio_signature(TOKEN, URL, list(form.items())) == expected
    assert twilio_signature(TOKEN, URL, {"MediaUrl": ["a", "b"], "Body": "hi"}) == expected


def test_it_accepts_the_url_with_or_without_its_default_port() -> None:
    with_port = "https://sms.example.com:443/webhooks/twilio/status?ref=att-7"
    assert verify_twilio(TOKEN, URL, PARAMS, twilio_signature(TOKEN, with_port, PARAMS))
    assert verify_twilio(TOKEN, with_port, PARAMS, twilio_signature(TOKEN, URL, PARAMS))


# --- Standard Webhooks -----------------------------------------------------------------------


def test_it_verifies_signatures_made_by_the_standard_webhooks_library() -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    webhook = standardwebhooks.Webhook(SECRET)
    signature = webhook.sign("msg_1", NOW, BODY.decode())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(NOW.timestamp())),
        "webhook-signature": signature,
    }
    assert sign_standard(SECRET, "msg_1", int(NOW.timestamp()), BODY) == signature
    assert verify_standard([SECRET], headers, BODY, NOW)
    # and theirs accepts ours, at the wall-clock time it checks against
    now = datetime.now(UTC)
    webhook.verify(BODY, standard_headers(SECRET, now), json_parse=False)


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (-300, True), (300, True)])
def test_it_accepts_timestamps_within_five_minutes(offset: int, ok: bool) -> None:
    headers = standard_headers(SECRET, NOW + timedelta(seconds=offset))
    assert verify_standard([SECRET], headers, BODY, NOW) is ok


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_it_refuses_stale_and_future_timestamps(offset: int) -> None:
    headers = standard_headers(SECRET, NOW + timedelta(seconds=offset))
    assert not verify_standard([SECRET], headers, BODY, NOW)


def test_it_accepts_either_secret_while_rotating() -> None:
    new = generate_standard_secret()
    assert verify_standard([new, SECRET], standard_headers(SECRET, NOW), BODY, NOW)
    assert verify_standard([new, SECRET], standard_headers(new, NOW), BODY, NOW)
    third = generate_standard_secret()
    assert not verify_standard([new, SECRET], standard_headers(third, NOW), BODY, NOW)
    assert not verify_standard([], standard_headers(SECRET, NOW), BODY, NOW)


def test_it_accepts_any_one_matching_signature_among_several() -> None:
    headers = standard_headers(SECRET, NOW)
    good = headers["webhook-signature"]
    bogus = "v1," + base64.b64encode(b"x" * 32).decode()
    headers["webhook-signature"] = f"{bogus} v1a,abc {good}"
    assert verify_standard([SECRET], headers, BODY, NOW)
    headers["webhook-signature"] = f"{bogus} v2,{good.partition(',')[2]}"
    assert not verify_standard([SECRET], headers, BODY, NOW)


def test_it_refuses_tampering_and_missing_headers() -> None:
    headers = standard_headers(SECRET, NOW)
    assert verify_standard([SECRET], headers, BODY.decode(), NOW)
    assert verify_standard([SECRET], {k.title(): v for k, v in headers.items()}, BODY, NOW)
    assert not verify_standard([SECRET], headers, BODY + b" ", NOW)
    assert not verify_standard([SECRET], {**headers, "webhook-id": "msg_2"}, BODY, NOW)
    for name in headers:
        partial = {k: v for k, v in headers.items() if k != name}
        assert not verify_standard([SECRET], partial, BODY, NOW)
    for bad in ("", "12.5", "-1", "soon", "１２"):
        assert not verify_standard([SECRET], {**headers, "webhook-timestamp": bad}, BODY, NOW)
    assert not verify_standard([SECRET], {**headers, "webhook-signature": "v1,***"}, BODY, NOW)
    assert not verify_standard(["whsec_not base64!"], headers, BODY, NOW)


def test_it_generates_secrets_in_the_standard_form() -> None:
    secret = generate_standard_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != generate_standard_secret()
