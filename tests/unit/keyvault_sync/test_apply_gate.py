"""The gate every keyvault-sync worker asks before an action and before each write (jobs/keyvault_sync/apply.py),
on a fake clock: the run budget defers, the first ForbiddenByRbac stops every later start, and a refusal that
arrives while a worker waits for the shared pace still stops its write."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jobs.keyvault_sync.apply import DEFERRED, Gate, NotStarted
from jobs.keyvault_sync.job import run_budget
from lib.budget import RunBudget
from lib.clients.keyvault_types import KeyVaultError

RBAC = KeyVaultError(
    "target vault: set a -> 403 Forbidden/ForbiddenByRbac: ...", 403, "Forbidden", "ForbiddenByRbac", "target"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0
        self.on_sleep: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for hook in self.on_sleep:
            hook()


def gate(max_seconds: float = 60, rate: float = 1.0) -> tuple[Gate, FakeClock]:
    clock = FakeClock()
    return Gate(RunBudget(max_seconds, rate, burst_seconds=2, clock=clock, sleep=clock.sleep), "target"), clock


def stopped(call: Callable[[], None]) -> NotStarted:
    with pytest.raises(NotStarted) as info:
        call()
    return info.value


def test_writes_start_until_the_budget_would_run_into_its_reserve_then_defer() -> None:
    g, clock = gate(60)
    g.start()
    g.create()
    clock.now += 60 - 6 + 0.01  # just past the start of the reserve (6 s of a 60 s budget)
    assert (stopped(g.start).result, stopped(g.start).detail) == ("deferred", DEFERRED)
    assert stopped(g.create).result == "deferred"


def test_a_new_version_waits_for_the_shared_pace_and_is_deferred_when_the_wait_would_pass_the_budget() -> None:
    g, clock = gate(20, rate=0.5)  # a burst of 1, then one every 2 s; 15 s before the reserve (5 s)
    started = clock.now
    for _ in range(8):
        g.create()
    assert clock.now - started == pytest.approx(14.0)
    assert stopped(g.create).result == "deferred"  # the next token comes at 16 s: into the reserve
    assert clock.now - started == pytest.approx(14.0)  # and it did not wait for it


def test_the_cluster_vaults_first_rbac_refusal_stops_every_later_start_and_names_itself() -> None:
    g, _ = gate()
    g.saw(KeyVaultError("target vault: set a -> 500 InternalServerError: busy", 500, vault="target"))
    g.saw(
        KeyVaultError(
            "target vault: get a -> 403 Forbidden/SecretDisabled", 403, "Forbidden", "SecretDisabled", "target"
        )
    )
    # the seed's grants are per secret: a refused read there says nothing about the other entries
    g.saw(
        KeyVaultError("seed vault: get b -> 403 Forbidden/ForbiddenByRbac", 403, "Forbidden", "ForbiddenByRbac", "seed")
    )
    g.start()
    g.saw(RBAC)
    g.saw(KeyVaultError("second refusal", 403, "Forbidden", "ForbiddenByRbac", "target"))
    for call in (g.start, g.create):
        stop = stopped(call)
        assert stop.result == "failed" and stop.detail == f"not attempted: {RBAC}"


def test_a_refusal_that_arrives_while_waiting_for_the_pace_stops_the_write() -> None:
    g, clock = gate(600, rate=1.0)
    g.create()
    g.create()  # the burst of 2
    clock.on_sleep.append(lambda: g.saw(RBAC))  # another worker's write is refused meanwhile
    stop = stopped(g.create)
    assert stop.result == "failed" and stop.detail.startswith("not attempted: ")


@pytest.mark.parametrize(("rate", "burst"), [(1.0, 5.0), (25.0, 125.0), (125.0, 125.0), (1000.0, 125.0)])
def test_the_pace_bursts_5_s_worth_but_never_more_than_125_new_versions(rate: float, burst: float) -> None:
    """Key Vault's CREATE bucket is 300 per 10 s per vault, shared with every other writer: a faster pace
    (an SRE's, or a time-scaled bench's) must not bring a burst that empties it."""
    assert run_budget(600, rate).writes.capacity == pytest.approx(burst)
