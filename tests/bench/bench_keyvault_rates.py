"""keyvault-sync at Key Vault's documented service limits (issue 17, "Done means" 2 and 4), time compressed S-fold.

The Key Vault emulators throttle per vault with the documented buckets (CREATE secret 300, all other secrets
transactions 4,000, per 10 s: tests/emulators/keyvault/throttle.py) refilled S times faster in real time
(`time_scale=S`); the job runs with its chart's settings scaled the same way: `--keyvault-creates-per-second
25*S` and `--max-run-seconds (activeDeadlineSeconds - 120)/S`, so a real second here stands for S seconds in
production. Its other settings are its defaults (`--write-concurrency 8`). For N = 500 and 5,000 allowlisted
secrets:

1. a cold start (every secret to copy), runs repeated until one plans nothing: runs needed, each run's time x S
   within the Job's activeDeadlineSeconds (read from the chart), the share of Key Vault answers that were 429
   (target < 1%), every secret copied once; printed beside it, the floor the CREATE limit sets,
   (N - 300) / 30 per s, and the job's own pace, (N - 125) / 25 s after its burst of 125;
2. a no-op run right after (the seed's clock moved on): Key Vault calls against the bound of the two vaults'
   list pages, ceil(N/25) each, plus the one page of the target's deleted secrets; no versions list, no value
   read, no write, no 429.

Seeding runs with throttling off (it stands for weeks of SRE changes, not for the job's load).
What does not scale: CPU, process start-up (x S overstates them), the job's burst (125 new versions whatever the
pace, jobs/keyvault_sync/job.py, so it stays under the vault's 300 as in production), and the job's unpaced reads
(N value reads in a cold start against 4,000 per 10 s: no limit at these sizes).

Run: `.venv/bin/python -m tests.bench.bench_keyvault_rates [S [N ...]] [--write-concurrency W] [--latency MS]
[--budget SECONDS]` (default S = 5, N = 500 5000, W = the job's default, no added latency, the chart's run budget;
`--latency` delays every authenticated Key Vault answer by MS real milliseconds, as a distant vault would: that
is what --write-concurrency hides; `--budget` is a run budget in production seconds, divided by S like the
chart's, to see a cold start spread over several runs).
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from azure.keyvault.secrets import SecretClient

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
from tests.emulators.keyvault.throttle import DEFAULTS as KV_LIMITS
from tests.emulators.platform import Platform
from tests.pinned import ROOT

SCALE = 5.0
SIZES = (500, 5000)
PACE = 25.0  # the job's default --keyvault-creates-per-second
BURST = 125  # the job's largest burst of new versions
CREATE_BUCKET = int(KV_LIMITS["create_per_10s"])
CREATE_PER_S = CREATE_BUCKET / 10
PAGE = 25
MAX_RUNS = 10
THROTTLE_TARGET = 0.01
VAULTS = ("keyvault_source", "keyvault_target")
WRITES = ("secret.set", "secret.update", "secret.delete", "deleted.recover", "deleted.purge")


def chart_deadline() -> tuple[float, float]:
    """(activeDeadlineSeconds, the run budget the chart derives from it) for keyvault-sync, from values.yaml."""
    values = yaml.safe_load((ROOT / "helm" / "coder-wi-jobs" / "values.yaml").read_text())
    job = values["jobs"]["keyvaultSync"]
    deadline = float(job.get("activeDeadlineSeconds") or values["jobDefaults"]["activeDeadlineSeconds"])
    budget = job["settings"].get("maxRunSeconds")
    return deadline, float(budget) if budget is not None else deadline - 120


def _seed(platform: Platform, env: dict[str, str], names: list[str]) -> None:
    client = SecretClient(
        env["CWJ_SOURCE_VAULT_URL"],
        platform.azure_credential(),
        verify_challenge_resource=False,
        connection_verify=str(platform.ca_path),
    )
    with ThreadPoolExecutor(max_workers=8) as workers:
        list(workers.map(lambda n: client.set_secret(n, secrets.token_urlsafe(24)), names))
    client.close()


def _statuses(platform: Platform) -> list[int]:
    return [e["status"] for v in VAULTS for e in platform.log.entries(v) if e["op"] != "challenge"]


def converge(platform: Platform, args: list[str], env: dict[str, str], prefix: str, scale: float) -> list[Run]:
    """Runs until one plans nothing (at most MAX_RUNS); every run exits 0 (deferral is not a failure)."""
    runs: list[Run] = []
    for i in range(MAX_RUNS):
        run = run_job("keyvault-sync", args, env, timeout=3600)
        must_exit(run, 0, f"{prefix} run {i + 1}")
        runs.append(run)
        outcomes: dict[str, Any] = json.loads(run.stdout)["counts"]["outcomes"]
        info(
            f"   {prefix}: run {i + 1}: {run.wall_s:.1f} s real (x{scale:g} = {run.wall_s * scale:.0f} s), "
            f"job CPU {run.cpu_s:.1f} s, outcomes {outcomes}"
        )
        platform.clock.advance(3)  # the seed's clock moves on between runs, as it does in production
        if not outcomes:
            break
    return runs


def bench_cold(platform: Platform, n: int, scale: float, args: list[str], env: dict[str, str]) -> None:
    deadline, _ = chart_deadline()
    prefix = f"cold {n}"
    platform.log.clear()
    runs = converge(platform, args, env, prefix, scale)
    wrote = runs[:-1]
    statuses = _statuses(platform)
    throttled = statuses.count(429)
    info(f"-- keyvault-sync {n} secrets, time x{scale:g}: cold start, {len(statuses)} Key Vault calls")
    check_at_most(f"{prefix}: runs needed (until one plans nothing)", len(runs), MAX_RUNS)
    converged = not json.loads(runs[-1].stdout)["outcomes"]
    check_equal(f"{prefix}: converged (the last run planned nothing)", int(converged), 1)
    check_at_most(
        f"{prefix}: share of calls answered 429 ({throttled})", throttled / len(statuses), THROTTLE_TARGET, "", "{:.4f}"
    )
    check_at_most(
        f"{prefix}: longest run x{scale:g} (process wall) within activeDeadlineSeconds",
        max(r.wall_s for r in runs) * scale,
        deadline,
        " s",
    )
    floor = max(0.0, (n - CREATE_BUCKET) / CREATE_PER_S)
    paced = max(0.0, (n - BURST) / PACE)
    total = sum(r.run_s for r in wrote) * scale
    info(
        f"   {prefix}: {len(wrote)} run(s) wrote, {total:.0f} s x{scale:g} in all (harness time); Key Vault's "
        f"CREATE limit alone needs >= {floor:.0f} s, the job's pace {paced:.0f} s"
    )
    written = [e for e in platform.log.entries("keyvault_target", "secret.set") if e["status"] == 200]
    check_equal(f"{prefix}: new target versions", len(written), n)
    reads = platform.log.entries("keyvault_source", "secret.get")
    check_equal(f"{prefix}: seed value reads", len(reads), n)


def bench_noop(platform: Platform, n: int, scale: float, args: list[str], env: dict[str, str]) -> None:
    prefix = f"no-op {n}"
    platform.log.clear()
    noop = run_job("keyvault-sync", args, env, timeout=600)
    must_exit(noop, 0, f"keyvault-sync {prefix}")
    counts = {v: platform.log.counts().get(v, {}) for v in VAULTS}
    calls = sum(c for v in VAULTS for op, c in counts[v].items() if op != "challenge")
    bound = 2 * math.ceil(n / PAGE) + 1
    check_equal(f"{prefix}: Key Vault calls (2 x ceil(N/25) list pages + 1 deleted page)", calls, bound)
    check_equal(f"{prefix}: versions lists", counts["keyvault_source"].get("secret.versions", 0), 0)
    check_equal(f"{prefix}: value reads", sum(counts[v].get("secret.get", 0) for v in VAULTS), 0)
    check_equal(f"{prefix}: writes", sum(counts[v].get(op, 0) for v in VAULTS for op in WRITES), 0)
    check_equal(f"{prefix}: 429s", _statuses(platform).count(429), 0)
    info(
        f"   {prefix}: run time {noop.run_s:.2f} s real (x{scale:g} = {noop.run_s * scale:.0f} s), process wall "
        f"{noop.wall_s:.2f} s, job CPU {noop.cpu_s:.2f} s"
    )


def bench(
    n: int, scale: float, write_concurrency: int | None, latency_ms: float = 0.0, budget: float | None = None
) -> None:
    budget = budget or chart_deadline()[1]
    with tempfile.TemporaryDirectory(prefix="cwj-bench-kv-rates-") as tmp:
        platform = Platform(Path(tmp)).start()
        try:
            env = base_env(platform)
            for vault in VAULTS:
                configure(platform, vault, throttling=False)
            names = [f"rate-{i:05d}" for i in range(n)]
            _seed(platform, env, names)
            allowlist = Path(tmp) / "allowlist.yaml"
            allowlist.write_text("".join(f"- {name}\n" for name in names))
            for vault in VAULTS:
                configure(platform, vault, throttling=True, time_scale=scale)
                if latency_ms:
                    add_latency(platform, vault, ("*",), latency_ms / 1000)
            platform.clock.advance(3)
            args = ["--allowlist-file", str(allowlist), "--output", "json"]
            args += ["--keyvault-creates-per-second", f"{PACE * scale:g}", "--max-run-seconds", f"{budget / scale:g}"]
            if write_concurrency is not None:
                args += ["--write-concurrency", str(write_concurrency)]
            latency = f", {latency_ms:g} ms added to every Key Vault answer" if latency_ms else ""
            info(f"-- keyvault-sync {n} secrets, time x{scale:g}{latency}: {' '.join(args[2:])}")
            bench_cold(platform, n, scale, args, env)
            bench_noop(platform, n, scale, args, env)
        finally:
            platform.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_keyvault_rates")
    parser.add_argument("scale", nargs="?", type=float, default=SCALE)
    parser.add_argument("sizes", nargs="*", type=int, default=list(SIZES))
    parser.add_argument("--write-concurrency", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.0, help="milliseconds added to every Key Vault answer")
    parser.add_argument("--budget", type=float, default=None, help="run budget in production seconds")
    ns = parser.parse_args(argv if argv is not None else [])
    deadline, budget = chart_deadline()
    whose = "given" if ns.budget else "the chart's"
    info(
        f"-- keyvault-sync at Key Vault's limits: S = {ns.scale:g}, chart activeDeadlineSeconds {deadline:.0f} s, "
        f"run budget {ns.budget or budget:.0f} s ({whose})"
    )
    for n in ns.sizes or SIZES:
        bench(n, ns.scale, ns.write_concurrency, ns.latency, ns.budget)


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(tally())
