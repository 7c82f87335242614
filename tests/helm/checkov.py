"""checkov 3.3.30 for the chart and image tests, in its own venv under .tools/ (created once, then reused).

checkov pins about a hundred packages (/work/shared/TOOLING.md §5), so it would fight the project's own
pins in .venv (and in uv.lock); a separate venv keeps both honest. Its packages come from
tests/helm/checkov-requirements.txt, where uv pinned checkov and everything it pulls in with sha256 hashes
(`make lock-tools`, which `make lock` runs too, calls lock() below); pip installs exactly that file with
`--require-hashes --no-deps --only-binary :all:`, so nothing unpinned, unhashed or built from source enters.
The venv's folder name carries a short hash of that file: a changed file gets a new venv, never a stale one.
Creation takes ~30 s and runs under an exclusive file lock, so two pytest processes (the chart and the
container tests) never build it at the same time; a marker file written last tells a finished venv from one
a killed run left half-built. Run `python -m tests.helm.checkov` to create it ahead of time.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.machine_env import machine_env

ROOT = Path(__file__).resolve().parents[2]
VERSION = "3.3.30"
REQUIREMENTS = Path(__file__).with_name("checkov-requirements.txt")
# What `make lock-tools` runs (uv from the project's venv, input `checkov==VERSION` on stdin): every platform
# and Python from 3.11 on in one file, wheels only, with the hash of every artifact.
COMPILE = ("pip", "compile", "--universal", "--python-version", "3.11", "--generate-hashes", "--only-binary", ":all:")
REGENERATE = "make lock-tools"
PINS = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
VENV = ROOT / ".tools" / f"checkov-{VERSION}-{PINS}"
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
    _run([*pip, "--require-hashes", "--no-deps", "--only-binary", ":all:", "-r", str(REQUIREMENTS)], timeout=900)
    if not CHECKOV.is_file():
        raise CheckovUnavailable(f"pip installed {REQUIREMENTS.name} but {CHECKOV} does not exist")
    MARKER.write_text(f"{VERSION} {PINS}\n")


def checkov_bin() -> Path:
    """Path of the checkov executable, installing it into .tools/checkov-3.3.30-<PINS> on first use.

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


def lock(*, upgrade: bool = False) -> None:
    """Re-resolve checkov==VERSION into REQUIREMENTS with uv (needs the registry). Pins already in the file are
    kept unless `upgrade`, as `make lock` keeps uv.lock's; the header says what wrote the file and why."""
    from uv import find_uv_bin  # the project's venv has it; the checkov venv never imports this module

    command = [find_uv_bin(), *COMPILE, *(["--upgrade"] if upgrade else []), "--quiet"]
    command += ["--custom-compile-command", REGENERATE, "-o", str(REQUIREMENTS), "-"]
    env = machine_env(UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")
    done = subprocess.run(
        command, input=f"checkov=={VERSION}\n", capture_output=True, text=True, timeout=600, check=False, env=env
    )
    if done.returncode != 0:
        raise CheckovUnavailable(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    header = [
        f"# checkov=={VERSION} and every package it pulls in, pinned with sha256 hashes, for checkov's own venv:",
        "# tests/helm/checkov.py installs this file with pip --require-hashes --no-deps --only-binary :all:.",
        "# Not part of uv.lock, because checkov's pins conflict with the project's. Regenerate with",
        f"# `{REGENERATE}` (run by `make lock` too), which pipes `checkov=={VERSION}` into",
        f"#    uv {' '.join(COMPILE)} -",
    ]
    REQUIREMENTS.write_text("\n".join(header) + "\n" + REQUIREMENTS.read_text())


if __name__ == "__main__":
    if sys.argv[1:2] == ["lock"]:
        lock(upgrade="--upgrade" in sys.argv[2:])
        sys.exit()
    path = checkov_bin()
    print(subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True).stdout.strip())
