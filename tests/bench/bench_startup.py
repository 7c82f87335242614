"""Start-up of the four entrypoints as whole processes: `--help` and a no-op run (median of several), and which
heavy SDKs and HTTP clients the `--help` path imports (it needs none: argparse only needs the settings
dataclasses; tests/unit/test_startup_imports.py holds the same line, and --version's, as a test).

Run: `.venv/bin/python -m tests.bench.bench_startup`. For the import tree of one entrypoint:
`.venv/bin/python -X importtime .venv/bin/fic-reconcile --help 2>&1 >/dev/null | sort -t'|' -k2 -n | tail`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path

from tests.bench.common import BIN, Run, check_at_most, check_equal, info, median, must_exit, run_job, tally
from tests.demo import base_env, coder_session
from tests.emulators.platform import Platform
from tests.startup import HEAVY, heavy_of, run_importing

JOBS = ("fic-reconcile", "keyvault-sync", "coder-token-mint", "token-expiry-check")
HELP_BUDGET_S = 0.25  # help without any SDK: interpreter + structlog + the settings (~0.1-0.15 s on 2 cores)
RUN_BUDGET_S = 1.5  # a whole no-op process against loopback emulators (imports dominate)
REPEAT = 5


def help_runs(name: str) -> list[Run]:
    runs = [run_job(name, ["--help"], dict(os.environ)) for _ in range(REPEAT)]
    for run in runs:
        must_exit(run, 0, f"{name} --help")
    return runs


def heavy_imports(name: str) -> list[str]:
    """Top-level HEAVY packages `<name> --help` imports, from `python -X importtime`."""
    _, modules = run_importing([str(BIN / name), "--help"])
    return heavy_of(modules)


def seed(platform: Platform, tmp: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """One no-op scenario per job (args, extra env), each run once first so that the next runs change nothing."""
    env = base_env(platform)
    from azure.keyvault.secrets import SecretClient

    source = SecretClient(
        env["CWJ_SOURCE_VAULT_URL"],
        platform.azure_credential(),
        verify_challenge_resource=False,
        connection_verify=str(platform.ca_path),
    )
    source.set_secret("startup-0", uuid.uuid4().hex)
    source.close()
    allowlist = tmp / "allowlist.yaml"
    allowlist.write_text("- startup-0\n")
    coder = coder_session(platform)
    user = {"username": "ws-bot", "email": "ws-bot@example.test", "login_type": "none"}
    coder.post(f"{platform.coder.url}/api/v2/users", json={**user, "organization_ids": [str(uuid.UUID(int=0))]})
    return {
        "fic-reconcile": ([], {}),
        "keyvault-sync": (["--allowlist-file", str(allowlist)], {}),
        "coder-token-mint": (["--user", "ws-bot"], {"VAULT_TOKEN": ""}),
        "token-expiry-check": (
            ["--all-users", "--fail-on", "never"],
            {"CWJ_CODER_TOKEN_FILE": env["CWJ_BOOTSTRAP_TOKEN_FILE"]},
        ),
    }


def noop_wall(name: str, args: list[str], env: dict[str, str]) -> float:
    must_exit(run_job(name, args, env), 0, f"{name} first run")
    walls = []
    for _ in range(REPEAT):
        result = run_job(name, args, env)
        must_exit(result, 0, f"{name} no-op")
        walls.append(result.wall_s)
    return median(walls)


def main() -> None:
    info(f"-- start-up: whole processes, median of {REPEAT}")
    for name in JOBS:
        heavy = heavy_imports(name)
        if heavy:
            info(f"{name} --help imports {', '.join(heavy)}")
        check_equal(f"{name} --help: heavy SDKs imported ({', '.join(HEAVY)})", len(heavy), 0)
        runs = help_runs(name)
        check_at_most(f"{name} --help: wall", median([r.wall_s for r in runs]), HELP_BUDGET_S, " s", "{:.2f}")
        # on a shared machine the fastest wall and the CPU time (user + sys) are what other load disturbs least
        cpu = median([r.cpu_s for r in runs])
        info(f"{name} --help: fastest wall {min(r.wall_s for r in runs):.2f} s, median CPU {cpu:.2f} s")
    with tempfile.TemporaryDirectory(prefix="cwj-bench-start-") as tmp:
        platform = Platform(Path(tmp)).start()
        try:
            env = base_env(platform)
            for name, (args, extra) in seed(platform, Path(tmp)).items():
                wall = noop_wall(name, args, {**env, **extra})
                check_at_most(f"{name} no-op run: wall", wall, RUN_BUDGET_S, " s", "{:.2f}")
        finally:
            platform.stop()


if __name__ == "__main__":
    main()
    sys.exit(tally())
