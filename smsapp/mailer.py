"""Outgoing email through SMTP_URL (aiosmtplib).

SMTP_URL: `smtp://user:password@host:587` (STARTTLS when the server offers it),
`smtps://…:465` (TLS from the start), `smtp+starttls://…` (STARTTLS required).
The sender is `?from=address` on the URL, else `smsapp@<PUBLIC_BASE_URL host>`.
"""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from smsapp.config import Settings


def sender_address(settings: Settings) -> str:
    if settings.smtp_url:
        query = parse_qs(urlsplit(settings.smtp_url).query)
        if query.get("from"):
            return query["from"][0]
    host = urlsplit(settings.public_base_url).hostname or "localhost"
    return f"smsapp@{host}"


async def send_email(settings: Settings, *, to: str, subject: str, text: str) -> None:
    if not settings.smtp_url:
        raise RuntimeError("SMTP_URL is not configured")
    url = urlsplit(settings.smtp_url)
    message = EmailMessage()
    message["From"] = sender_address(settings)
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    await aiosmtplib.send(
        message,
        hostname=url.hostname or "localhost",
        port=url.port or (465 if url.scheme == "smtps" else 25),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=url.scheme == "smtps",
        start_tls=True if url.scheme == "smtp+starttls" else None,
        timeout=30,
    )
