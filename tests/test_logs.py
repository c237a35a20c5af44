"""JSON log lines: secrets redacted, phone numbers masked, the request's correlation id kept."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.logs import JsonFormatter, request_id_var


def format_record(msg: str, *args: object, **extra: Any) -> dict[str, Any]:
    record = logging.LogRecord("smsapp.test", logging.INFO, __file__, 1, msg, args, None)
    for name, value in extra.items():
        setattr(record, name, value)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


class JsonLines(logging.Handler):
    """Formats each record with JsonFormatter as it is emitted (inside the request's context)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def http_log() -> Iterator[JsonLines]:
    handler = JsonLines()
    logger = logging.getLogger("smsapp.http")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_it_writes_one_json_object_per_line_with_ts_level_logger_and_msg() -> None:
    entry = format_record("sent %d messages\nin two lines", 3)
    assert entry["level"] == "info"
    assert entry["logger"] == "smsapp.test"
    assert entry["msg"] == "sent 3 messages\nin two lines"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["ts"])


def test_it_carries_extra_fields_and_the_exception() -> None:
    record = logging.LogRecord("smsapp.test", logging.ERROR, __file__, 1, "boom", None, None)
    try:
        raise RuntimeError("kaput")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    record.campaign_id = 7
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "error"
    assert entry["campaign_id"] == 7
    assert "RuntimeError: kaput" in entry["exc"]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("sent to +61412345678", "sent to +********678"),
        ("sent to +61 412 345 678 today", "sent to +********678 today"),
        ("call 0412 345 678 now", "call *******678 now"),
        ("call 0412345678", "call *******678"),
        ("from +14155550123.", "from +********123."),
        ("numbers: +61412345678, +61498765432", "numbers: +********678, +********432"),
    ],
)
def test_it_masks_phone_numbers_in_messages_to_the_last_three_digits(
    text: str, masked: str
) -> None:
    assert format_record(text)["msg"] == masked


def test_it_masks_phone_numbers_in_extra_fields_at_any_depth() -> None:
    entry = format_record(
        "inbound",
        phone="+61412345678",
        detail={"from": "0412 345 678", "to": ["+61498765432"]},
    )
    assert entry["phone"] == "+********678"
    assert entry["detail"] == {"from": "*******678", "to": ["+********432"]}
    assert "412345" not in json.dumps(entry)


@pytest.mark.parametrize(
    "text",
    [
        "processed 42 rows in 1500 ms",
        "job 1234567 of campaign 12",
        "request 3f2a9c0e8b7d4e6f a1b2c3d4e5f60718",
        "at 2026-01-05T09:30:00.123456+00:00 and 2026-01-05T09:30:00Z",
        "on 2026-01-05 at 09:30",
        "version 1.2.3, price 5.5 cents, ratio 0.987654321",
        "task_id=7 finished, disk_usage 93",
    ],
)
def test_it_leaves_small_numbers_ids_and_timestamps_alone(text: str) -> None:
    assert format_record(text)["msg"] == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer sk_abcdefghijklmnop", "abcdefghijklmnop"),
        ("got header bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("key sk_live_0123456789abcdef", "0123456789abcdef"),
        ("login with password=hunter2 failed", "hunter2"),
        ("dsn postgresql://app:hunter2@db:5432/smsapp", "hunter2"),
        ("smtp smtps://mailer:hunter2@mail.example.com:465", "hunter2"),
        ("callback ?token=abc123def&x=1", "abc123def"),
        ("api_key=topsecretvalue", "topsecretvalue"),
    ],
)
def test_it_redacts_secrets_in_messages(text: str, secret: str) -> None:
    msg = format_record(text)["msg"]
    assert secret not in msg
    assert "***" in msg


def test_it_keeps_the_shape_of_a_redacted_url() -> None:
    msg = format_record("dsn postgresql://app:hunter2@db:5432/smsapp")["msg"]
    assert msg == "dsn postgresql://app:***@db:5432/smsapp"


@pytest.mark.parametrize(
    "key",
    ["token", "secret", "password", "authorization", "Authorization", "api_key", "csrf_token"],
)
def test_it_redacts_extra_fields_named_like_secrets(key: str) -> None:
    entry = format_record("headers", **{key: "plain-value-123"})
    assert entry[key] == "***"
    nested = format_record("headers", headers={key: "plain-value-123", "accept": "text/html"})
    assert nested["headers"] == {key: "***", "accept": "text/html"}


def test_it_adds_the_request_id_from_the_context() -> None:
    token = request_id_var.set("req-123")
    try:
        assert format_record("hello")["request_id"] == "req-123"
    finally:
        request_id_var.reset(token)
    assert "request_id" not in format_record("hello")


async def test_it_makes_a_request_id_when_none_is_given_and_echoes_it(
    client: TestClient[Any, Any], http_log: JsonLines
) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    again = await client.get("/healthz")
    assert again.headers["X-Request-ID"] != request_id
    first = http_log.lines[0]
    assert first["request_id"] == request_id
    assert first["msg"] == "GET /healthz 200"
    assert first["status"] == 200


async def test_it_echoes_a_valid_request_id_unchanged_and_logs_it(
    client: TestClient[Any, Any], http_log: JsonLines
) -> None:
    given = "abc-123.DEF_456:789"
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given
    assert [line["request_id"] for line in http_log.lines] == [given]


@pytest.mark.parametrize(
    "given",
    ["x" * 129, "has space", "semi;colon", "<script>", "ünïcode", "a/b"],
)
async def test_it_replaces_a_malformed_request_id(
    client: TestClient[Any, Any], http_log: JsonLines, given: str
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    echoed = response.headers["X-Request-ID"]
    assert echoed != given
    assert re.fullmatch(r"[0-9a-f]{32}", echoed)
    assert [line["request_id"] for line in http_log.lines] == [echoed]


async def test_it_keeps_the_request_id_on_an_error_answer(
    client: TestClient[Any, Any], http_log: JsonLines
) -> None:
    response = await client.get(
        "/api/me", headers={"X-Request-ID": "trace-401", "Authorization": "Bearer sk_unknown"}
    )
    assert response.status == 401
    assert response.headers["X-Request-ID"] == "trace-401"
    assert http_log.lines[-1]["request_id"] == "trace-401"
    assert http_log.lines[-1]["status"] == 401
