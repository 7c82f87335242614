"""Prometheus' own `promtool` 2.42.0 for the alert tests, taken from Debian bookworm's `prometheus` package.

Installing that package would set up a Prometheus server and its service, so the .deb is only downloaded
(`apt-get download`, which needs the package lists: `apt-get update` once, as root) and unpacked with
`dpkg-deb -x` into a scratch directory under .tools/; promtool alone is kept in .tools/promtool-2.42.0/.
apt checks the .deb against Debian's signed Release -> Packages chain itself (nothing here lets it skip that:
no --allow-unauthenticated, and download_deb refuses options that would); the .deb's sha256 is pinned below
as well (for amd64, from `apt-cache show prometheus=DEB_VERSION`) and checked before anything is unpacked.
The work runs under an exclusive file lock, so two pytest processes never unpack at the same time, and the
finished directory appears by one rename with its marker file already in it: a killed run leaves only
scratch, never a half-installed promtool. Run `python -m tests.helm.promtool` to fetch it ahead of time.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
PACKAGE = "prometheus"
DEB_VERSION = "2.42.0+ds-5+deb12u1"  # Debian bookworm (12); `apt-cache policy prometheus` shows what is served
VERSION = "2.42.0"
# The SHA256 field of `apt-cache show prometheus=2.42.0+ds-5+deb12u1`, per architecture (the .deb name ends in
# it). An architecture not listed relies on apt's own signed-index check alone.
DEB_SHA256 = {"amd64": "81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55"}
# apt options that would let an unsigned or unverified package through; download_deb refuses them.
UNVERIFIED = re.compile(r"allow-?unauthenticated|allow-?insecure|allow-?downgrade-?to-?insecure|trusted", re.I)
HOME = TOOLS / f"promtool-{VERSION}"
PROMTOOL = HOME / "promtool"
MARKER = HOME / ".installed"
LOCK = TOOLS / f"promtool-{VERSION}.lock"
# What apt-get prints when its lists are missing (a fresh container), and when they lack the pinned version
# (lists older than it, or the mirror has moved on to a newer bookworm update).
LISTS_MISSING = re.compile(r"Unable to locate package|has no installation candidate")
VERSION_MISSING = re.compile(r"Version '[^']*' for '[^']*' was not found")


class PromtoolUnavailable(RuntimeError):
    """promtool could not be obtained; the message says what was run, what it printed and how to fix it."""


def _run(command: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def download_deb(scratch: Path, *apt_options: str) -> Path:
    """`apt-get download` the pinned .deb into `scratch` (apt_options, e.g. "-o", "Dir::State::Lists=...")."""
    if any(UNVERIFIED.search(option) for option in apt_options):
        raise PromtoolUnavailable(f"refusing apt options that skip apt's signature checks: {apt_options}")
    command = ["apt-get", *apt_options, "download", f"{PACKAGE}={DEB_VERSION}"]
    done = _run(command, scratch)
    debs = sorted(scratch.glob(f"{PACKAGE}_*.deb"))
    if done.returncode == 0 and debs:
        return debs[0]
    output = (done.stderr or done.stdout).strip()
    if LISTS_MISSING.search(output):
        hint = "the package lists are missing: run `apt-get update` (as root) once, then retry"
    elif VERSION_MISSING.search(output):
        hint = (
            "run `apt-get update` (as root) and retry; if the version is still missing, the mirror serves a newer "
            "bookworm update: `apt-cache policy prometheus` shows it, pin that in DEB_VERSION (tests/helm/promtool.py)"
        )
    else:
        hint = "it needs Debian's package mirror"
    raise PromtoolUnavailable(f"{' '.join(command)} exited {done.returncode}: {output[-600:]}; {hint}")


def verify_deb(deb: Path) -> None:
    """Raise PromtoolUnavailable (naming both hashes) unless `deb` has its architecture's pinned sha256."""
    arch = deb.name.removesuffix(".deb").rsplit("_", 1)[-1]
    expected = DEB_SHA256.get(arch)
    if expected is None:
        return  # apt verified it against the signed index; no extra pin for this architecture
    actual = hashlib.sha256(deb.read_bytes()).hexdigest()
    if actual != expected:
        raise PromtoolUnavailable(
            f"{deb.name} has sha256 {actual}, expected {expected} (DEB_SHA256 in tests/helm/promtool.py)"
        )


def _unpack(deb: Path, scratch: Path) -> Path:
    tree = scratch / "tree"
    done = _run(["dpkg-deb", "-x", str(deb), str(tree)], scratch)
    binary = tree / "usr" / "bin" / "promtool"
    if done.returncode != 0 or not binary.is_file():
        raise PromtoolUnavailable(f"dpkg-deb -x {deb.name} gave no usr/bin/promtool: {done.stderr.strip()[-600:]}")
    return binary


def check_version(binary: Path) -> str:
    """The version line of `promtool --version`; raises unless it is the pinned Debian build."""
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()[:1]
    # e.g. "promtool, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+deb12u1)"
    wanted = re.compile(rf"^promtool, version {re.escape(VERSION)}\+ds \(.*revision: {re.escape(DEB_VERSION)}\)$")
    if done.returncode != 0 or not first or not wanted.match(first[0]):
        raise PromtoolUnavailable(f"{binary} --version printed {first or done.stderr!r}; expected {DEB_VERSION}")
    return first[0]


def _install() -> None:
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"promtool-{VERSION}.partial-", dir=TOOLS) as name:
        scratch = Path(name)
        scratch.chmod(0o755)  # apt drops to the _apt user to download; it needs to read the directory
        deb = download_deb(scratch)
        verify_deb(deb)
        binary = _unpack(deb, scratch)
        check_version(binary)
        done = scratch / "done"
        done.mkdir()
        shutil.move(binary, done / "promtool")
        (done / ".installed").write_text(DEB_VERSION + "\n")  # last: a directory with it is complete
        shutil.rmtree(HOME, ignore_errors=True)  # one a killed run left without its marker
        done.rename(HOME)


@functools.cache
def promtool_bin() -> Path:
    """Path of promtool 2.42.0 (Debian's build), fetched into .tools/promtool-2.42.0 on first use.

    Raises PromtoolUnavailable naming the failed command, with `apt-get update` as the fix where that is it."""
    if not MARKER.is_file():
        TOOLS.mkdir(parents=True, exist_ok=True)
        with LOCK.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
            if not MARKER.is_file():  # another process may have finished while we waited
                _install()
    check_version(PROMTOOL)
    return PROMTOOL


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run promtool in `cwd` (rule files named in a unit-test file are relative to that file)."""
    return subprocess.run(
        [str(promtool_bin()), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


if __name__ == "__main__":
    print(check_version(promtool_bin()))
