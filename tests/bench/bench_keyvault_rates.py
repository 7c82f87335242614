"""keyvault-sync at Key Vault's documented service limits (issue 17, "Done means" 2 and 4), time compressed S-fold.

The Key Vault emulators throttle per vault with the documented buckets (CREATE secret 300, all other secrets
transactions 4,000, per 10 s: tests/emulators/keyvault/throttle.py) refilled S times faster in real time
(`time_scale=S`); the job paces its new versions at `--keyvault-creates-per-second 25*S`, so a real second here
stands for S seconds in production. For N = 500 and 5,000 allowlisted secrets:

1. a cold run (every secret copied): the share of Key Vault answers that were 429 (target < 1%), and the run's
   time x S within the chart's 900 s activeDeadlineSeconds; printed beside it, the floor the CREATE limit sets,
   (N - 300) / 30 per s, and the job's own pace, 25/s after a 125-version burst: (N - 125) / 25 s (x S
   overstates CPU and start-up, which do not scale: at 500 secrets the run is CPU-bound, not rate-bound);
2. a no-op run right after (the seed's clock moved on): Key Vault calls against the bound of the two vaults'
   list pages, ceil(N/25) each, plus the one page of the target's deleted secrets; no versions list, no value
   read, no write, no 429.

Seeding runs with throttling off (it stands for weeks of SRE changes, not for the job's load).
What does not scale: CPU, process start-up, and the job's unpaced reads (fine at these sizes: 2N reads in the
cold run against 4,000 per 10 s).

Run: `.venv/bin/python -m tests.bench.bench_keyvault_rates [S]` (default S = 5).
"""

from __future__ import annotations

import math
import secrets
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from azure.keyvault.secrets import SecretClient

from tests.bench.common import check_at_most, check_equal, configure, info, must_exit, run_job, tally
from tests.demo import base_env
from tests.emulators.keyvault.throttle import DEFAULTS as KV_LIMITS
from tests.emulators.platform import Platform

SCALE = 5.0
SIZES = (500, 5000)
PACE = 25.0  # the job's default --keyvault-creates-per-second
BURST_S = 5.0  # the job's pacer holds 5 s worth
CREATE_PER_S = KV_LIMITS["create_per_10s"] / 10
PAGE = 25
DEADLINE_S = 900.0  # the chart's activeDeadlineSeconds
THROTTLE_TARGET = 0.01
VAULTS = ("keyvault_source", "keyvault_target")
WRITES = ("secret.set", "secret.update", "secret.delete", "deleted.recover", "deleted.purge")


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


def bench(n: int, scale: float) -> None:
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
            platform.clock.advance(3)
            args = ["--allowlist-file", str(allowlist), "--output", "json"]
            args += ["--keyvault-creates-per-second", f"{PACE * scale:g}"]
            platform.log.clear()
            cold = run_job("keyvault-sync", args, env, timeout=3600)
            must_exit(cold, 0, f"keyvault-sync cold {n}")
            statuses = _statuses(platform)
            throttled = statuses.count(429)
            info(f"-- keyvault-sync {n} secrets, time x{scale:g}: cold run, {len(statuses)} Key Vault calls")
            check_at_most(
                f"cold {n}: share of calls answered 429", throttled / len(statuses), THROTTLE_TARGET, "", "{:.4f}"
            )
            floor = max(0.0, (n - KV_LIMITS["create_per_10s"]) / CREATE_PER_S)
            paced = max(0.0, (n - PACE * BURST_S) / PACE)
            info(f"   cold {n}: Key Vault's CREATE limit alone needs >= {floor:.0f} s; the job's pace {paced:.0f} s")
            info(f"   cold {n}: run time {cold.run_s:.1f} s real, x{scale:g} = {cold.run_s * scale:.0f} s")
            check_at_most(
                f"cold {n}: run time x{scale:g} within the Job's activeDeadlineSeconds", cold.run_s * scale, DEADLINE_S
            )
            written = [e for e in platform.log.entries("keyvault_target", "secret.set") if e["status"] == 200]
            check_equal(f"cold {n}: new target versions", len(written), n)

            platform.clock.advance(3)
            platform.log.clear()
            noop = run_job("keyvault-sync", args, env, timeout=600)
            must_exit(noop, 0, f"keyvault-sync no-op {n}")
            counts = {v: platform.log.counts().get(v, {}) for v in VAULTS}
            calls = sum(c for v in VAULTS for op, c in counts[v].items() if op != "challenge")
            bound = 2 * math.ceil(n / PAGE) + 1
            check_equal(f"no-op {n}: Key Vault calls (2 x ceil(N/25) list pages + 1 deleted page)", calls, bound)
            check_equal(f"no-op {n}: versions lists", counts["keyvault_source"].get("secret.versions", 0), 0)
            check_equal(f"no-op {n}: value reads", sum(counts[v].get("secret.get", 0) for v in VAULTS), 0)
            check_equal(f"no-op {n}: writes", sum(counts[v].get(op, 0) for v in VAULTS for op in WRITES), 0)
            check_equal(f"no-op {n}: 429s", _statuses(platform).count(429), 0)
            info(f"   no-op {n}: run time {noop.run_s:.2f} s")
        finally:
            platform.stop()


def main(scale: float = SCALE) -> None:
    for n in SIZES:
        bench(n, scale)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else SCALE)
    sys.exit(tally())
