"""How long the pure plan takes at fleet sizes, and what the capacity math says about pool sizing.

Run: `.venv/bin/python -m tests.bench` (all benches) or `.venv/bin/python -m tests.bench.bench_fic_plan`.
"""

from __future__ import annotations

import time
from dataclasses import replace

from lib.fic_capacity import overflow_exact, overflow_upper_bound, pool_size_needed, safe_namespace_count
from lib.fic_plan import (
    AUDIENCE,
    FicSpec,
    IdentityState,
    Observed,
    ObservedFic,
    Policy,
    plan,
)
from lib.shard import shard_index

ISSUER = "https://oidc.example.test/tenant/cluster/"
POLICY = Policy(ISSUER, "workspace", "coder-ws-", "ameide-ws-", limit=20, allow_mass_delete=True)


def scenario(n_namespaces: int, pool_size: int, placed_for: int) -> Observed:
    """n namespaces, ours placed as a pool of `placed_for` identities would have placed them (the worst
    case for the plan is a pool that just grew: most FICs relocate), 10% of them already gone."""
    names = [f"ameide-ws-{i:05d}" for i in range(n_namespaces)]
    fics: dict[int, list[ObservedFic]] = {i: [] for i in range(pool_size)}
    for ns in names:
        spec = FicSpec(ISSUER, f"system:serviceaccount:{ns}:workspace", (AUDIENCE,))
        fics[shard_index(ns, placed_for)].append(ObservedFic("coder-ws-" + ns, spec))
    identities = tuple(IdentityState(f"id-{i}", f"client-{i}", tuple(fics[i])) for i in range(pool_size))
    return Observed(tuple(names[: n_namespaces * 9 // 10]), True, identities)


def timed(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    print("plan() on a pool that just grew by one identity (most FICs relocate, 10% of namespaces gone)")
    print(f"{'namespaces':>10} {'pool':>5} {'actions':>8} {'phases':>7} {'unplaceable':>12} {'seconds':>8}")
    for n, size in [(100, 8), (1_000, 80), (5_000, 400), (10_000, 800)]:
        observed = scenario(n, size, size - 1)
        policy = replace(POLICY, limit=max(20, n // size * 3))  # room enough for everyone, so every action plans
        result = plan(observed, policy)
        phases = len({a.phase for a in result.actions})
        unplaceable = sum(1 for f in result.findings if f.rule == "unplaceable")
        seconds = timed(lambda o=observed, p=policy: plan(o, p))  # type: ignore[misc]
        print(f"{n:>10} {size:>5} {len(result.actions):>8} {phases:>7} {unplaceable:>12} {seconds:>8.3f}")

    print("\ncapacity at 20 FICs per identity: safe namespace count at <=1% overflow (union bound vs exact)")
    print(f"{'pool':>5} {'naive':>6} {'safe':>5} {'P_bound(safe)':>14} {'P_exact(safe)':>14} {'fill':>5}")
    for size in (1, 2, 3, 4, 8, 16, 32):
        caps = [20] * size
        safe = safe_namespace_count(caps)
        exact = overflow_exact(safe, caps) if size <= 8 else float("nan")
        bound = overflow_upper_bound(safe, caps)
        print(f"{size:>5} {20 * size:>6} {safe:>5} {bound:>14.5f} {exact:>14.5f} {safe / (20 * size):>5.0%}")

    print("\npool size needed for n namespaces at <=1% overflow risk (limit 20)")
    for n in (25, 50, 100, 500, 1_000, 5_000):
        seconds = timed(lambda n=n: pool_size_needed(n, [20] * 3, 20), repeat=1)  # type: ignore[misc]
        print(f"  n={n:>5}: {pool_size_needed(n, [20] * 3, 20)} identities ({seconds * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
