"""A program from a Debian bookworm package, for the tests, without installing the package.

Installing Debian's `prometheus` or `prometheus-pushgateway` would set up a server and its service, so the .deb
is only downloaded (`apt-get download`, which needs the package lists: `apt-get update` once, as root) and
unpacked with `dpkg-deb -x` into a scratch directory under .tools/; the one binary is kept in
.tools/<name>-<version>/. apt checks the .deb against Debian's signed Release -> Packages chain itself (nothing
here lets it skip that: no --allow-unauthenticated, and `download_deb` refuses options that would); the .deb's
sha256 is pinned as well (for amd64, from `apt-cache show PACKAGE=DEB_VERSION`) and checked before anything is
unpacked. The work runs under an exclusive file lock, so two pytest processes never unpack at the same time,
and the finished directory appears by one rename with its marker file already in it: a killed run leaves only
scratch, never a half-installed tool. Users: tests/helm/promtool.py, tests/pushgateway.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools"
# apt options that would let an unsigned or unverified package through; download_deb refuses them.
UNVERIFIED = re.compile(r"allow-?unauthenticated|allow-?insecure|allow-?downgrade-?to-?insecure|trusted", re.I)
# What apt-get prints when its lists are missing (a fresh container), and when they lack the pinned version
# (lists older than it, or the mirror has moved on to a newer bookworm update).
LISTS_MISSING = re.compile(r"Unable to locate package|has no installation candidate")
VERSION_MISSING = re.compile(r"Version '[^']*' for '[^']*' was not found")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class ToolUnavailable(RuntimeError):
    """The tool could not be obtained; the message says what was run, what it printed and how to fix it."""


@dataclass(frozen=True)
class DebTool:
    name: str  # the binary, and the .tools/<name>-<version> directory
    package: str
    deb_version: str
    version: str
    binary: str  # its path inside the .deb
    sha256: Mapping[str, str]  # per architecture; one not listed relies on apt's signed-index check alone
    version_line: re.Pattern[str]  # the first line of `<binary> --version` for exactly this build
    pinned_in: str  # where the pins are written, for messages
    error: type[ToolUnavailable] = ToolUnavailable

    @property
    def home(self) -> Path:
        return TOOLS / f"{self.name}-{self.version}"

    @property
    def path(self) -> Path:
        return self.home / self.name

    @property
    def marker(self) -> Path:
        return self.home / ".installed"


def download_deb(tool: DebTool, scratch: Path, *apt_options: str, run: Runner) -> Path:
    """`apt-get download` the pinned .deb into `scratch` (apt_options, e.g. "-o", "Dir::State::Lists=...")."""
    if any(UNVERIFIED.search(option) for option in apt_options):
        raise tool.error(f"refusing apt options that skip apt's signature checks: {apt_options}")
    command = ["apt-get", *apt_options, "download", f"{tool.package}={tool.deb_version}"]
    done = run(command, scratch)
    debs = sorted(scratch.glob(f"{tool.package}_*.deb"))
    if done.returncode == 0 and debs:
        return debs[0]
    output = (done.stderr or done.stdout).strip()
    if LISTS_MISSING.search(output):
        hint = "the package lists are missing: run `apt-get update` (as root) once, then retry"
    elif VERSION_MISSING.search(output):
        hint = (
            f"run `apt-get update` (as root) and retry; if the version is still missing, the mirror serves a newer "
            f"bookworm update: `apt-cache policy {tool.package}` shows it, pin that in {tool.pinned_in}"
        )
    else:
        hint = "it needs Debian's package mirror"
    raise tool.error(f"{' '.join(command)} exited {done.returncode}: {output[-600:]}; {hint}")


def verify_deb(tool: DebTool, deb: Path) -> None:
    """Raise (naming both hashes) unless `deb` has its architecture's pinned sha256."""
    arch = deb.name.removesuffix(".deb").rsplit("_", 1)[-1]
    expected = tool.sha256.get(arch)
    if expected is None:
        return  # apt verified it against the signed index; no extra pin for this architecture
    actual = hashlib.sha256(deb.read_bytes()).hexdigest()
    if actual != expected:
        raise tool.error(f"{deb.name} has sha256 {actual}, expected {expected} ({tool.pinned_in})")


def check_version(tool: DebTool, binary: Path) -> str:
    """The version line of `<binary> --version`; raises unless it is the pinned Debian build."""
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()[:1]
    if done.returncode != 0 or not first or not tool.version_line.match(first[0]):
        raise tool.error(f"{binary} --version printed {first or done.stderr!r}; expected {tool.deb_version}")
    return first[0]


def _unpack(tool: DebTool, deb: Path, scratch: Path, run: Runner) -> Path:
    tree = scratch / "tree"
    done = run(["dpkg-deb", "-x", str(deb), str(tree)], scratch)
    binary = tree / tool.binary
    if done.returncode != 0 or not binary.is_file():
        raise tool.error(f"dpkg-deb -x {deb.name} gave no {tool.binary}: {done.stderr.strip()[-600:]}")
    return binary


def install(tool: DebTool, run: Runner) -> None:
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{tool.name}-{tool.version}.partial-", dir=TOOLS) as name:
        scratch = Path(name)
        scratch.chmod(0o755)  # apt drops to the _apt user to download; it needs to read the directory
        deb = download_deb(tool, scratch, run=run)
        verify_deb(tool, deb)
        binary = _unpack(tool, deb, scratch, run)
        check_version(tool, binary)
        done = scratch / "done"
        done.mkdir()
        shutil.move(binary, done / tool.name)
        (done / ".installed").write_text(tool.deb_version + "\n")  # last: a directory with it is complete
        shutil.rmtree(tool.home, ignore_errors=True)  # one a killed run left without its marker
        done.rename(tool.home)


def tool_bin(tool: DebTool, run: Runner) -> Path:
    """The tool's binary, fetched into .tools/<name>-<version> on first use (under a file lock)."""
    if not tool.marker.is_file():
        TOOLS.mkdir(parents=True, exist_ok=True)
        with (TOOLS / f"{tool.name}-{tool.version}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
            if not tool.marker.is_file():  # another process may have finished while we waited
                install(tool, run)
    check_version(tool, tool.path)
    return tool.path
