"""The run in progress, as the clients that report on it need it (the metrics push: which cluster, how long
it has run). Set once by the harness when a run starts, like lib.limits; a client that is used outside a run
(a test, a script) sees the defaults."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

DEFAULT_CLUSTER = "default"


@dataclass(frozen=True)
class RunInfo:
    job: str = ""
    run_id: str = ""
    cluster: str = DEFAULT_CLUSTER  # the `cluster` label of every pushed metric and its Pushgateway group
    started: float = field(default_factory=time.monotonic)
    dry_run: bool = False  # a dry-run pushes cwj_dry_run 1 and never a success


_current = [RunInfo()]


def set_current(info: RunInfo) -> None:
    _current[0] = info


def current() -> RunInfo:
    return _current[0]


def elapsed() -> float:
    """Seconds since the run started (monotonic)."""
    return time.monotonic() - _current[0].started
