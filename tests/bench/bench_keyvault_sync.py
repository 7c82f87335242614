"""keyvault-sync with 500 allowlisted secrets against the emulated Key Vaults, 30 ms of latency on every
authenticated Key Vault call: a no-op run (the two vaults' list pages only: no versions list, no value read)
and a run after 5 seed secrets rotated (5 versions lists, 5 value reads and 5 writes). Calls by kind against
their lower bound, run time against its lower bound (with the job's own schedule: the first action alone, then
--write-concurrency at a time), peak RSS. Derivations: BENCHMARKS.md.

Run: `.venv/bin/python -m tests.bench.bench_keyvault_sync`.
"""

from __future__ import annotations

import math
import secrets
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from azure.keyvault.secrets import SecretClient

from lib.clients.keyvault import PAGE_SIZE
from tests.bench.common import (
    LATENCY_S,
    Run,
    add_latency,
    check_at_most,
    check_equal,
    check_wall,
    info,
    median,
    must_exit,
    run_job,
    tally,
)
from tests.demo import base_env
from tests.emulators.platform import Platform

SECRETS = 500
CHANGED = 5
RSS_BOUND_MB = 150
VAULTS = ("keyvault_source", "keyvault_target")
READS = ("secret.list", "secret.versions", "deleted.list", "deleted.get")
WRITES = ("secret.set", "secret.update", "secret.delete", "deleted.recover", "deleted.purge")


CONCURRENCY = 8  # keyvault-sync's --concurrency default (seed versions listed in parallel)
WRITE_CONCURRENCY = 8  # its --write-concurrency default (entries applied in parallel)


def pages(items: int) -> int:
    return max(1, math.ceil(items / PAGE_SIZE))


def list_bound(n: int, changed: int = 0) -> dict[str, int]:
    """Lists no run can skip: every page of both vaults' secrets and one page of the target's deleted secrets;
    plus one versions list per seed secret whose listed `updated` moved (jobs/keyvault_sync/detect.py)."""
    return {"source list": pages(n), "target list": pages(n), "deleted list": 1, "versions": changed}


def latency_calls(bound: dict[str, int], changed: int) -> int:
    """Round trips in sequence: the three lists one after another (each decides what comes next), the versions
    lists CONCURRENCY at a time, then per changed secret a value read and a write in order, the first changed
    secret alone (the job's choice: a wrong role assignment is refused once) and the rest WRITE_CONCURRENCY at a
    time."""
    lists = bound["source list"] + bound["target list"] + bound["deleted list"]
    applied = 2 * min(changed, 1) + 2 * math.ceil(max(changed - 1, 0) / WRITE_CONCURRENCY)
    return lists + math.ceil(bound["versions"] / CONCURRENCY) + applied


def _seed_client(platform: Platform, env: dict[str, str]) -> SecretClient:
    credential = platform.azure_credential()
    return SecretClient(
        env["CWJ_SOURCE_VAULT_URL"],
        credential,
        verify_challenge_resource=False,
        connection_verify=str(platform.ca_path),
    )


def _set_all(source: SecretClient, names: list[str]) -> None:
    """Seed through the SDK, 8 at a time (its own retry policy honours the vault's 429s)."""
    with ThreadPoolExecutor(max_workers=8) as workers:
        list(workers.map(lambda n: source.set_secret(n, secrets.token_urlsafe(24), tags={"bench": "yes"}), names))


