"""What every fault-matrix table shares: a case (a fault to inject, or a dependency URL that nothing listens
on), its expected outcome ("retried and converged", or "exit 1 with a message naming the dependency and the
operation"), bounded run settings, and a scripted HTTP receiver for the Pushgateway and webhook cases.

Every job runs with `--request-timeout 1s --retry-deadline 3s` (the jobs' real settings, CWJ_REQUEST_TIMEOUT and
CWJ_RETRY_DEADLINE) and a 60 s subprocess timeout, so a case that hangs fails instead of stalling the suite.
A "timeout" fault delays the answer past the 1 s request timeout; a "refused" case points the job at a
loopback port nothing listens on.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.conftest import Control, run_job
from tests.receivers import Answer, Received, serve

BOUNDED = {"CWJ_REQUEST_TIMEOUT": "1s", "CWJ_RETRY_DEADLINE": "3s"}
DELAY_PAST_TIMEOUT = 1.6  # seconds: longer than CWJ_REQUEST_TIMEOUT, short enough to end inside the test
CASE_TIMEOUT = 60  # seconds per job process: a hang fails the case


def closed_port_url(scheme: str = "https") -> str:
    """A loopback URL nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}"


@dataclass(frozen=True)
class Fault:
    """One control-API fault rule (tests/emulators/README.md)."""

    service: str
    operation: str = "*"
    args: dict[str, Any] = field(default_factory=dict)

    def inject(self, control: Control) -> None:
        control.fault(self.service, self.operation, **self.args)


def fault(service: str, operation: str = "*", **args: Any) -> Fault:
    return Fault(service, operation, args)


@dataclass(frozen=True)
class Converged:
    """Retried and converged: exit 0 and the end state is right."""

    retried: tuple[str, str] | None = None  # (service, op) that must show more than one request
    waited: float | None = None  # the retry of `retried` came at least this many seconds after the failed answer


@dataclass(frozen=True)
class Fails:
    """Exit 1 with a message naming the dependency and the operation (each fragment, case-insensitive)."""

    names: tuple[str, ...]
    attempts: tuple[str, str, int] | None = None  # (service, op, n): exactly n requests, e.g. 1 = no retry


@dataclass(frozen=True)
class Deferred:
    """Not finished within the run budget: exit 0, at least `writes` actions reported `deferred` and none
    `failed`; the caller then runs once more without the fault, and that run converges (nothing lost)."""

    writes: int = 1


Expected = Converged | Fails | Deferred


