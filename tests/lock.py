"""The one lock (uv.lock) and the two files exported from it, read the way pip reads them.

`make lock` writes uv.lock and exports `requirements-bootstrap.txt` (uv and the build backend, installed by
hash before anything else) and `requirements-image.txt` (the runtime subset the image installs). Every check
here runs uv with --offline: the answer depends on the repository alone, never on what the registry
published since the lock was made.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from packaging.utils import canonicalize_name
from uv import find_uv_bin

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "uv.lock"
# file -> the `uv export` arguments that produce it (the Makefile's `lock` target runs the same)
EXPORTS = {
    "requirements-bootstrap.txt": ("--only-group", "bootstrap"),
    "requirements-image.txt": ("--no-default-groups",),
}
VIEWS = {**EXPORTS, "requirements-dev": ()}  # the development venv: every default group (not a file)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def uv(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"}
    return subprocess.run([find_uv_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def lock_matches_pyproject(project: Path = REPO) -> tuple[bool, str]:
    """`uv lock --check`: False (with uv's reason) when pyproject.toml asks for what uv.lock does not hold."""
    done = uv("lock", "--check", cwd=project)
    return done.returncode == 0, done.stderr.strip()


def export(name: str, project: Path = REPO) -> str:
    """What `make lock` would write to `name` now (or what the dev venv holds), without uv's header."""
    args = ("export", "--frozen", "--no-emit-project", "--no-header", "--format", "requirements-txt", *VIEWS[name])
    done = uv(*args, cwd=project)
    if done.returncode:
        raise RuntimeError(f"uv export for {name} failed: {done.stderr.strip()}")
    return done.stdout


def body(text: str) -> str:
    """The file without its leading comment lines (uv's header names the command that wrote it)."""
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines)


def stale_exports(project: Path = REPO) -> list[str]:
    """The exported files that no longer equal what the lock exports (empty: all in step)."""
    return [name for name in EXPORTS if body((project / name).read_text()) != body(export(name, project))]


def read_requirements(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{name: (version, [sha256, ...])} from a hashed requirements file (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    locked: dict[str, tuple[str, list[str]]] = {}
    for line in joined.splitlines():
        match = _PIN.match(line.strip())
        if match:
            locked[canonicalize_name(match[1])] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return locked
