"""fic-reconcile --mode identity-binding at 1,000 and 5,000 namespaces on a pool of 3 and of 50 identities,
against the emulators with 30 ms of emulated ARM latency on every read (as bench_fic_reconcile.py): a first run
(every binding, ClusterRole and ClusterRoleBinding created) and a no-op run. Wall time, requests by kind, peak RSS
of the job process. Each binding PUT is a long-running operation the emulator keeps InProgress for
`binding_lro_seconds` (1.0 s, Retry-After 1), and the job writes the binding path one action at a time, so the
first run grows with the pool, not with the namespaces. Figures: BENCHMARKS.md, "identity-binding mode".

Run: `.venv/bin/python -m tests.bench.bench_fic_bindings [NAMESPACES:POOL ...]` (default 1000:3 1000:50 5000:3
5000:50).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from jobs.fic_reconcile.identity_binding.observe import SELECTOR
from tests.bench.common import (
    Run,
    add_latency,
    check_at_most,
    check_equal,
    configure,
    info,
    must_exit,
    run_job,
    tally,
)
from tests.demo import base_env
from tests.emulators.platform import Baseline, Platform

CASES = ((1_000, 3), (1_000, 50), (5_000, 3), (5_000, 50))
RSS_BOUND_MB = 150  # bench_fic_reconcile.py's
LRO_S = 1.0  # tests/emulators/arm/aks.py's default binding_lro_seconds
WRITES = ("aks.binding.put", "rbac.create", "rbac.replace", "rbac.patch", "rbac.delete", "fic.put", "fic.delete")


def bench_case(n: int, pool: int) -> None:
    names = [f"ameide-ws-{i:05d}" for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="cwj-bench-ib-") as tmp:
        platform = Platform(Path(tmp), Baseline(pool_size=pool)).start()
        try:
            platform.kube.seed_namespaces(names)
            configure(platform, "arm", throttling=False, binding_lro_seconds=LRO_S)
            add_latency(platform, "arm", ("identity.*", "fic.list", "fic.get", "aks.*"))
            env = base_env(platform)
            # the write pace lifted as in bench_fic_reconcile.py: this bench measures the job against latency
            args = ["--mode", "identity-binding", "--output", "json", "--arm-writes-per-second", "1000"]
            info(f"-- fic-reconcile --mode identity-binding {n} namespaces, pool {pool} identities")
            for label in ("first", "no-op"):
                platform.log.clear()
                run = run_job("fic-reconcile", args, env)
                must_exit(run, 0, f"identity-binding {n}ns pool {pool} {label}")
                report(f"identity-binding {n}ns pool {pool} {label}", platform, run, pool, first=label == "first")
            check_converged(platform, n, pool)
        finally:
            platform.stop()


def report(prefix: str, platform: Platform, run: Run, pool: int, first: bool) -> None:
    counts = platform.log.counts()
    arm, kube = counts.get("arm", {}), counts.get("kube", {})
    writes = sum(arm.get(op, 0) + kube.get(op, 0) for op in WRITES)
    check_equal(f"{prefix}: writes", writes, 3 * pool if first else 0)  # a binding, a role, a role binding each
    if first:
        check_equal(f"{prefix}: arm aks.binding.put", arm.get("aks.binding.put", 0), pool)
        check_equal(f"{prefix}: kube rbac.create", kube.get("rbac.create", 0), 2 * pool)
    check_at_most(f"{prefix}: peak RSS", run.max_rss_kb / 1024, RSS_BOUND_MB, " MB")
    info(f"{prefix}: run {run.run_s:.2f} s, process wall {run.wall_s:.2f} s, job CPU {run.cpu_s:.2f} s")
    info(f"{prefix}: requests arm {sum(arm.values())} {json.dumps(dict(sorted(arm.items())))}")
    info(f"{prefix}: requests kube {sum(kube.values())} {json.dumps(dict(sorted(kube.items())))}")
    info(f"{prefix}: requests entra {sum(counts.get('entra', {}).values())}")


def check_converged(platform: Platform, n: int, pool: int) -> None:
    """The first run did the job: one ClusterRoleBinding per identity, n workspace subjects between them."""
    with platform.kube.lock:
        ours = [b for b in platform.kube.rbac["clusterrolebindings"].values() if _labelled(b)]
    subjects = sum(len(b.get("subjects") or []) for b in ours)
    if len(ours) != pool or subjects != n:
        raise SystemExit(f"not converged: {len(ours)} ClusterRoleBindings of {pool}, {subjects} subjects of {n}")


def _labelled(obj: dict[str, object]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}  # type: ignore[union-attr]
    return all(labels.get(k) == v for k, v in (pair.split("=") for pair in SELECTOR.split(",")))


def main(argv: list[str] | None = None) -> None:
    given = argv if argv is not None else sys.argv[1:]
    cases = [tuple(int(x) for x in a.split(":")) for a in given] or list(CASES)
    for n, pool in cases:
        bench_case(n, pool)


if __name__ == "__main__":
    main()
    sys.exit(tally())
