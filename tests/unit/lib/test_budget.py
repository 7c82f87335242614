"""The run budget (lib/budget.py, shared by fic-reconcile and keyvault-sync) and its pacer on a fake clock:
writes are paced to the rate after a burst, and no write starts once the time left would not cover the reserve
kept for what follows the last write (a read-back, a record, the report)."""

from __future__ import annotations

from lib.budget import RunBudget


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


def test_unpaced_writes_may_start_until_the_reserve_and_take_no_token() -> None:
    clock = FakeClock()
    budget = RunBudget(60, writes_per_second=1, clock=clock, sleep=clock.sleep)
    assert budget.can_start()
    clock.now += 60 - budget.reserve - 0.5
    assert budget.can_start() and budget.take_write()  # the burst is untouched by the unpaced starts
    clock.now += 0.51
    assert not budget.can_start()


def test_workers_sharing_one_budget_get_one_tokens_worth_of_writes_between_them() -> None:
    """Eight threads taking writes from one budget are paced together: after the burst, one write per token,
    whoever asks (a worker pool must not multiply the pace)."""
    import threading

    clock = FakeClock()
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.sleep(seconds)

    budget = RunBudget(600, writes_per_second=2, burst_seconds=5, clock=clock, sleep=sleep)
    taken: list[bool] = []

    def worker() -> None:
        for _ in range(10):
            taken.append(budget.take_write())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert taken == [True] * 80
    assert abs(sum(clock.slept) - (80 - 10) / 2) < 1e-6  # 10 from the burst, then 70 at 2/s
