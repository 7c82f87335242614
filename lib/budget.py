"""A run's budget: a deadline and a write pace shared by every worker.

Why: a CronJob's Job is killed at its activeDeadlineSeconds, mid-write and reporting failure, and the services
throttle writes with token buckets (ARM per subscription, Key Vault per vault: 429 + Retry-After once empty).
So a job paces its own writes below the service's refill rate (one bucket for all workers) and stops *starting*
writes when the time left would not cover what must follow the last one (a read-back, a record, the report);
what it did not start is `deferred` to the next run, which observes afresh and continues.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from lib.model import Finding, Outcome
from lib.pace import Pacer


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
        # Kept for what follows the last write: a read-back, a record, the report.
        self.reserve = min(60.0, max(5.0, max_seconds / 10))
        self.writes = Pacer(writes_per_second, max(1.0, writes_per_second * burst_seconds), clock, sleep)
        self._clock = clock

    def left(self) -> float:
        """Seconds before writes must stop starting."""
        return self.deadline - self.reserve - self._clock()

    def can_start(self) -> bool:
        """An unpaced write (or the reads it needs) may still start."""
        return self.left() >= 0  # the same boundary as a paced write's

    def take_write(self) -> bool:
        """Wait for a paced write's token; False (and no token taken) when the wait would run into the reserve."""
        return self.writes.take(by=self.deadline - self.reserve)


def deferral_findings(done: Sequence[Outcome]) -> list[Finding]:
    """One warning when the run left work for the next one (not a failure: it does not change the exit code)."""
    deferred = [o for o in done if o.result == "deferred"]
    if not deferred:
        return []
    message = f"{len(deferred)} write(s) not finished within the run budget; the next run continues"
    return [Finding("warning", "deferred", "run-budget", message)]
