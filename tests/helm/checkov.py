"""checkov 3.3.30 for the chart and image tests, in its own venv under .tools/ (created once, then reused).

checkov pins about a hundred packages (/work/shared/TOOLING.md §5), so it would fight the project's own
pins in .venv; a separate venv keeps both honest. Creation takes ~30 s and runs under an exclusive file
lock, so two pytest processes (the chart and the container tests) never build it at the same time; a
marker file written last tells a finished venv from one a killed run left half-built.
Run `python -m tests.helm.checkov` to create it ahead of time.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.machine_env import machine_env

ROOT = Path(__file__).resolve().parents[2]
VERSION = "3.3.30"
VENV = ROOT / ".tools" / f"checkov-{VERSION}"
CHECKOV = VENV / "bin" / "checkov"
MARKER = VENV / ".installed"
LOCK = ROOT / ".tools" / f"checkov-{VERSION}.lock"


class CheckovUnavailable(RuntimeError):
    """checkov could not be installed; the message says what was run and what it printed."""


def _run(command: list[str], timeout: int) -> None:
    # pip must trust the machine's CA, not the emulators' (the platform fixture repoints REQUESTS_CA_BUNDLE)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=machine_env())
    if done.returncode != 0:
        raise CheckovUnavailable(
            f"{' '.join(command)} exited {done.returncode}: {(done.stderr or done.stdout).strip()[-800:]}"
        )


def _install() -> None:
    shutil.rmtree(VENV, ignore_errors=True)  # a half-built venv from a killed run
    _run([sys.executable, "-m", "venv", str(VENV)], timeout=120)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, f"checkov=={VERSION}"], timeout=900)
    if not CHECKOV.is_file():
        raise CheckovUnavailable(f"pip installed checkov=={VERSION} but {CHECKOV} does not exist")
    MARKER.write_text(VERSION + "\n")


def checkov_bin() -> Path:
    """Path of the checkov executable, installing it into .tools/checkov-3.3.30 on first use.

    Raises CheckovUnavailable with pip's error if the install fails (e.g. PyPI unreachable)."""
    if MARKER.is_file():
        return CHECKOV
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if not MARKER.is_file():  # another process may have finished while we waited
            _install()
    return CHECKOV


def scan(target: Path, framework: str, *extra: str) -> dict[str, Any]:
    """Run checkov offline on one file and return its JSON report (a single-framework run gives one object).

    `--skip-download` keeps it from calling the Prisma Cloud API (it would only log a traceback here)."""
    command = [str(checkov_bin()), "-f", str(target), "--framework", framework, "--skip-download", "-o", "json"]
    done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=300, check=False)
    if done.returncode not in (0, 1):  # 1 = some check failed; anything else is checkov itself failing
        raise CheckovUnavailable(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


if __name__ == "__main__":
    path = checkov_bin()
    print(subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True).stdout.strip())
