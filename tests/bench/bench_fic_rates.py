"""fic-reconcile at ARM's documented rates (issue 14, "Done means" 1 and 2), with time compressed S-fold.

The ARM emulator throttles with the documented token buckets (reads 250 / 25 per s, writes 200 / 10 per s,
tests/emulators/arm/throttle.py) refilled S times faster in real time (`time_scale=S`); the job runs with its
write pace and its budget scaled the same way (`--arm-writes-per-second 5*S`, `--max-run-seconds 780/S`), so a
real second here stands for S seconds in production. Three scenarios:

1. cold start at 1,000 and 5,000 namespaces, runs repeated until one plans nothing: runs needed, the total time
   x S against writes / 5 per s (the job's pace, under ARM's 10/s refill), the share of ARM calls answered 429
   (target < 1%), and every run's time x S within the Job's 900 s activeDeadlineSeconds;
2. a no-op run at 5,000 namespaces: its time x S against the read budget and the 5-minute schedule;
3. steady churn at 1,000 namespaces: 5 cycles of 50 new namespaces, each followed by a run; the job's
   `time_to_credential` section (p50/p99) per cycle. The emulator stamps creationTimestamp from the emulated
   clock (real time + an offset, whole seconds) and the job measures with the real `datetime.now(UTC)`; so the
   clock is NOT advanced between cycles (an advance would put creation in the job's future and clamp ttc to 0).
   The figure is namespace seeded -> its FIC's PUT answered, one job run (start-up, lists, plan, paced writes),
   plus up to 1 s of timestamp truncation; it excludes the wait for the next scheduled run (0-300 s).

What scales and what does not (BENCHMARKS.md): the buckets' refill and the job's pace and budget scale; the
buckets' *sizes* (250, 200), the job's write burst (4 s worth = 20 S tokens), process start-up, CPU and the
job's unpaced reads do not. So x S overstates fixed costs (start-up) and understates read throttling (the job's
reads are not paced; they run at CPU speed against a read bucket refilled S times faster).

Run: `.venv/bin/python -m tests.bench.bench_fic_rates [S]` (default S = 10).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from jobs.fic_reconcile.capacity import pool_size_needed
from tests.bench.common import Run, check_at_most, configure, info, must_exit, run_job, tally
from tests.demo import base_env
from tests.emulators.arm.emulator import DEFAULTS as ARM_DEFAULTS
from tests.emulators.platform import Baseline, Platform

SCALE = 10.0  # emulated seconds per real second
LIMIT = 20  # FICs per identity (the job's default --max-fics-per-identity)
JOB_PACE = 5.0  # the job's default --arm-writes-per-second
DEADLINE_S = 900.0  # the chart's activeDeadlineSeconds
MAX_RUN_S = DEADLINE_S - 120  # the chart's --max-run-seconds
INTERVAL_S = 300.0  # the chart's schedule: every 5 minutes
MAX_RUNS = 10
READ_BUCKET = int(ARM_DEFAULTS["read_bucket"])
READ_RATE = float(ARM_DEFAULTS["read_refill_per_s"])
WRITE_RATE = float(ARM_DEFAULTS["write_refill_per_s"])
FIC_PAGE = int(ARM_DEFAULTS["fic_page_size"])
IDENTITY_PAGE = int(ARM_DEFAULTS["identity_page_size"])
THROTTLE_TARGET = 0.01
CHURN = 50
CYCLES = 5


def start(n: int, scale: float) -> tuple[Platform, int, list[str]]:
    pool = pool_size_needed(n, [], LIMIT)
    assert pool is not None
    names = [f"ameide-ws-{i:05d}" for i in range(n)]
    platform = Platform(Path(tempfile.mkdtemp(prefix="cwj-bench-rates-")), Baseline(pool_size=pool)).start()
    platform.kube.seed_namespaces(names)
    configure(platform, "arm", throttling=True, time_scale=scale)  # the documented buckets, refilled S-fold
    return platform, pool, names


def job_args(scale: float) -> list[str]:
    return [
        "--output",
        "json",
        "--arm-writes-per-second",
        f"{JOB_PACE * scale:g}",
        "--max-run-seconds",
        f"{MAX_RUN_S / scale:g}",
    ]


def run_once(platform: Platform, scale: float, what: str) -> tuple[Run, dict[str, Any]]:
    run = run_job("fic-reconcile", job_args(scale), base_env(platform))
    must_exit(run, 0, what)
    return run, json.loads(run.stdout)


def planned(document: dict[str, Any]) -> int:
    """Actions the run planned: every one has an outcome (ok, failed or deferred)."""
    return len(document["outcomes"])


def throttled(platform: Platform) -> tuple[int, int]:
    """(429 answers, all ARM calls) in the request log since it was last cleared."""
    log = platform.log.entries("arm")
    return sum(1 for e in log if e["status"] == 429), len(log)


def converge(platform: Platform, n: int, scale: float, prefix: str) -> tuple[list[float], bool]:
    """Runs until one plans nothing (at most MAX_RUNS): the wall time (real seconds) of each run that planned
    something, and whether a run planning nothing was reached."""
    walls: list[float] = []
    for i in range(MAX_RUNS):
        run, document = run_once(platform, scale, f"{prefix} run {i + 1}")
        outcomes = document["counts"].get("outcomes", {})
        info(f"{prefix}: run {i + 1}: {run.wall_s:.2f} s real (x S = {run.wall_s * scale:.0f} s), outcomes {outcomes}")
        if planned(document) == 0:
            return walls, True
        walls.append(run.wall_s)
    return walls, False


def bench_cold(n: int, scale: float) -> Platform:
    platform, pool, _ = start(n, scale)
    prefix = f"fic-rates {n}ns cold"
    info(f"-- {prefix}: pool {pool} identities, S = {scale:g}, args {' '.join(job_args(scale))}")
    platform.log.clear()
    walls, converged = converge(platform, n, scale, prefix)
    puts = sum(1 for e in platform.log.entries("arm", "fic.put") if e["status"] < 300)
    refused, calls = throttled(platform)
    info(f"{prefix}: runs that wrote {len(walls)}, then a run planning nothing: {converged}; fic.put ok {puts}")
    check_at_most(f"{prefix}: runs needed (until one plans nothing)", len(walls) + 1, MAX_RUNS)
    check_at_most(f"{prefix}: FICs created", n, puts, fmt="{:.0f}")  # every namespace got its FIC
    total = sum(walls) * scale
    bound = n / min(JOB_PACE, WRITE_RATE)
    check_at_most(f"{prefix}: total time x S (runs that wrote)", total, bound * 1.3, " s")
    info(f"{prefix}:   (bound = {n} writes / min(job {JOB_PACE:g}/s, ARM {WRITE_RATE:g}/s) = {bound:.0f} s, x 1.3)")
    share = refused / calls if calls else 0.0
    check_at_most(
        f"{prefix}: ARM 429 share ({refused} of {calls} calls)", share * 100, THROTTLE_TARGET * 100, " %", "{:.2f}"
    )
    check_at_most(f"{prefix}: longest run x S", max(walls) * scale, DEADLINE_S, " s")
    return platform


def bench_noop(platform: Platform, n: int, scale: float) -> None:
    prefix = f"fic-rates {n}ns no-op"
    platform.log.clear()
    run, document = run_once(platform, scale, prefix)
    if planned(document):
        raise SystemExit(f"{prefix}: planned {planned(document)} actions after convergence")
    refused, calls = throttled(platform)
    pool = platform.baseline.pool_size
    reads = math.ceil(pool / IDENTITY_PAGE) + pool  # identity list pages + one FIC list page per identity
    read_bound = max(0.0, (reads - READ_BUCKET) / READ_RATE)
    info(f"{prefix}: ARM calls {calls} (bound {reads} reads), 429s {refused}")
    info(
        f"{prefix}:   (read bound = max(0, ({reads} reads - {READ_BUCKET} burst) / {READ_RATE:g} per s) = "
        f"{read_bound:.1f} s; x S includes process start-up x S)"
    )
    check_at_most(f"{prefix}: run time x S", run.wall_s * scale, INTERVAL_S, " s")
    info(f"{prefix}: run time {run.wall_s:.2f} s real, harness {run.run_s:.2f} s; x S = {run.run_s * scale:.0f} s")


def bench_churn(n: int, scale: float) -> None:
    platform, pool, _ = start(n, scale)
    prefix = f"fic-rates {n}ns churn"
    try:
        info(f"-- {prefix}: pool {pool}, {CYCLES} cycles of {CHURN} new namespaces")
        _, converged = converge(platform, n, scale, f"{prefix} (converge)")
        if not converged:
            raise SystemExit(f"{prefix}: did not converge in {MAX_RUNS} runs")
        p50s: list[float] = []
        p99s: list[float] = []
        platform.log.clear()
        for cycle in range(CYCLES):
            fresh = [f"ameide-ws-new-{cycle}-{i:03d}" for i in range(CHURN)]
            platform.kube.seed_namespaces(fresh)  # creationTimestamp: the emulated clock, whole seconds
            run, document = run_once(platform, scale, f"{prefix} cycle {cycle + 1}")
            ttc = document["time_to_credential"]
            info(f"{prefix}: cycle {cycle + 1}: {run.wall_s:.2f} s real, time_to_credential {ttc}")
            if ttc.get("created") != CHURN:
                raise SystemExit(f"{prefix}: cycle {cycle + 1} created {ttc.get('created')} of {CHURN}")
            p50s.append(float(ttc["p50_s"]))
            p99s.append(float(ttc["p99_s"]))
        refused, calls = throttled(platform)
        info(f"{prefix}: p50 per cycle {p50s} s, p99 per cycle {p99s} s (real seconds)")
        check_at_most(f"{prefix}: ttc p50 (worst cycle) x S", max(p50s) * scale, INTERVAL_S, " s")
        check_at_most(f"{prefix}: ttc p99 (worst cycle) x S", max(p99s) * scale, INTERVAL_S, " s")
        share = refused / calls if calls else 0.0
        check_at_most(
            f"{prefix}: ARM 429 share ({refused} of {calls} calls)", share * 100, THROTTLE_TARGET * 100, " %", "{:.2f}"
        )
    finally:
        platform.stop()


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    scale = float(args[0]) if args else SCALE
    info(f"-- fic-rates: ARM token buckets on (documented sizes and rates), time scale S = {scale:g}")
    platform = bench_cold(1_000, scale)
    platform.stop()
    platform = bench_cold(5_000, scale)
    try:
        bench_noop(platform, 5_000, scale)
    finally:
        platform.stop()
    bench_churn(1_000, scale)


if __name__ == "__main__":
    main()
    sys.exit(tally())
