"""keyvault-sync at scale against the emulators: wall time and request counts for a first run (everything
copied) and a quiet run (nothing to do), for growing allowlists. Prints numbers; asserts nothing about time.

The quiet run's cost is the claim worth watching: list pages on both vaults plus one versions list per
allowlisted seed secret, and zero value reads.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from azure.keyvault.secrets import SecretClient

from tests.demo import base_env
from tests.emulators.platform import Platform

BIN = Path(sys.executable).parent
SIZES = (50, 200)


def _source_client(platform: Platform, env: dict[str, str]) -> SecretClient:
    ca = str(platform.ca_path)
    credential = platform.azure_credential()
    return SecretClient(env["CWJ_SOURCE_VAULT_URL"], credential, verify_challenge_resource=False, connection_verify=ca)


def _run(env: dict[str, str], allowlist: Path) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "keyvault-sync"), "--allowlist-file", str(allowlist), "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"keyvault-sync exited {proc.returncode}: {proc.stderr[-500:]}")
    return elapsed, len(json.loads(proc.stdout)["outcomes"])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cwj-bench-kv-") as tmp:
        platform = Platform(Path(tmp)).start()
        try:
            env = base_env(platform)
            source = _source_client(platform, env)
            print(f"{'secrets':>8} {'run':>6} {'seconds':>8} {'actions':>8} {'kv requests':>12} {'value reads':>12}")
            for size in SIZES:
                platform.reset()
                names = [f"bench-{i:04d}" for i in range(size)]
                for name in names:
                    source.set_secret(name, secrets.token_urlsafe(24), tags={"bench": "yes"})
                allowlist = Path(tmp) / f"allowlist-{size}.yaml"
                allowlist.write_text("".join(f"- {n}\n" for n in names))
                for label in ("first", "quiet"):
                    platform.log.clear()
                    seconds, actions = _run(env, allowlist)
                    counts = platform.log.counts()
                    kv = sum(sum(counts.get(s, {}).values()) for s in ("keyvault_source", "keyvault_target"))
                    reads = sum(counts.get(s, {}).get("secret.get", 0) for s in ("keyvault_source", "keyvault_target"))
                    print(f"{size:>8} {label:>6} {seconds:>8.2f} {actions:>8} {kv:>12} {reads:>12}", flush=True)
            source.close()
        finally:
            platform.stop()


if __name__ == "__main__":
    main()
