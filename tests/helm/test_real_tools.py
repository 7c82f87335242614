"""The rendered chart through two real tools: checkov 3.3.30 (security scan, offline) and kubectl 1.37.1
(`kubectl create job --from=cronjob/...` against the Kubernetes emulator serving the rendered CronJob)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.platform import Platform
from tests.helm.chart import FULL, cronjob, kinds, template
from tests.helm.checkov import CheckovUnavailable, checkov_bin, scan

# The only checks the chart fails on purpose; the reason sits on the resource (checkov.io/skipN annotations).
EXPECTED_SKIPS = {
    ("CKV_K8S_38", "CronJob.jobs.rel-fic-reconcile"),  # it calls the Kubernetes API (namespaces)
    ("CKV_K8S_35", "CronJob.jobs.rel-fic-reconcile"),  # pool ids from the shared Secret as env
    ("CKV_K8S_35", "CronJob.jobs.rel-token-expiry-check"),  # the webhook URL as env
    ("CKV_K8S_35", "CronJob.jobs.rel-coder-token-mint"),  # the webhook URL as env (--compromised reports there)
}


@pytest.fixture(scope="module")
def checkov() -> Path:
    try:
        return checkov_bin()
    except CheckovUnavailable as exc:  # never a skip: Done 3 needs the scan
        pytest.fail(f"checkov could not be installed: {exc}")


def rendered_file(home: Path, tmp_path: Path, *args: str) -> tuple[Path, list[dict[str, Any]]]:
    docs = template(home, *args)
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path, docs


def test_checkov_passes_the_full_chart_with_each_skip_explained(checkov: Path, home: Path, tmp_path: Path) -> None:
    path, docs = rendered_file(home, tmp_path, "-f", str(FULL))
    report = scan(path, "kubernetes")
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    skipped = report["results"]["skipped_checks"]
    assert {(c["check_id"], c["resource"]) for c in skipped} == EXPECTED_SKIPS
    for check in skipped:
        reason = check["check_result"]["suppress_comment"]
        assert len(reason) > 30 and reason != "No comment provided", check["check_id"]
    # Every workload and policy object was scanned (the PrometheusRule custom resource has no checks).
    scanned = {c["resource"].split(".")[0] for c in report["results"]["passed_checks"]}
    assert {"CronJob", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap"} <= scanned
    assert report["summary"]["passed"] > 300 and len(kinds(docs, "CronJob")) == 4


def test_checkov_passes_the_chart_with_the_fic_probe(checkov: Path, home: Path, tmp_path: Path) -> None:
    """The probe's ClusterRole (create on serviceaccounts/token, one name) fails no check and needs no new skip."""
    path, _ = rendered_file(home, tmp_path, "-f", str(FULL), "--set", "jobs.ficReconcile.probe.enabled=true")
    report = scan(path, "kubernetes")
    assert report["results"]["failed_checks"] == []
    assert {(c["check_id"], c["resource"]) for c in report["results"]["skipped_checks"]} == EXPECTED_SKIPS
    scanned = {c["resource"] for c in report["results"]["passed_checks"]}
    assert "ClusterRole.default.rel-fic-reconcile-probe-jobs" in scanned, sorted(scanned)


def test_checkov_passes_the_defaults(checkov: Path, home: Path, tmp_path: Path) -> None:
    path, docs = rendered_file(home, tmp_path)
    assert docs == []  # nothing is on until its values are given
    report = scan(path, "kubernetes")
    summary = report.get("summary", report)
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0


def test_checkov_catches_a_weakened_chart(checkov: Path, home: Path, tmp_path: Path) -> None:
    """The scan is not vacuous: the rendered chart with its image swapped for a tag (which the chart itself
    refuses to render) is reported."""
    docs = template(home, "-f", str(FULL))
    for cj in kinds(docs, "CronJob"):
        for c in cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]:
            c["image"] = c["image"].split("@")[0] + ":latest"
    path = tmp_path / "weakened.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    failed = {c["check_id"] for c in scan(path, "kubernetes")["results"]["failed_checks"]}
    assert "CKV_K8S_43" in failed  # image by digest


# ---- kubectl create job --from=cronjob -------------------------------------------------------------------------


def run_kubectl(kubectl: Path, platform: Platform, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with no kubeconfig at all: server, CA and token on the command line."""
    connection = ["-s", platform.kube.url, "--certificate-authority", str(platform.ca_path)]
    command = [str(kubectl), *connection, "--token", platform.kube.token, *args]
    env = {"KUBECONFIG": "/nonexistent", "HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_kubectl_create_job_from_the_rendered_cronjob(kubectl: Path, platform: Platform, home: Path) -> None:
    ns = platform.baseline.jobs_namespace
    docs = template(home, "-f", str(FULL), release="coder-wi-jobs", namespace=ns)
    rendered = cronjob(docs, "fic-reconcile", release="coder-wi-jobs")
    stored = platform.kube.add_cronjob(rendered)
    done = run_kubectl(
        kubectl,
        platform,
        home,
        "-n",
        ns,
        "create",
        "job",
        "manual-1",
        "--from=cronjob/coder-wi-jobs-fic-reconcile",
        "--dry-run=client",
        "-o",
        "yaml",
    )
    assert done.returncode == 0, done.stderr
    job = yaml.safe_load(done.stdout)
    assert (job["apiVersion"], job["kind"], job["metadata"]["name"]) == ("batch/v1", "Job", "manual-1")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "coder-wi-jobs-fic-reconcile",
            "uid": stored["metadata"]["uid"],
            "controller": True,
        }
    ]
    template_spec = rendered["spec"]["jobTemplate"]["spec"]
    assert job["spec"]["template"] == template_spec["template"]  # the same pod: image, env, security, volumes
    for key in ("backoffLimit", "activeDeadlineSeconds", "podFailurePolicy"):
        assert job["spec"][key] == template_spec[key]
    assert job["metadata"]["labels"] == rendered["spec"]["jobTemplate"]["metadata"]["labels"]
    # client-side dry run: kubectl read the CronJob and wrote nothing
    ops = [e["op"] for e in platform.log.entries("kube")]
    assert ops.count("cronjobs.get") == 1 and not [op for op in ops if op.endswith("create")]


def test_kubectl_reports_a_missing_cronjob(kubectl: Path, platform: Platform, home: Path) -> None:
    ns = platform.baseline.jobs_namespace
    done = run_kubectl(
        kubectl, platform, home, "-n", ns, "create", "job", "m", "--from=cronjob/nope", "--dry-run=client"
    )
    assert done.returncode != 0
    assert 'cronjobs.batch "nope" not found' in done.stderr
