"""Build and run the project's image with no Docker engine and no container registry (TOOLING.md §3).

    python -m tests.container.build wheels   # build/wheels/ for `docker build .` (docs/container.md)
    python -m tests.container.build image    # the offline CI build, exported as an OCI archive under .ctr/

The image installs requirements-image.txt, the runtime subset of uv.lock (`make lock` exports it): every
runtime dependency, transitive ones included, at the version the development venv and the tests use, with
the sha256 of every artifact the lock knows. The wheels for the image's platform (CPython 3.11, glibc 2.36,
x86_64) are downloaded here, on the host, against those hashes; inside the build pip runs with --no-index
--require-hashes, so neither the network, the egress proxy nor its CA bundle takes part. The base is a
minbase Debian bookworm from the Debian mirror (mmdebstrap), imported into a throw-away containers-storage
directory that every buildah/podman call names explicitly.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests import lock

REPO = Path(__file__).resolve().parents[2]
WHEELS = REPO / "build" / "wheels"  # the only path .dockerignore lets into the build context
LOCK = REPO / "requirements-image.txt"  # the image's pinned, hashed runtime dependencies (from uv.lock)
SCRATCH = REPO / ".ctr"  # git-ignored
BASE_TAG = "localhost/base:bookworm"
IMAGE_TAG = "localhost/coder-wi-jobs:ci"
TOOLS = ("buildah", "podman", "runc", "mmdebstrap")
APT_INSTALL = (
    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
    "buildah podman runc mmdebstrap uidmap"
)
# What the image's Python looks like, for `pip download`: Debian bookworm (and python:3.11-slim-bookworm)
# is CPython 3.11 on glibc 2.36. pip does not widen an explicit --platform to older glibc tags, so every
# manylinux tag a glibc 2.36 interpreter accepts is listed (the legacy names are aliases of 2_17/12/5).
TARGET_PYTHON = "3.11"
TARGET_PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)] + [
    f"{legacy}_x86_64" for legacy in ("manylinux2014", "manylinux2010", "manylinux1")
]
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_SUITES = ("bookworm", "bookworm-updates")
BASE_MAX_AGE_S = 7 * 86400  # a cached base tarball older than this is rebuilt (security updates)
# The host's hard limits are nofile 20000 / nproc 96365 and CAP_SYS_RESOURCE is dropped, so the runtime
# cannot raise the limits podman asks for by default ("error setting rlimit type 7 (NOFILE): operation
# not permitted"); conmon itself runs with nproc 32768, so nproc must stay below that too.
ULIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")
# The chart's pod: read-only root with only /tmp writable (an emptyDir there; a 64 MiB tmpfs here, and not
# podman's default extra tmpfs on /run and /var/tmp), all capabilities dropped, no privilege escalation.
# No network by default on top (Store.run): --help and config errors must not need one.
RUN_FLAGS = (
    "--rm", "--read-only", "--read-only-tmpfs=false", "--tmpfs=/tmp:rw,size=64m,mode=1777",
    "--cap-drop=ALL", "--security-opt=no-new-privileges", *ULIMITS,
)  # fmt: skip


class ToolMissing(RuntimeError):
    pass


def require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise ToolMissing(f"{', '.join(missing)} not installed; as root run: {APT_INSTALL}")


def project_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def runtime_requirements() -> list[str]:
    return list(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])


def sh(argv: Sequence[str | Path], *, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [str(a) for a in argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


@dataclass
class Timings:
    steps: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.steps[name] = round(time.monotonic() - started, 1)

    def line(self) -> str:
        total = sum(self.steps.values())
        return ", ".join(f"{k} {v:.1f}s" for k, v in self.steps.items()) + f"; total {total:.1f}s"


@dataclass(frozen=True)
class Store:
    """One disposable containers-storage directory shared by buildah and podman; `rm -rf` removes it all."""

    root: Path
    runroot: Path  # podman refuses a runroot longer than 50 characters (its sockets live there)

    def _storage(self) -> list[str]:
        return [
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "overlay",
        ]

    def buildah(self, *args: str | Path) -> list[str | Path]:
        return ["buildah", *self._storage(), *args]

    def podman(self, *args: str | Path) -> list[str | Path]:
        # runc, not crun: crun fails on this host's cgroup v1 "hybrid" layout ("cgroups in hybrid mode not
        # supported"). cgroupfs and a file events log because no systemd/journald runs here.
        return [
            "podman", *self._storage(), "--tmpdir", str(self.root / "tmp"), "--runtime", "runc",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args,
        ]  # fmt: skip

    def run(
        self,
        image: str,
        *argv: str,
        env: dict[str, str] | None = None,
        flags: Sequence[str] = (),
        network: str = "none",
    ) -> subprocess.CompletedProcess[str]:
        """Run as the image's USER like the chart runs it (RUN_FLAGS, then `flags`); podman passes none of
        the host's environment into the container."""
        env_flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        argv_ = self.podman("run", *RUN_FLAGS, f"--network={network}", *env_flags, *flags, image, *argv)
        return sh(argv_, timeout=120, check=False)

    def image_size(self, image: str) -> int:
        """Bytes of the image's layers as stored (uncompressed), what `podman images` shows."""
        return int(sh(self.podman("image", "inspect", "--format", "{{.Size}}", image)).stdout.strip())