@dataclass(frozen=True)
class Case:
    id: str
    expect: Expected
    faults: tuple[Fault, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # e.g. a dependency URL -> closed_port_url()
    args: tuple[str, ...] = ()
    observing: bool = True  # the fault hits an observation: nothing may be deleted or revoked
    within: float | None = None  # the job's process ends within this many seconds (a server asking for hours)


def case(id: str, expect: Expected, *faults: Fault, env: dict[str, str] | None = None, **kw: Any) -> Case:
    return Case(id, expect, faults, env or {}, **kw)


def case_env(c: Case, env: dict[str, str]) -> dict[str, str]:
    """The job's environment for a case: bounded timeouts, and each `"closed"` value a URL nothing listens on."""
    return {**env, **BOUNDED, **{k: closed_port_url() if v == "closed" else v for k, v in c.env.items()}}


def run_case(job: str, c: Case, control: Control, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Inject the case's faults and run the job once in `env` (see case_env), bounded in time."""
    for f in c.faults:
        f.inject(control)
    started = time.monotonic()
    proc = run_job(job, *args, *c.args, env=env, timeout=CASE_TIMEOUT)
    took = time.monotonic() - started
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert c.within is None or took <= c.within, f"the run took {took:.1f} s, bound {c.within} s"
    return proc


def check_outcome(c: Case, proc: subprocess.CompletedProcess[str], control: Control) -> None:
    """The table's expected outcome: exit code, the one message line, and how many requests a call took."""
    output = proc.stdout + proc.stderr
    if isinstance(c.expect, Deferred):
        assert proc.returncode == 0, output[-3000:]  # deferral alone is not a failure
        results = [o["result"] for o in json.loads(proc.stdout)["outcomes"]]
        assert results.count("deferred") >= c.expect.writes and "failed" not in results, results
        return
    if isinstance(c.expect, Converged):
        assert proc.returncode == 0, output[-3000:]
        if c.expect.retried:
            assert _eventually_at_least(control, *c.expect.retried, 2), f"{c.expect.retried} was not retried"
        if c.expect.waited is not None:
            assert c.expect.retried, "waited needs retried"
            gap = retry_gap(control, *c.expect.retried)
            assert gap >= c.expect.waited, f"{c.expect.retried} retried {gap:.2f} s after, {c.expect.waited} s asked"
        return
    assert proc.returncode == 1, output[-3000:]
    lines = failure_lines(proc)
    named = [line for line in lines if all(n.lower() in line.lower() for n in c.expect.names)]
    assert named, f"no failure message names all of {c.expect.names}: {lines}\n{output[-3000:]}"
    if c.expect.attempts:
        service, op, n = c.expect.attempts
        if any("delay" in f.args for f in c.faults):  # a timed-out request is logged when its answer is done
            time.sleep(DELAY_PAST_TIMEOUT)
        assert control.count(service, op) == n, f"{service} {op}: {control.count(service, op)} requests, expected {n}"


def failure_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """What an SRE reads about a failure: the harness's one-line `<job>: failed: ...`, the report's error
    findings and failed actions (`--output json`), and a failed metrics push (a log event)."""
    lines = [line for line in proc.stderr.splitlines() if ": failed: " in line and not line.startswith("{")]
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = {}
    lines += [f["message"] for f in report.get("findings", []) if f["severity"] in ("error", "critical")]
    lines += [" ".join(map(str, o.values())) for o in report.get("outcomes", []) if o.get("result") == "failed"]
    for line in proc.stderr.splitlines():
        if line.startswith("{") and '"metrics.push_failed"' in line:
            lines.append(json.loads(line)["error"])
    return lines


def retry_gap(control: Control, service: str, op: str) -> float:
    """Seconds from the first failed answer of (service, op) to the next request, by the emulator's request log
    (each entry's `time` is taken when the emulator answered)."""
    log = control.requests(service, op)["log"]
    failed = next(i for i, e in enumerate(log) if e["status"] >= 400)
    assert failed + 1 < len(log), f"{service} {op}: no request after the failed one"
    first, then = (datetime.fromisoformat(log[i]["time"]) for i in (failed, failed + 1))
    return (then - first).total_seconds()


def _eventually_at_least(control: Control, service: str, op: str, n: int) -> bool:
    # a request that timed out is logged when the emulator finishes answering it, after its delay
    deadline = time.monotonic() + DELAY_PAST_TIMEOUT + 1
    while control.count(service, op) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return control.count(service, op) >= n


# ---- a scripted receiver for the Pushgateway and the webhook --------------------------------------------


@dataclass
class Script:
    """Answers in order, then `then` for every later request; records each request (`requests`, in order)."""

    answers: list[Answer] = field(default_factory=list)
    then: Answer = field(default_factory=Answer)
    url: str = ""
    requests: list[Received] = field(default_factory=list)

    @property
    def seen(self) -> list[tuple[str, str, bytes]]:
        """Each request's method, path and body."""
        return [(r.method, r.path, r.body) for r in self.requests]

    @property
    def headers(self) -> list[dict[str, str]]:
        """Each request's headers (same order as `seen`)."""
        return [r.headers for r in self.requests]

    def answer(self, request: Received) -> Answer:
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else self.then


@contextmanager
def scripted(*answers: Answer, then: Answer | None = None, tls: ssl.SSLContext | None = None) -> Iterator[Script]:
    script = Script(list(answers), then or Answer())
    with serve(script.answer, tls) as url:
        script.url = url
        yield script
