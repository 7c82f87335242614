"""What the README and the chart's NOTES tell an SRE to run, run with real kubectl 1.37.1 against the Kubernetes
emulator. kubectl sends built-in objects as protobuf (`Content-Type: application/vnd.kubernetes.protobuf`), which
the emulator decodes as kube-apiserver does (tests/emulators/kube/protobuf.py). The commands come out of
README.md verbatim and run under bash with the platform's kubeconfig, as an SRE's shell runs them."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

from kubernetes import client as k8s

from lib.clients.kube import api_client, core_api
from tests.conftest import run_job
from tests.emulators.platform import Platform
from tests.helm.chart import FULL, cronjob, template

README = Path(__file__).resolve().parents[2] / "README.md"
NS = "coder-wi-jobs"  # the README's namespace (also the baseline's jobs namespace)


def readme_block(first_line: str) -> list[str]:
    """The commands of the README's ```sh block that contains `first_line` (continuation lines joined)."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if first_line in b.splitlines()]
    return block.replace("\\\n", " ").splitlines()


def shell(kubectl: Path, platform: Platform, cwd: Path, script: str) -> subprocess.CompletedProcess[str]:
    """bash with `kubectl` on PATH (the real 1.37.1 binary) and the platform's kubeconfig, nothing else."""
    bin_dir = cwd / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "kubectl").exists():
        (bin_dir / "kubectl").symlink_to(kubectl)
    env = {"KUBECONFIG": platform.env()["KUBECONFIG"], "HOME": str(cwd), "PATH": f"{bin_dir}:/usr/bin:/bin"}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def batch_api() -> k8s.BatchV1Api:
    return k8s.BatchV1Api(api_client(os.environ))


def fresh_cluster(platform: Platform) -> None:
    """The baseline holds the jobs' namespace already; a cluster the README installs into does not."""
    api = core_api(os.environ)
    api.delete_namespace(NS)
    platform.clock.advance(platform.kube.settings["namespace_cleanup_seconds"])
    assert NS not in [n.metadata.name for n in api.list_namespace().items]  # the namespace controller finished


def test_readme_install_commands_create_the_namespace_and_token_secrets(
    kubectl: Path, platform: Platform, tmp_path: Path
) -> None:
    fresh_cluster(platform)
    values = {"bootstrap-token": "fixture-bootstrap-value\n", "expiry-check-token": "fixture-expiry-value"}
    for name, value in values.items():
        (tmp_path / name).write_text(value)
    commands = [line for line in readme_block("kubectl create namespace coder-wi-jobs") if line.startswith("kubectl ")]
    assert len(commands) == 3  # the namespace and the two Secrets; helm is not run here
    done = shell(kubectl, platform, tmp_path, "\n".join(commands))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "namespace/coder-wi-jobs created",
        "secret/coder-bootstrap-token created",
        "secret/coder-expiry-check-token created",
    ]
    api = core_api(os.environ)
    assert api.read_namespace(NS).status.phase == "Active"
    for secret, file in (
        ("coder-bootstrap-token", "bootstrap-token"),
        ("coder-expiry-check-token", "expiry-check-token"),
    ):
        stored = api.read_namespaced_secret(secret, NS)
        assert stored.type == "Opaque" and set(stored.data) == {"token"}
        assert base64.b64decode(stored.data["token"]).decode() == values[file]  # byte for byte, newline kept
    # kubectl reads them back too (a GET answered as JSON, which kubectl accepts)
    done = shell(kubectl, platform, tmp_path, f"kubectl -n {NS} get secret coder-bootstrap-token -o json")
    assert done.returncode == 0, done.stderr
    assert base64.b64decode(json.loads(done.stdout)["data"]["token"]) == b"fixture-bootstrap-value\n"
    # a second run is refused as the apiserver refuses it, not re-created
    again = shell(kubectl, platform, tmp_path, commands[1])
    assert again.returncode != 0 and 'secrets "coder-bootstrap-token" already exists' in again.stderr


