"""`--request-timeout` and `--retry-deadline` (lib/limits.py): what the fault matrix relies on to keep every case
bounded. The harness sets them for the process; a cap only ever shortens a client's own value."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lib import harness, limits
from lib.model import Plan, Report
from lib.retry import Backoff, call_with_retry


@pytest.fixture(autouse=True)
def restore() -> Iterator[None]:
    limits.set_limits(limits.Limits())  # an in-process harness.run of another test may have set them
    yield
    limits.set_limits(limits.Limits())


def test_a_cap_only_shortens() -> None:
    assert (limits.timeout(60), limits.deadline(120), limits.backoff_factor(0.8, 3)) == (60, 120, 0.8)
    limits.set_limits(limits.Limits(request_timeout=2.0, retry_deadline=4.0))
    assert (limits.timeout(60), limits.timeout(1), limits.deadline(120), limits.deadline(3)) == (2, 1, 4, 3)
    assert limits.backoff_factor(0.8, 3) == 0.5  # 3 sleeps of 0.5 * 2**n fit in 4 s


def test_the_retry_deadline_caps_a_calls_own() -> None:
    now = [0.0]
    calls = []

    def failing() -> None:
        calls.append(now[0])
        raise ConnectionError("down")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    backoff = Backoff(base=1.0, cap=1.0, deadline=120.0, max_attempts=100)
    limits.set_limits(limits.Limits(retry_deadline=3.5))
    with pytest.raises(ConnectionError):
        call_with_retry(failing, transient=lambda e: True, backoff=backoff, sleep=sleep, clock=lambda: now[0])
    assert now[0] <= 3.5 and 2 <= len(calls) <= 8  # retried, but within 3.5 s, not the call's own 120 s


@dataclass(frozen=True)
class NoSettings:
    pass


def test_the_harness_sets_the_limits_from_flags_and_env() -> None:
    seen: list[limits.Limits] = []

    def connect(_s: NoSettings) -> None:
        seen.append(limits.current())

    spec = harness.JobSpec[NoSettings, None, None](
        name="demo",
        description="demo",
        settings=NoSettings,
        connect=connect,
        observe=lambda _c, _s: None,
        plan=lambda _t, _s, _now: Plan(),
        apply=lambda p, _c, _s: Report(p),
    )
    assert harness.run(spec, ["--request-timeout", "1500ms"], {"CWJ_RETRY_DEADLINE": "2s"}) == 0
    assert seen == [limits.Limits(request_timeout=1.5, retry_deadline=2.0)]
    assert harness.run(spec, ["--retry-deadline", "0s"], {}) == 2  # above zero, or a configuration error