@contextmanager
def scratch_store() -> Iterator[Store]:
    SCRATCH.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="store-", dir=SCRATCH))
    runroot = Path(tempfile.mkdtemp(prefix="cwj-run-", dir="/tmp"))  # short whatever the checkout's path
    try:
        yield Store(root, runroot)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runroot, ignore_errors=True)


def _target_download(*args: str | Path) -> list[str | Path]:
    """`pip download` of binary wheels for the image's platform, whatever platform this host is."""
    return [
        sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "download", "--only-binary=:all:",
        "--implementation", "cp", "--python-version", TARGET_PYTHON, *(f"--platform={p}" for p in TARGET_PLATFORMS),
        *args,
    ]  # fmt: skip


def refuse_stale_lock() -> None:
    in_step, why = lock.lock_matches_pyproject()
    if not in_step:
        raise RuntimeError(f"uv.lock does not match pyproject.toml ({why}); run `make lock`")
    stale = lock.stale_exports()
    if stale:
        raise RuntimeError(f"{', '.join(stale)} no longer match uv.lock; run `make lock`")


def build_wheels(dest: Path = WHEELS) -> list[str]:
    """The project wheel (built from a clean copy: a stale in-tree build/lib cannot leak into it) and the
    locked wheels for the image's platform, which pip checks against the lock's hashes as it downloads."""
    refuse_stale_lock()
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, src / name)
        for package in ("jobs", "lib"):
            shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        # the locked setuptools of this venv builds it, not an isolated, unlocked build environment
        pip_wheel = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "wheel", "--no-deps"]
        sh([*pip_wheel, "--no-build-isolation", "-w", dest, src])
    sh(_target_download("--require-hashes", "-r", LOCK, "-d", dest), timeout=600)
    return sorted(p.name for p in dest.glob("*.whl"))


