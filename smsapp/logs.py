"""Logs: one JSON object per line, with the request's correlation id, secrets redacted and
phone numbers masked to their last three digits (pack §14). Redaction happens in the formatter,
so no handler can write an unmasked line, whoever logs it."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[int | None] = ContextVar("job_id", default=None)

# A phone number: 8–15 digits, optionally led by '+', not part of a longer run of digits/letters.
_PHONE = re.compile(r"(?<![\w.])(\+?)(\d[\d ]{6,17}\d)(?![\w])")
# The prefixes (`sk_`, `whsec_`, `Bearer`) only at the start of a word: `task_id` is no secret.
_SECRET_INLINE = re.compile(
    r"(?i)((?<![a-z0-9])(?:bearer\s+|whsec_|sk_)|token=|secret=|password=|key=|sig=|signature=)"
    r"([^\s&\"',;]+)"
)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")
_SECRET_KEYS = re.compile(
    r"(?i)(secret|token|password|passwd|authorization|api_?key|cookie|signature)"
)

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def mask_phone_numbers(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(2))
        if len(digits) < 8 or len(digits) > 15:
            return match.group(0)
        return match.group(1) + "*" * (len(digits) - 3) + digits[-3:]

    return _PHONE.sub(mask, text)


def redact_text(text: str) -> str:
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    text = _SECRET_INLINE.sub(lambda m: m.group(1) + "***", text)
    return mask_phone_numbers(text)


def redact(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEYS.search(key):
        return "***"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        job_id = job_id_var.get()
        if job_id is not None:
            entry["job_id"] = job_id
        for name, value in vars(record).items():
            if name not in _RESERVED and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(redact(entry), default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Route every logger (ours, aiohttp's, yoyo's, apscheduler's) through the JSON formatter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # our middleware logs requests
