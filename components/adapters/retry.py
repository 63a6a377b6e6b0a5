"""Retrying what may work on a second try: 5xx, 429, timeouts and dropped connections.

Bounded exponential backoff with full jitter, within a time budget per call, honouring a
`Retry-After` header. A 409 is never retried here: on a resourceVersion precondition it means
another writer, which the caller decides about. Every retry is counted, so progress lines can
say how rough the API was.
"""

from __future__ import annotations

import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx

from .stop import STOPPING_BUDGET_SECONDS, stopping

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class RetryCounter:
    """How many retries the adapters of one release made since the last `take`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self) -> None:
        with self._lock:
            self._count += 1

    def take(self) -> int:
        with self._lock:
            count, self._count = self._count, 0
            return count


@dataclass(frozen=True)
class Backoff:
    """Waits of `base * 2**n` seconds at most `cap`, jittered, for at most `budget` seconds."""

    budget: float = 30.0
    base: float = 0.25
    cap: float = 5.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        ceiling = min(self.cap, self.base * 2**attempt)
        jittered = rng.uniform(ceiling / 2, ceiling)
        return max(jittered, retry_after or 0.0)


def transport_transient(error: BaseException) -> bool:
    """A timeout or a refused or dropped connection, but not a certificate the client rejects:
    that fails the same way every time."""
    if not isinstance(error, httpx.TransportError):
        return False
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return False
        cause = cause.__cause__ or cause.__context__
    return True


def retry_after(response: httpx.Response | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), if any."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def retrying(
    attempt: Callable[[], T],
    transient: Callable[[Exception], tuple[bool, float | None]],
    *,
    backoff: Backoff,
    counter: RetryCounter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> T:
    """Calls `attempt` until it succeeds, raises a non-transient error, or the budget is spent
    (then the last error is raised). `transient` says whether an error may pass, and after how
    long the server asked to wait."""
    rng = rng or random.Random()
    started = now()
    deadline = started + backoff.budget
    tries = 0
    while True:
        try:
            return attempt()
        except Exception as error:
            passing, asked = transient(error)
            wait = backoff.delay(tries, asked, rng)
            limit = min(deadline, started + STOPPING_BUDGET_SECONDS) if stopping() else deadline
            if not passing or now() + wait > limit:
                raise
        tries += 1
        if counter is not None:
            counter.add()
        sleep(wait)
