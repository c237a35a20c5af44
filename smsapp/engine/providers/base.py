"""What the send loop needs from an SMS provider, and nothing more (pack §7).

A provider sends one message and, when a send ended ambiguously (a 5xx, or a timeout after the
request may have arrived), answers whether it already holds that message, so a retry never
sends it twice. Errors come back as one exception whose `kind` tells the loop what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from urllib.parse import quote

ErrorKind = Literal["rejected", "rate_limited", "unreached", "ambiguous"]

# Provider statuses meaning "the provider holds this message and has not given up on it".
# failed/undelivered are left out: resending after those cannot deliver twice.
HELD_STATUSES = frozenset(
    {"accepted", "scheduled", "queued", "sending", "sent", "delivered", "read"}
)


@dataclass(frozen=True)
class Outgoing:
    to: str  # E.164
    from_: str  # E.164 number or alphanumeric sender ID
    body: str
    reference: str  # our attempt id; comes back on status callbacks
    status_callback_url: str | None = None  # None: the provider builds it from PUBLIC_BASE_URL


@dataclass(frozen=True)
class Accepted:
    provider_message_id: str
    status: str  # the provider's word: "queued", "accepted", "sent", …


class ProviderError(Exception):
    """A send or lookup that did not succeed.

    kind:
      rejected      4xx: the provider refused this message; permanent, never retried.
      rate_limited  429: nothing was done; retry after `retry_after` or with backoff.
      unreached     the request never reached the provider; safe to retry.
      ambiguous     5xx, timeout or dropped connection after the request may have arrived;
                    ask `find` before any retry.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        opted_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after
        self.opted_out = opted_out

    @property
    def permanent(self) -> bool:
        return self.kind == "rejected"

    def __repr__(self) -> str:
        return (
            f"ProviderError({str(self)!r}, kind={self.kind!r}, code={self.code!r}, "
            f"http_status={self.http_status!r}, retry_after={self.retry_after!r}, "
            f"opted_out={self.opted_out!r})"
        )


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def can_reconcile(self) -> bool:
        """Whether `find` can answer; a provider that cannot sends ambiguous jobs to `unknown`."""
        ...

    async def send(self, outgoing: Outgoing) -> Accepted:
        """Hand one message to the provider; raises ProviderError."""
        ...

    async def find(self, outgoing: Outgoing, since: datetime) -> Accepted | None:
        """The provider's copy of `outgoing` if it holds one created since `since` (with a
        day's slack), else None. Raises ProviderError(kind="unreached") when it cannot ask."""
        ...


def status_callback_url(public_base_url: str, provider: str, reference: str) -> str:
    """Our reference rides in the callback URL, so a callback that beats the save of the
    provider's message id still finds its job (pack §11)."""
    return (
        f"{public_base_url.rstrip('/')}/webhooks/{provider}/status?ref={quote(reference, safe='')}"
    )
