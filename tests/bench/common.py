"""What every bench shares: run a console script as a whole process (wall time, peak RSS of that process,
its run.summary), inject emulated latency, and print one figure per line with its bound and OK/MISS.

A line reads `<job> <scenario>: <what> <value> (bound <bound>) OK|MISS`; `make bench` ends with a tally and
exits 1 when any line is a MISS, so a regression is visible both at a glance and to a script.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.emulators.core import Fault
from tests.emulators.platform import Platform

BIN = Path(sys.executable).parent
LATENCY_S = 0.030  # emulated round trip of one Azure call
WALL_FACTOR = 1.3  # wall time may exceed its lower bound by 30% (TLS, JSON, the SDK pipelines, the plan)

RESULTS: list[tuple[str, bool]] = []  # (line, ok) for the final tally


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    wall_s: float  # the whole process: interpreter start, imports, the run
    max_rss_kb: int  # this process only, after its exec (see _wait4), not the maximum over every child so far
    cpu_s: float  # user + system CPU of this process
    summary: dict[str, Any] = field(default_factory=dict)  # the run.summary log event

    @property
    def run_s(self) -> float:
        """The harness's own duration (settings parsed -> report printed): the wall time less start-up."""
        return float(self.summary.get("duration_s", self.wall_s))


def run_job(name: str, args: list[str], env: dict[str, str], timeout: float = 600) -> Run:
    """The console script as a subprocess, like the demo and the e2e tests run it, with its own rusage."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([str(BIN / name), *args], env=env, stdout=out, stderr=err, text=True)
        _, status, usage, peak_kb = _wait4(proc, timeout, str(BIN / name))
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    cpu = usage.ru_utime + usage.ru_stime
    return Run(proc.returncode, stdout, stderr, wall, peak_kb or int(usage.ru_maxrss), cpu, _summary(stderr))


def _wait4(proc: subprocess.Popen[str], timeout: float, script: str) -> tuple[int, int, Any, int]:
    """Wait for the process (its rusage: CPU), sampling its peak RSS every 5 ms meanwhile. Linux carries the
    pre-exec high-water mark into ru_maxrss, and a forked child starts with the bench process's RSS (which hosts
    every emulator and grows over a `make bench`: 186 MB for a 65 MB job once), so the peak is read from
    /proc/<pid>/status VmHWM, only once the process runs `script` (after exec; the new address space starts
    from zero). 0 when no sample was taken (a run shorter than one sample): the caller falls back to rusage."""
    deadline = time.monotonic() + timeout
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage, peak
        peak = max(peak, _peak_after_exec(proc.pid, script))
        if time.monotonic() > deadline:
            proc.kill()
            return (*os.wait4(proc.pid, 0), peak)
        time.sleep(0.005)


def _peak_after_exec(pid: int, script: str) -> int:
    try:
        if script.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return 0  # not exec'd yet: still a copy of the bench process
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) if found else 0


def _summary(stderr: str) -> dict[str, Any]:
    for line in reversed(stderr.splitlines()):
        if '"run.summary"' in line:
            try:
                event: dict[str, Any] = json.loads(line)
                return event
            except ValueError:
                return {}
    return {}


def must_exit(run: Run, expected: int, what: str) -> None:
    if run.code != expected:
        tail = "\n".join(run.stderr.splitlines()[-5:])
        raise SystemExit(f"{what}: exit {run.code}, expected {expected}\n{tail}")


def add_latency(platform: Platform, service: str, operations: tuple[str, ...], seconds: float = LATENCY_S) -> None:
    """Latency-only faults (status None, count None: every matching request, until cleared)."""
    for op in operations:
        platform.faults.add(Fault(service, op, status=None, count=None, delay=seconds))


def configure(platform: Platform, service: str, **settings: Any) -> None:
    emulator = platform.by_service(service)
    with emulator.lock:
        emulator.configure(settings)


# ---- output ---------------------------------------------------------------------------------------------


def check_equal(label: str, value: int, bound: int) -> None:
    _line(f"{label} {value} (bound {bound})", value == bound)


def check_at_most(label: str, value: float, bound: float, unit: str = "", fmt: str = "{:.0f}") -> None:
    shown = fmt.format(value) + unit
    _line(f"{label} {shown} (bound {fmt.format(bound)}{unit})", value <= bound)


def check_wall(label: str, seconds: float, latency_s: float, floor_s: float) -> None:
    """Run time against its bound: the latency lower bound plus the per-run floor (the same job's run time
    with no latency and nothing to do: credential, clients, one page of each list, plan, report). OK within
    WALL_FACTOR of that sum. The floor matters at 100 namespaces and vanishes at 5,000 (BENCHMARKS.md)."""
    bound = latency_s + floor_s
    ratio = seconds / bound if bound else float("inf")
    shown = f"bound {latency_s:.2f} s + floor {floor_s:.2f} s = {bound:.2f} s, {ratio:.2f}x, target <= {WALL_FACTOR}x"
    _line(f"{label} {seconds:.2f} s ({shown})", ratio <= WALL_FACTOR)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def info(label: str) -> None:
    print(f"{label}", flush=True)


def _line(text: str, ok: bool) -> None:
    line = f"{text} {'OK' if ok else 'MISS'}"
    RESULTS.append((line, ok))
    print(line, flush=True)


def tally() -> int:
    missed = [line for line, ok in RESULTS if not ok]
    print(f"\nbench: {len(RESULTS) - len(missed)} OK, {len(missed)} MISS")
    for line in missed:
        print(f"  MISS: {line}")
    return 1 if missed else 0
