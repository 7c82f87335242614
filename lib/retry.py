"""Retry a call on transient errors with capped exponential backoff, honouring Retry-After, bounded in
total time. Jobs decide what is transient; this module only decides when to try again."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from lib import limits

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
) -> R:
    started = clock()
    deadline = limits.deadline(backoff.deadline)
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            attempt += 1
            if not transient(exc) or attempt >= backoff.max_attempts:
                raise
            wait = backoff.delay(attempt - 1, retry_after(exc))
            if clock() - started + wait > deadline:
                raise
            if on_retry is not None:
                on_retry(exc, attempt, wait)
            sleep(wait)
