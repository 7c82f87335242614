"""A client-side token bucket: keep a run's writes under a service's documented rate so that throttling is the
exception, not the way the run is paced (Key Vault's and ARM's guidance: throttle your own client first, then
honour 429 + Retry-After; lib/retry.py does the second half). One bucket is shared by every worker of a run:
parallel workers must not add up to a burst the service refuses."""

from __future__ import annotations

import math
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

    def take(self, by: float = math.inf) -> bool:
        """Wait until a token is there and take it. False, with no token taken and no time spent, when that
        token would come after `by` (a time on this pacer's clock)."""
        with self._lock:  # one waiter at a time: tokens go out in order, never two for one refill
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            wait = max(0.0, (1.0 - self._tokens) / self.rate)
            if now + wait > by:
                return False
            if wait:
                self._sleep(wait)
                self._tokens += wait * self.rate
                self._at = now + wait
            self._tokens -= 1.0
            return True