def test_namespace_and_workspace_sa_made_by_kubectl_are_planned_by_fic_reconcile(
    kubectl: Path, platform: Platform, env: dict[str, str], tmp_path: Path
) -> None:
    ns = "ameide-ws-kubectl"
    done = shell(kubectl, platform, tmp_path, f"kubectl create ns {ns}\nkubectl create sa workspace -n {ns}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"namespace/{ns} created", "serviceaccount/workspace created"]
    proc = run_job("fic-reconcile", "--dry-run", "--output", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    planned = [a for a in plan["actions"] if a.get("namespace") == ns]
    assert [a["kind"] for a in planned] == ["create"], plan["actions"]
    assert planned[0]["fic"] == f"coder-ws-{ns}"


def test_readme_run_a_job_by_hand_creates_the_job_from_the_rendered_cronjob(
    kubectl: Path, platform: Platform, home: Path, tmp_path: Path
) -> None:
    docs = template(home, "-f", str(FULL), release="coder-wi-jobs", namespace=NS)
    rendered = cronjob(docs, "fic-reconcile", release="coder-wi-jobs")
    # through the API as JSON (the Python client); `kubectl create -f` would first fetch /openapi/v3 to validate,
    # which the emulator does not serve (404)
    batch_api().create_namespaced_cron_job(NS, rendered)
    stored = batch_api().read_namespaced_cron_job("coder-wi-jobs-fic-reconcile", NS)
    lines = readme_block("job=fic-reconcile-manual-$(date +%s)")
    create = [line for line in lines if " create job " in line]
    done = shell(kubectl, platform, tmp_path, "\n".join([lines[0], *create, f'kubectl -n {NS} get job "$job"']))
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert re.fullmatch(r"job\.batch/fic-reconcile-manual-\d+ created", out[0]), out
    assert out[1].split() == ["NAME", "AGE"] and out[2].startswith("fic-reconcile-manual-"), out
    (job,) = batch_api().list_namespaced_job(NS).items
    assert job.metadata.owner_references == [
        k8s.V1OwnerReference(
            api_version="batch/v1",
            kind="CronJob",
            name="coder-wi-jobs-fic-reconcile",
            uid=stored.metadata.uid,
            controller=True,
        )
    ]
    assert job.metadata.annotations["cronjob.kubernetes.io/instantiate"] == "manual"
    raw = platform.kube.jobs[(NS, job.metadata.name)]
    template_spec = rendered["spec"]["jobTemplate"]["spec"]
    assert_contains(raw["spec"]["template"], template_spec["template"])  # the CronJob's pod, field by field
    for key in ("backoffLimit", "activeDeadlineSeconds", "podFailurePolicy"):
        assert raw["spec"][key] == template_spec[key]
    # labelled as the chart's NOTES list "all runs of this release"
    listed = shell(kubectl, platform, tmp_path, f"kubectl -n {NS} get jobs -l app.kubernetes.io/instance=coder-wi-jobs")
    assert listed.returncode == 0 and job.metadata.name in listed.stdout, listed.stderr


def test_kubectl_wait_and_logs_cannot_be_rehearsed_no_pod_runs(
    kubectl: Path, platform: Platform, tmp_path: Path
) -> None:
    """The emulator runs no Job controller: the README's `kubectl wait` times out and `kubectl logs` fails."""
    platform.kube.add_cronjob(
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj", "namespace": NS}, "spec": {}}
    )
    script = f"kubectl -n {NS} create job j1 --from=cronjob/cj"
    assert shell(kubectl, platform, tmp_path, script).returncode == 0
    wait = shell(kubectl, platform, tmp_path, f"kubectl -n {NS} wait job/j1 --for=condition=Complete --timeout=1s")
    assert wait.returncode != 0 and "timed out waiting for the condition on jobs/j1" in wait.stderr
    logs = shell(kubectl, platform, tmp_path, f"kubectl -n {NS} logs job/j1")  # it lists the Job's pods: no route
    assert logs.returncode != 0 and "the server could not find the requested resource" in logs.stderr
    assert platform.kube.jobs[(NS, "j1")]["status"] == {"active": 0, "succeeded": 0, "failed": 0}  # as sent


def assert_contains(actual: object, expected: object, path: str = "") -> None:
    """Every field of `expected` is in `actual` with the same value. A protobuf body also carries Go's non-pointer
    zero values (`stdin: false`), which the JSON path leaves out: protobuf.py, "Not modelled"."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            assert_contains(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_contains(a, e, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def test_kubectl_create_token_clusterrole_and_configmap_send_protobuf_the_emulator_decodes(
    kubectl: Path, platform: Platform, tmp_path: Path
) -> None:
    """The other creates tests/emulators/README.md names: a TokenRequest (authentication.k8s.io/v1), a ClusterRole
    (rbac.authorization.k8s.io/v1) and a ConfigMap, each body protobuf."""
    audience = "api://AzureADTokenExchange"
    script = f"kubectl -n {NS} create token coder-wi-jobs --duration=10m --audience={audience}"
    token = shell(kubectl, platform, tmp_path, script)
    assert token.returncode == 0, token.stderr
    payload = token.stdout.strip().split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == f"system:serviceaccount:{NS}:coder-wi-jobs"
    assert audience in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert claims["exp"] - claims["iat"] == 600  # --duration=10m: spec.expirationSeconds decoded as an int64
    script = (
        "kubectl create clusterrole kp-read --verb=get,list --resource=namespaces\n"
        f"kubectl -n {NS} create configmap kp --from-literal=a=b --from-literal=c="
    )
    done = shell(kubectl, platform, tmp_path, script)
    assert done.returncode == 0, done.stderr
    role = k8s.RbacAuthorizationV1Api(api_client(os.environ)).read_cluster_role("kp-read")
    assert [(r.verbs, r.resources, r.api_groups) for r in role.rules] == [(["get", "list"], ["namespaces"], [""])]
    assert core_api(os.environ).read_namespaced_config_map("kp", NS).data == {"a": "b", "c": ""}  # "" kept in maps
    kube_ops = [e["op"] for e in platform.log.entries("kube") if e["method"] == "POST"]
    assert kube_ops == ["tokenrequest.create", "rbac.create", "configmaps.create"]
