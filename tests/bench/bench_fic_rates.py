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
   plus up to 1 s of timestamp truncation; it excludes the wait for the next scheduled run (0-300 s) and Entra's
   propagation of the new FIC;
4. time to usable at 1,000 namespaces: 2 more churn cycles with `--probe` (jobs/fic_reconcile/probe.py), every new
   namespace with its `workspace` ServiceAccount and probed, and the Entra emulator's propagation scaled like the
   rest (`fic_propagation_seconds` = 180 / S, one step: refused before, granted after). Time to usable = time to
   credential + the wait until Entra's first grant, so it adds the propagation the churn figure leaves out; what it
   measures beyond the emulator's assumed 180 s is the probe's own lateness (a fifth of the time elapsed; its 2 s
   floor and 15 s cap do not scale).

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
from jobs.fic_reconcile.probe import FLOOR_S, FRACTION
from tests.bench.common import Run, check_at_most, check_equal, configure, info, must_exit, run_job, tally
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
PROBE_CYCLES = 2
PROPAGATION_S = 180.0  # the Entra emulator's default (tests/emulators/entra/emulator.py: "several minutes")
PROBE_BOUND_S = 600.0  # --probe-seconds x S, under the run budget (780 s)


def start(n: int, scale: float, headroom: int = 0) -> tuple[Platform, int, list[str]]:
    """n namespaces seeded, on a pool sized for n + headroom (the namespaces a scenario adds later)."""
    pool = pool_size_needed(n + headroom, [], LIMIT)
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
    platform, pool, _ = start(n, scale, headroom=CHURN * (CYCLES + PROBE_CYCLES))
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
        bench_time_to_usable(platform, scale, f"fic-rates {n}ns churn + probe")
    finally:
        platform.stop()


def workspace_accounts(platform: Platform, names: list[str]) -> None:
    from kubernetes import client as k8s

    from lib.clients.kube import core_api

    api = core_api(base_env(platform))
    for ns in names:
        api.create_namespaced_service_account(ns, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="workspace")))


def bench_time_to_usable(platform: Platform, scale: float, prefix: str) -> None:
    configure(platform, "entra", fic_propagation_seconds=PROPAGATION_S / scale)
    probe = ["--probe", "--probe-seconds", f"{PROBE_BOUND_S / scale:g}", "--probe-max-namespaces", str(CHURN)]
    real = PROPAGATION_S / scale
    info(f"-- {prefix}: {PROBE_CYCLES} cycles of {CHURN}, propagation {real:g} s real, {' '.join(probe)}")
    for cycle in range(PROBE_CYCLES):
        fresh = [f"ameide-ws-probe-{cycle}-{i:03d}" for i in range(CHURN)]
        platform.kube.seed_namespaces(fresh)
        workspace_accounts(platform, fresh)
        platform.log.clear()
        run = run_job("fic-reconcile", job_args(scale) + probe, base_env(platform))
        must_exit(run, 0, f"{prefix} cycle {cycle + 1}")
        document = json.loads(run.stdout)
        ttc, ttu, rows = document["time_to_credential"], document["time_to_usable"], document["probe"]
        after = sorted(float(r["usable_after_s"]) for r in rows if r["usable_after_s"] is not None)
        refused = sorted(float(r["refused_until_s"]) for r in rows if r["refused_until_s"] is not None)
        exchanges = len(platform.log.entries("entra", "token")) - 1  # less the job's own ARM token
        info(f"{prefix}: cycle {cycle + 1}: {run.wall_s:.2f} s real; time_to_credential {ttc}; time_to_usable {ttu}")
        grants = f"min {after[0]:.2f} / max {after[-1]:.2f}" if after else "none"
        info(
            f"{prefix}:   PUT -> last refusal max {refused[-1] if refused else 0:.2f} s, PUT -> first grant {grants} "
            f"s real; {exchanges} Entra exchanges, {sum(int(r['attempts']) for r in rows)} attempts"
        )
        check_equal(f"{prefix}: cycle {cycle + 1}: namespaces usable within the bound", int(ttu["usable"]), CHURN)
        if not after:
            continue
        # one step on the emulated clock: no grant before it (1% for the PUT's own round trip)
        early = sum(1 for a in after if a < real * 0.99)
        check_at_most(f"{prefix}: cycle {cycle + 1}: grants seen before the propagation", early, 0)
        bound = ttc["max_s"] * scale + PROPAGATION_S * (1 + FRACTION) + FLOOR_S * scale
        info(
            f"{prefix}:   (bound = ttc max x S + propagation x (1 + {FRACTION:g}) + {FLOOR_S:g} s x S: a grant is "
            "seen at most a fifth late, plus a round's own time and the floor, which do not scale)"
        )
        check_at_most(f"{prefix}: cycle {cycle + 1}: time to usable p99 x S", ttu["p99_s"] * scale, bound, " s")
        check_at_most(f"{prefix}: cycle {cycle + 1}: time to usable max x S", ttu["max_s"] * scale, bound, " s")


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
