"""Which modules a process imports, read from `python -X importtime` (one stderr line per module, the first time
it is imported): the start-up bench and tests/unit/test_startup_imports.py ask it about the console scripts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

BIN = Path(sys.executable).parent
# What printing --help or --version never needs: the SDKs (azure, msal, kubernetes: 60-500 ms each) and the
# HTTP stack under the Coder, Vault, webhook and Pushgateway clients (prometheus_client ~80 ms with the
# http.server its exposition pulls in, requests + urllib3 ~60 ms, hvac on top of requests).
HEAVY = ("azure", "msal", "kubernetes", "prometheus_client", "requests", "urllib3", "hvac")


def run_importing(
    args: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `python -X importtime <args>`: the finished process and every module it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        timeout=120,
        check=False,
    )
    lines = (line for line in proc.stderr.splitlines() if line.startswith("import time:") and "[us]" not in line)
    return proc, {line.rsplit("|", 1)[-1].strip() for line in lines}  # "[us]": the header line


def heavy_of(modules: Iterable[str]) -> list[str]:
    """The HEAVY top-level packages among `modules`, sorted."""
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))