def _mirror_lines() -> list[str]:
    """The host's own Debian mirror (deb822 sources), one `deb` line per suite plus the security suite."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    uris = re.findall(r"^URIs:\s*(\S+)", sources.read_text(), re.M) if sources.exists() else []
    main = next((u for u in uris if "security" not in u), "http://deb.debian.org/debian")
    security = next((u for u in uris if "security" in u), "http://deb.debian.org/debian-security")
    return [f"deb {main} {suite} main" for suite in BASE_SUITES] + [f"deb {security} bookworm-security main"]


def base_tarball(fresh: bool = False) -> Path:
    """mmdebstrap a minbase bookworm with Python 3.11; cached under .ctr/ (keyed by its recipe) for a week."""
    recipe = "|".join([*BASE_PACKAGES, *_mirror_lines()])
    tar = SCRATCH / f"base-bookworm-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}.tar"
    if tar.exists() and not fresh and time.time() - tar.stat().st_mtime < BASE_MAX_AGE_S:
        return tar
    SCRATCH.mkdir(exist_ok=True)
    partial = tar.with_suffix(".partial.tar")
    # mmdebstrap writes the tarball with empty apt caches and needs neither root-owned mounts nor a registry.
    # Nothing from the host's /etc/ssl or /usr/local/share/ca-certificates is copied in: the image trusts
    # Debian's ca-certificates only, never this machine's egress proxy CA.
    sh(
        ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
         "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
         "bookworm", partial, *_mirror_lines()],
        timeout=600,
    )  # fmt: skip
    partial.rename(tar)
    return tar


def import_base(store: Store, tar: Path) -> str:
    """Import the tarball as BASE_TAG and return its manifest digest (sha256:...), which the build pins."""
    # An imported tarball has no config; give it the PATH a registry base image would carry.
    path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    sh(store.podman("import", "--quiet", "--change", f"ENV {path}", tar, BASE_TAG), timeout=300)
    return image_digest(store, BASE_TAG)


def image_digest(store: Store, image: str) -> str:
    digest = sh(store.podman("image", "inspect", "--format", "{{.Digest}}", image)).stdout.strip()
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise RuntimeError(f"{image} has no manifest digest to pin (podman says {digest!r})")
    return digest


def build_image(store: Store, base_digest: str, tag: str = IMAGE_TAG, base: str = BASE_TAG) -> None:
    """`--isolation chroot`: the default OCI isolation runs crun, which fails on this host's hybrid
    cgroups. `unshare --net` runs the whole build with no network interface, proving it needs none.
    The Dockerfile's FROM is ${BASE_IMAGE}@${BASE_DIGEST}: the base is taken by digest here too."""
    revision = sh(["git", "-C", REPO, "rev-parse", "HEAD"], check=False).stdout.strip() or "unknown"
    sh(
        ["unshare", "--net", *store.buildah(
            "build", "--quiet", "--isolation", "chroot", "--pull=never", "--layers=false",
            "--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"BASE_DIGEST={base_digest}",
            "--build-arg", f"VERSION={project_version()}",
            "--build-arg", f"REVISION={revision}",
            "--build-arg", f"CREATED={datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
            "--tag", tag, "--file", REPO / "Dockerfile", REPO,
        )],
        timeout=600,
    )  # fmt: skip


def build_all(store: Store, timings: Timings, fresh_base: bool = False) -> str:
    """Wheels, base, image; returns the base's digest the image was built FROM."""
    with timings.step("wheels"):
        build_wheels()
    with timings.step("base (mmdebstrap)"):
        tar = base_tarball(fresh_base)
    with timings.step("base import"):
        digest = import_base(store, tar)
    with timings.step("buildah build"):
        build_image(store, digest)
    return digest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.container.build", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["wheels", "image"])
    parser.add_argument("--fresh-base", action="store_true", help="rebuild the cached base tarball")
    args = parser.parse_args(argv)
    if args.what == "wheels":
        print("\n".join(build_wheels()))
        return 0
    try:
        require_tools()
    except ToolMissing as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 2
    timings = Timings()
    out = SCRATCH / f"coder-wi-jobs-{project_version()}.oci.tar"
    with scratch_store() as store:
        build_all(store, timings, args.fresh_base)
        size = store.image_size(IMAGE_TAG)
        with timings.step("export"):
            out.unlink(missing_ok=True)
            sh(store.buildah("push", "--quiet", IMAGE_TAG, f"oci-archive:{out}:coder-wi-jobs:{project_version()}"))
    print(f"{out}\nimage size {size} bytes ({size / 1e6:.1f} MB)\n{timings.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
