"""fic-reconcile's run budget on a fake clock: writes are paced to the rate after a burst, and no write
starts once the time left would not cover the reserve kept for the read-back, the record and the report."""

from __future__ import annotations

from jobs.fic_reconcile.budget import RunBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_burst_of_four_seconds_worth_then_the_rate() -> None:
    clock = FakeClock()
    budget = RunBudget(600, writes_per_second=5, clock=clock, sleep=clock.sleep)
    assert all(budget.take_write() for _ in range(20)) and clock.slept == []  # the burst: 5/s x 4 s
    assert all(budget.take_write() for _ in range(10))
    assert abs(sum(clock.slept) - 2.0) < 1e-9  # then 10 writes at 5/s


def test_no_write_starts_inside_the_reserve() -> None:
    clock = FakeClock()
    budget = RunBudget(60, writes_per_second=1, clock=clock, sleep=clock.sleep)
    assert budget.reserve == 6.0  # a tenth of the run, at least 5 s, at most 60 s
    taken = 0
    while budget.take_write():
        taken += 1
    assert taken == 4 + 54  # the burst, then one a second; the last starts exactly 6 s before the end
    assert clock.now <= 1000 + 60 - 6
    assert budget.left() <= 1.0


def test_a_refused_write_takes_no_token_and_no_time() -> None:
    clock = FakeClock()
    budget = RunBudget(10, writes_per_second=0.1, clock=clock, sleep=clock.sleep)
    assert budget.take_write()  # the one token of the burst (at least one)
    before = clock.now
    assert not budget.take_write()  # the next token is 10 s away: past the deadline less the reserve
    assert clock.now == before and clock.slept == []
