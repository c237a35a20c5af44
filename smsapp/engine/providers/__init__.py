"""SMS providers: one module each behind the small interface in `base`.

`make_provider` picks one from SMS_PROVIDER (pack §17): `sandbox` (default, built in) or `twilio`.
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp

from smsapp.clock import Clock
from smsapp.config import Settings
from smsapp.engine.providers.base import (
    Accepted,
    ErrorKind,
    Outgoing,
    Provider,
    ProviderError,
    status_callback_url,
)
from smsapp.engine.providers.sandbox import SandboxProvider, SignedCallback
from smsapp.engine.providers.twilio import TwilioProvider

__all__ = [
    "Accepted",
    "ErrorKind",
    "Outgoing",
    "Provider",
    "ProviderError",
    "SandboxProvider",
    "SignedCallback",
    "TwilioProvider",
    "make_provider",
    "status_callback_url",
]

# The demo's simulated network (SMSAPP_SANDBOX_LATENCY_SECONDS, SMSAPP_SANDBOX_FAILURE_RATE):
# by default callbacks 3 s after sending, and 3 % undelivered so reports show something other
# than 100 %.


def make_provider(settings: Settings, session: aiohttp.ClientSession, clock: Clock) -> Provider:
    if settings.sms_provider == "twilio":
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            # load_settings refuses this already; kept for hand-built Settings.
            raise ValueError("SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        return TwilioProvider(
            session,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            api_base_url=settings.twilio_api_base_url,
            public_base_url=settings.public_base_url,
            clock=clock,
        )
    return SandboxProvider(
        clock,
        public_base_url=settings.public_base_url,
        webhook_secret=settings.sandbox_webhook_secret,
        latency=timedelta(seconds=settings.sandbox_latency_seconds),
        failure_rate=settings.sandbox_failure_rate,
    )
