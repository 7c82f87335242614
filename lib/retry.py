"""Retry a call on transient errors with capped exponential backoff, honouring Retry-After, bounded in
total time. Jobs decide what is transient; this module only decides when to try again."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from lib import limits, reach
from lib.logs import get_logger

R = TypeVar("R")


def retry_after_seconds(headers: Mapping[str, str] | None, now: Callable[[], float] = time.time) -> float | None:
    """What the server asked us to wait, in azure-core's order: `Retry-After` (seconds or an HTTP-date),
    then `retry-after-ms`, then `x-ms-retry-after-ms`. None when it said nothing usable."""
    if not headers:
        return None
    value = (headers.get("Retry-After") or "").strip()
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now())
            except (TypeError, ValueError):
                return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        try:
            return max(0.0, float(headers.get(name) or "") / 1000)
        except ValueError:
            continue
    return None


def retry_after_of(exc: Exception) -> float | None:
    """The Retry-After of the response an SDK exception carries (azure-core's HttpResponseError does)."""
    response = getattr(exc, "response", None)
    return retry_after_seconds(getattr(response, "headers", None))


@dataclass(frozen=True)
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    deadline: float = 120.0  # total seconds across all attempts
    max_attempts: int = 12

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        return float(min(self.cap, self.base * 2**attempt) * (0.5 + random.random() / 2))


def call_with_retry(
    fn: Callable[[], R],
    *,
    transient: Callable[[Exception], bool],
    retry_after: Callable[[Exception], float | None] = lambda _e: None,
    backoff: Backoff = Backoff(),
    on_retry: Callable[[Exception, int, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    client: str = "",
    call: str = "",
) -> R:
    """fn(), retried while `transient` says so, within the backoff's deadline (--retry-deadline caps it) and,
    for a refused connection or a name that does not resolve, within reach.UNREACHABLE_WITHIN seconds. With
    `client`, every retry is logged in the one shape all clients share: event `retry` with client, call,
    attempt, wait_s, status and reason. The exception that ends it carries a note of how long it tried."""
    started = clock()
    deadline = limits.deadline(backoff.deadline)
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            attempt += 1
            gone = reach.unreachable(exc) is not None
            wait = backoff.delay(attempt - 1, retry_after(exc))
            budget = min(deadline, reach.UNREACHABLE_WITHIN) if gone else deadline
            if not transient(exc) or attempt >= backoff.max_attempts or clock() - started + wait > budget:
                if attempt > 1 or gone:
                    reach.gave_up(exc, attempt, clock() - started)
                raise
            if client:
                log_retry(client, call, attempt, wait, exc)
            if on_retry is not None:
                on_retry(exc, attempt, wait)
            sleep(wait)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK's exception carries, whichever attribute that SDK uses."""
    for name in ("status_code", "status", "code"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    return None


def log_retry(
    client: str,
    call: str,
    attempt: int,
    wait: float,
    exc: BaseException | None = None,
    *,
    status: int | None = None,
    reason: str = "",
    level: str = "warning",
) -> None:
    """The one log shape of a retry, whichever client retries and however (ours, urllib3's in lib/http.py, the
    probe's rounds): event `retry` with client, call, attempt, wait_s, status and reason. `level` debug is for
    retries that are the expected course (the probe waiting for Entra to propagate a new FIC)."""
    if not reason and exc is not None:
        reason = reach.describe(exc) or " ".join(str(exc).split())[:300] or type(exc).__name__
    if exc is not None and status is None:
        status = status_of(exc)
    getattr(get_logger(), level)(
        "retry",
        client=client,
        call=call,
        attempt=attempt,
        wait_s=round(wait, 2),
        status=status,
        reason=reason or f"HTTP {status}",
    )
