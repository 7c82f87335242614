"""Prometheus' own `promtool` 2.42.0 for the alert tests, taken from Debian bookworm's `prometheus` package
without installing it (tests/debian_tools.py: apt-get download, the pinned sha256, dpkg-deb -x into
.tools/promtool-2.42.0/). Run `python -m tests.helm.promtool` to fetch it ahead of time.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from tests import debian_tools
from tests.debian_tools import DebTool, ToolUnavailable

PACKAGE = "prometheus"
DEB_VERSION = "2.42.0+ds-5+deb12u1"  # Debian bookworm (12); `apt-cache policy prometheus` shows what is served
VERSION = "2.42.0"
# The SHA256 field of `apt-cache show prometheus=2.42.0+ds-5+deb12u1`, per architecture (the .deb name ends in
# it). An architecture not listed relies on apt's own signed-index check alone.
DEB_SHA256 = {"amd64": "81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55"}


class PromtoolUnavailable(ToolUnavailable):
    """promtool could not be obtained; the message says what was run, what it printed and how to fix it."""


TOOL = DebTool(
    name="promtool",
    package=PACKAGE,
    deb_version=DEB_VERSION,
    version=VERSION,
    binary="usr/bin/promtool",
    sha256=DEB_SHA256,
    # e.g. "promtool, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+deb12u1)"
    version_line=re.compile(rf"^promtool, version {re.escape(VERSION)}\+ds \(.*revision: {re.escape(DEB_VERSION)}\)$"),
    pinned_in="DEB_VERSION / DEB_SHA256 in tests/helm/promtool.py",
    error=PromtoolUnavailable,
)
HOME = TOOL.home
PROMTOOL = TOOL.path
MARKER = TOOL.marker


def _run(command: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def download_deb(scratch: Path, *apt_options: str) -> Path:
    return debian_tools.download_deb(TOOL, scratch, *apt_options, run=_run)


def verify_deb(deb: Path) -> None:
    debian_tools.verify_deb(TOOL, deb)


def check_version(binary: Path) -> str:
    return debian_tools.check_version(TOOL, binary)


@functools.cache
def promtool_bin() -> Path:
    """Path of promtool 2.42.0 (Debian's build), fetched into .tools/promtool-2.42.0 on first use.

    Raises PromtoolUnavailable naming the failed command, with `apt-get update` as the fix where that is it."""
    return debian_tools.tool_bin(TOOL, lambda command, cwd, timeout=300: _run(command, cwd, timeout))


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run promtool in `cwd` (rule files named in a unit-test file are relative to that file)."""
    return subprocess.run(
        [str(promtool_bin()), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


if __name__ == "__main__":
    print(check_version(promtool_bin()))
