"""A client-side token bucket: keep a run's writes under a service's documented rate so that throttling is the
exception, not the way the run is paced (Key Vault's guidance: throttle your own client first, then honour
429 + Retry-After; lib/retry.py does the second half)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    def __init__(
        self,
        per_second: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a pacer needs a rate > 0 and a burst >= 1")
        self.rate, self.capacity = per_second, burst
        self._tokens, self._at = burst, clock()
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()

    def take(self) -> float:
        """Wait until a token is there and take it; returns the seconds waited."""
        with self._lock:  # one waiter at a time: tokens go out in order
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            wait = max(0.0, (1.0 - self._tokens) / self.rate)
            if wait:
                self._sleep(wait)
                self._tokens += wait * self.rate
                self._at = now + wait
            self._tokens -= 1.0
            return wait
