"""Webhook signatures, written from the specs (no provider SDK at runtime).

Twilio: `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, full URL + each POST param's name
and value, sorted by name)). The URL is the public one Twilio called, query string included.

Standard Webhooks (the sandbox provider): `webhook-signature` holds space-separated
`v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>` entries; the key is the
base64 after `whsec_`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

TwilioParams = Mapping[str, str] | Mapping[str, Sequence[str]] | Iterable[tuple[str, str]]

STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
STANDARD_TOLERANCE_SECONDS = 300


def _param_values(params: TwilioParams) -> dict[str, set[str]]:
    pairs: Iterable[tuple[str, str | Sequence[str]]]
    # A MultiDict's items() yields every value of a repeated name, which is what we want.
    pairs = params.items() if isinstance(params, Mapping) else params
    values: dict[str, set[str]] = {}
    for name, value in pairs:
        bucket = values.setdefault(name, set())
        if isinstance(value, str):
            bucket.add(value)
        else:
            bucket.update(value)
    return values


def twilio_signature(auth_token: str, url: str, params: TwilioParams) -> str:
    # Repeated names: each distinct value, sorted, as Twilio's own validator does.
    data = url
    values = _param_values(params)
    for name in sorted(values):
        for value in sorted(values[name]):
            data += name + value
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def _port_variants(url: str) -> set[str]:
    # Twilio does not sign the port consistently (its SDK checks both forms), so neither do we.
    parts = urlsplit(url)
    variants = {url}
    host = parts.netloc.rpartition("@")[2]
    try:
        port = parts.port
    except ValueError:
        return variants
    if port is not None:
        variants.add(urlunsplit(parts._replace(netloc=parts.netloc[: -len(f":{port}")])))
    elif host:
        default = 443 if parts.scheme == "https" else 80
        variants.add(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")))
    return variants


def verify_twilio(auth_token: str, url: str, params: TwilioParams, signature: str | None) -> bool:
    if not auth_token or not signature:
        return False
    given = signature.strip().encode()
    matched = False
    for candidate in _port_variants(url):
        expected = twilio_signature(auth_token, candidate, params).encode()
        matched |= hmac.compare_digest(expected, given)
    return matched


def generate_standard_secret() -> str:
    return STANDARD_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _standard_key(secret: str) -> bytes:
    raw = secret.removeprefix(STANDARD_SECRET_PREFIX)
    # Tolerate unpadded base64, as the reference libraries do.
    return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)


def _standard_mac(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The `webhook-signature` value: `v1,<base64>`."""
    raw = body.encode() if isinstance(body, str) else body
    mac = _standard_mac(_standard_key(secret), msg_id, timestamp, raw)
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify_standard(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes | str,
    now: datetime,
    tolerance: int = STANDARD_TOLERANCE_SECONDS,
) -> bool:
    """True when the headers carry a fresh timestamp and a `v1` signature made with any one of
    `secrets` (several are accepted so a secret can be rotated without dropping webhooks)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    timestamp_text = lowered.get("webhook-timestamp", "").strip()
    signature_header = lowered.get("webhook-signature", "")
    if not (msg_id and timestamp_text and signature_header):
        return False
    if not timestamp_text.isdigit() or not timestamp_text.isascii():
        return False
    timestamp = int(timestamp_text)
    if abs(now.timestamp() - timestamp) > tolerance:
        return False

    offered: list[bytes] = []
    for entry in signature_header.split():
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not offered:
        return False

    raw = body.encode() if isinstance(body, str) else body
    matched = False
    for secret in secrets:
        try:
            key = _standard_key(secret)
        except (binascii.Error, ValueError):
            continue
        if not key:
            continue
        expected = _standard_mac(key, msg_id, timestamp, raw)
        for candidate in offered:
            matched |= hmac.compare_digest(expected, candidate)
    return matched
