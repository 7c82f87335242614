"""fic-reconcile at 100, 1,000 and 5,000 namespaces against the emulators, with 30 ms of emulated ARM latency on
every call: a cold run (every FIC created) and a no-op run (nothing to do). API calls by kind against their lower
bound, run time against its lower bound, peak RSS of the job process. Derivations: BENCHMARKS.md.

Run: `.venv/bin/python -m tests.bench.bench_fic_reconcile [SIZE ...]` (default 100 1000 5000).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.fic_reconcile.capacity import pool_size_needed
from jobs.fic_reconcile.shard import shard_index
from lib.clients.kube import PAGE_SIZE as NAMESPACE_PAGE
from tests.bench.common import (
    LATENCY_S,
    Run,
    add_latency,
    check_at_most,
    check_equal,
    check_wall,
    configure,
    info,
    median,
    must_exit,
    run_job,
    tally,
)
from tests.demo import base_env
from tests.emulators.arm.emulator import DEFAULTS as ARM_DEFAULTS
from tests.emulators.platform import Baseline, Platform

SIZES = (100, 1_000, 5_000)
LIMIT = 20  # FICs per identity (Entra's cap, the job's default --max-fics-per-identity)
CONCURRENCY = 4  # the job's default --concurrency
RSS_BOUND_MB = 150
FIC_PAGE = int(ARM_DEFAULTS["fic_page_size"])
IDENTITY_PAGE = int(ARM_DEFAULTS["identity_page_size"])
SYSTEM_NAMESPACES = 5  # default, kube-node-lease, kube-public, kube-system, coder-wi-jobs


def pages(items: int, size: int) -> int:
    return max(1, math.ceil(items / size))  # an empty list is still one call


@dataclass(frozen=True)
class Bound:
    """The calls and the latency-only wall time no correct run can go below (BENCHMARKS.md, derivation)."""

    identity_pages: int
    observe: tuple[int, ...]  # per identity: FIC list pages read before the plan
    writes: tuple[int, ...]  # per identity: one write per needed change
    readback: tuple[int, ...]  # per identity: FIC list pages re-read after writing to it
    namespace_pages: int

    @property
    def arm_calls(self) -> int:
        return self.identity_pages + sum(self.observe) + sum(self.writes) + sum(self.readback)

    def wall_s(self, concurrency: int) -> float:
        observe = max(max(self.observe), sum(self.observe) / concurrency)
        lanes = [w + r for w, r in zip(self.writes, self.readback, strict=True)]
        write = max(max(lanes), sum(lanes) / concurrency)
        return LATENCY_S * (self.identity_pages + observe + write)


def bound_for(names: list[str], pool: int, cold: bool) -> Bound:
    per = Counter(shard_index(ns, pool) for ns in names)
    placed = [min(per[i], LIMIT) for i in range(pool)]
    return Bound(
        identity_pages=pages(pool, IDENTITY_PAGE),
        observe=tuple(pages(0 if cold else c, FIC_PAGE) for c in placed),
        writes=tuple(c if cold else 0 for c in placed),
        readback=tuple(pages(c, FIC_PAGE) if cold and c else 0 for c in placed),
        namespace_pages=pages(len(names) + SYSTEM_NAMESPACES, NAMESPACE_PAGE),
    )


def split_fic_lists(platform: Platform) -> tuple[int, int]:
    """fic.list calls before the first write (observe) and after the last (read-back), from the request log."""
    log = platform.log.entries("arm")
    writes = [e["seq"] for e in log if e["op"] in ("fic.put", "fic.delete")]
    lists = [e["seq"] for e in log if e["op"] == "fic.list"]
    if not writes:
        return len(lists), 0
    return sum(1 for s in lists if s < writes[0]), sum(1 for s in lists if s > writes[-1])


def measure_floor(concurrency: int) -> float:
    """The per-run floor: the job's run time with no latency and nothing to do (the baseline pool of 3
    identities, no workspace namespaces), median of 3."""
    with tempfile.TemporaryDirectory(prefix="cwj-bench-fic-") as tmp:
        platform = Platform(Path(tmp)).start()
        try:
            env = base_env(platform)
            runs = [run_job("fic-reconcile", ["--concurrency", str(concurrency)], env) for _ in range(3)]
            for run in runs:
                must_exit(run, 0, "fic-reconcile floor")
            floor = median([r.run_s for r in runs])
        finally:
            platform.stop()
    info(f"-- fic-reconcile per-run floor (3 identities, no namespaces, no latency): {floor:.2f} s")
    return floor


def bench_size(n: int, concurrency: int, floor: float) -> None:
    pool = pool_size_needed(n, [], LIMIT)
    assert pool is not None
    names = [f"ameide-ws-{i:05d}" for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="cwj-bench-fic-") as tmp:
        platform = Platform(Path(tmp), Baseline(pool_size=pool)).start()
        try:
            platform.kube.seed_namespaces(names)
            # a write holds its identity for the latency; ARM's token buckets off: this bench counts the job's own
            # calls and time (5000 cold writes would wait ~8 min on the documented 200 / 10 per s write bucket)
            configure(platform, "arm", fic_write_delay_s=LATENCY_S, throttling=False)
            add_latency(platform, "arm", ("identity.*", "fic.list", "fic.get"))
            env = base_env(platform)
            # This bench measures the job against ARM's latency; the job's own write pace is lifted here (far
            # above what 30 ms writes on `concurrency` lanes reach), so it never binds.
            args = ["--concurrency", str(concurrency), "--output", "json", "--arm-writes-per-second", "1000"]
            info(f"-- fic-reconcile {n} namespaces, pool {pool} identities (<=1% overflow), concurrency {concurrency}")
            for label, cold in (("cold", True), ("no-op", False)):
                platform.log.clear()
                run = run_job("fic-reconcile", args, env)
                must_exit(run, 0, f"fic-reconcile {n}ns {label}")
                bound = bound_for(names, pool, cold)
                report(f"fic-reconcile {n}ns {label}", platform, run, bound, concurrency, floor)
                if cold:
                    check_converged(platform, n, json.loads(run.stdout))
        finally:
            platform.stop()


def report(prefix: str, platform: Platform, run: Run, bound: Bound, concurrency: int, floor: float) -> None:
    counts = platform.log.counts()
    arm = counts.get("arm", {})
    observe, readback = split_fic_lists(platform)
    check_equal(f"{prefix}: arm calls", sum(arm.values()), bound.arm_calls)
    check_equal(f"{prefix}: arm identity.list", arm.get("identity.list", 0), bound.identity_pages)
    check_equal(f"{prefix}: arm fic.list observe", observe, sum(bound.observe))
    check_equal(f"{prefix}: arm fic.list read-back", readback, sum(bound.readback))
    check_equal(f"{prefix}: arm fic.put", arm.get("fic.put", 0), sum(bound.writes))
    check_equal(f"{prefix}: arm fic.delete", arm.get("fic.delete", 0), 0)
    check_equal(
        f"{prefix}: kube namespaces.list", counts.get("kube", {}).get("namespaces.list", 0), bound.namespace_pages
    )
    kube = counts.get("kube", {})
    check_equal(f"{prefix}: kube serviceaccounts.list_all", kube.get("serviceaccounts.list_all", 0), 1)
    check_equal(f"{prefix}: kube configmaps.get (relocation record)", kube.get("configmaps.get", 0), 1)
    check_equal(f"{prefix}: entra token", counts.get("entra", {}).get("token", 0), 1)
    check_wall(f"{prefix}: run time", run.run_s, bound.wall_s(concurrency), floor)
    check_at_most(f"{prefix}: peak RSS", run.max_rss_kb / 1024, RSS_BOUND_MB, " MB")
    calls = sum(arm.values())
    per_call = run.cpu_s / calls * 1000
    info(f"{prefix}: process wall {run.wall_s:.2f} s, job CPU {run.cpu_s:.2f} s ({per_call:.1f} ms per ARM call)")


def check_converged(platform: Platform, n: int, document: dict[str, Any]) -> None:
    """The cold run did the job: n FICs, each on its shard (so the counts above are for a correct run)."""
    b = platform.baseline
    on_shard = 0
    for i in range(b.pool_size):
        ident = platform.arm.identities[(b.pool_resource_group.lower(), b.pool_identity_name(i).lower())]
        on_shard += sum(
            1 for f in ident["fics"].values() if shard_index(f["name"][len("coder-ws-") :], b.pool_size) == i
        )
    if on_shard != n or document["counts"]["outcomes"].get("create.ok", 0) != n:
        raise SystemExit(f"cold run did not converge: {on_shard} of {n} FICs on their shard")


def main(argv: list[str] | None = None) -> None:
    sizes = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or list(SIZES)
    floor = measure_floor(CONCURRENCY)
    for n in sizes:
        bench_size(n, CONCURRENCY, floor)


if __name__ == "__main__":
    main()
    sys.exit(tally())
