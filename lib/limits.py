"""Process-wide caps on time spent talking to other systems: how long one HTTP request may wait to connect or
for an answer, and how long one call may spend retrying. Set once by the harness from `--request-timeout` and
`--retry-deadline`; every client keeps its own defaults and a cap only shortens them, so a run against a
dependency that hangs or keeps failing ends in bounded time (an SRE rehearsing an outage, or a test of one,
sets them low)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    request_timeout: float | None = None  # seconds; None: each client's own default
    retry_deadline: float | None = None  # seconds; None: each call's own Backoff.deadline


_current = [Limits()]


def set_limits(limits: Limits) -> None:
    _current[0] = limits


def current() -> Limits:
    return _current[0]


def timeout(default: float) -> float:
    """A client's own timeout, shortened to --request-timeout when that is lower."""
    cap = _current[0].request_timeout
    return min(default, cap) if cap is not None else default


def deadline(default: float) -> float:
    """A call's own retry deadline, shortened to --retry-deadline when that is lower."""
    cap = _current[0].retry_deadline
    return min(default, cap) if cap is not None else default


def backoff_factor(default: float, retries: int) -> float:
    """An SDK's own exponential backoff factor (sleeps of factor * 2**n), shrunk so that `retries` sleeps fit
    within --retry-deadline."""
    cap = _current[0].retry_deadline
    return min(default, cap / 2**retries) if cap is not None else default
