"""The run's budget: a deadline and a write pace shared by every lane.

Why: ARM throttles writes per subscription with a token bucket (429 + Retry-After once it is empty), and the
Job is killed at its activeDeadlineSeconds, mid-write and reporting failure. So the job paces its own writes
below ARM's refill rate (one bucket for all lanes: parallel lanes must not add up to a burst ARM refuses), and
stops *starting* writes when the time left would not cover the verify, the record and the report; what it did
not start is deferred to the next run, which observes afresh and continues.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RunBudget:
    def __init__(
        self,
        max_seconds: float,
        writes_per_second: float,
        burst_seconds: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.started = clock()
        self.deadline = self.started + max_seconds
        # Kept for the read-back, the relocation record and the report after the last write.
        self.reserve = min(60.0, max(5.0, max_seconds / 10))
        self.rate = writes_per_second
        self.capacity = max(1.0, writes_per_second * burst_seconds)
        self._tokens = self.capacity
        self._refilled = self.started
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()

    def left(self) -> float:
        """Seconds before writes must stop starting."""
        return self.deadline - self.reserve - self._clock()

    def take_write(self) -> bool:
        """Wait for a write token; False (and no token taken) when the wait would run into the reserve."""
        with self._lock:  # one waiter at a time: tokens go out in order, never two for one refill
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            wait = max(0.0, (1 - self._tokens) / self.rate)
            if now + wait > self.deadline - self.reserve:
                return False
            if wait:
                self._sleep(wait)
                self._tokens += wait * self.rate
                self._refilled = now + wait
            self._tokens -= 1
            return True