def report(prefix: str, platform: Platform, run: Run, n: int, changed: int, floor: float) -> None:
    counts = platform.log.counts()
    src, dst = counts.get("keyvault_source", {}), counts.get("keyvault_target", {})
    bound = list_bound(n, changed)
    check_equal(f"{prefix}: seed secret.list", src.get("secret.list", 0), bound["source list"])
    check_equal(f"{prefix}: seed secret.versions", src.get("secret.versions", 0), bound["versions"])
    check_equal(f"{prefix}: target secret.list", dst.get("secret.list", 0), bound["target list"])
    check_equal(f"{prefix}: target deleted.list", dst.get("deleted.list", 0), bound["deleted list"])
    check_equal(f"{prefix}: value reads (both vaults)", src.get("secret.get", 0) + dst.get("secret.get", 0), changed)
    check_equal(f"{prefix}: writes (both vaults)", sum(c.get(op, 0) for c in (src, dst) for op in WRITES), changed)
    delayed = sum(v for c in (src, dst) for op, v in c.items() if op != "challenge")
    check_equal(f"{prefix}: key vault calls (excl. 2 auth challenges)", delayed, sum(bound.values()) + 2 * changed)
    check_equal(f"{prefix}: auth challenges", src.get("challenge", 0) + dst.get("challenge", 0), 2)
    check_equal(f"{prefix}: entra token", counts.get("entra", {}).get("token", 0), 1)
    check_wall(f"{prefix}: run time", run.run_s, LATENCY_S * latency_calls(bound, changed), floor)
    check_at_most(f"{prefix}: peak RSS", run.max_rss_kb / 1024, RSS_BOUND_MB, " MB")


def measure_floor(platform: Platform, env: dict[str, str], source: SecretClient, tmp: Path) -> float:
    """The per-run floor: a no-op run over one allowlisted secret with no latency, median of 3; then the
    vaults go back to empty."""
    _set_all(source, ["floor-0"])
    allowlist = tmp / "allowlist-floor.yaml"
    allowlist.write_text("- floor-0\n")
    runs = [run_job("keyvault-sync", ["--allowlist-file", str(allowlist)], env) for _ in range(4)]
    for run in runs:
        must_exit(run, 0, "keyvault-sync floor")
    platform.reset()
    floor = median([r.run_s for r in runs[1:]])  # the first run copies
    info(f"-- keyvault-sync per-run floor (1 secret, no latency): {floor:.2f} s")
    return floor


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cwj-bench-kv-") as tmp:
        platform = Platform(Path(tmp)).start()
        try:
            env = base_env(platform)
            source = _seed_client(platform, env)
            floor = measure_floor(platform, env, source, Path(tmp))
            names = [f"bench-{i:04d}" for i in range(SECRETS)]
            _set_all(source, names)
            allowlist = Path(tmp) / "allowlist.yaml"
            allowlist.write_text("".join(f"- {n}\n" for n in names))
            args = ["--allowlist-file", str(allowlist), "--output", "json"]
            info(
                f"-- keyvault-sync {SECRETS} allowlisted secrets, --concurrency {CONCURRENCY}, "
                f"{LATENCY_S * 1000:.0f} ms per vault call"
            )
            platform.clock.advance(3)  # the seed's clock moves past the seeding (detect.settled), as between runs
            must_exit(run_job("keyvault-sync", args, env), 0, "keyvault-sync first copy")
            add_latency(platform, "keyvault_source", ("*",))
            add_latency(platform, "keyvault_target", ("*",))
            platform.log.clear()
            run = run_job("keyvault-sync", args, env)
            must_exit(run, 0, "keyvault-sync no-op")
            report(f"keyvault-sync {SECRETS} no-op", platform, run, SECRETS, 0, floor)
            platform.faults.clear()
            _set_all(source, names[:: SECRETS // CHANGED][:CHANGED])  # rotate 5 seed secrets
            platform.clock.advance(3)
            add_latency(platform, "keyvault_source", ("*",))
            add_latency(platform, "keyvault_target", ("*",))
            platform.log.clear()
            run = run_job("keyvault-sync", args, env)
            must_exit(run, 0, f"keyvault-sync {CHANGED} changed")
            report(f"keyvault-sync {SECRETS} {CHANGED} changed", platform, run, SECRETS, CHANGED, floor)
            source.close()
        finally:
            platform.stop()


if __name__ == "__main__":
    main()
    sys.exit(tally())
