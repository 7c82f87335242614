"""The image against the local platform: `fic-reconcile --dry-run` runs in the container the way the chart's
CronJob pod runs it, reaches the emulators, prints the plan, and writes nothing.

The pod is reproduced with podman: uid 10001, read-only root with only /tmp writable, all capabilities
dropped, only the env the chart gives the job, and the files a pod gets mounted read-only where AKS puts
them: the Workload Identity token at the webhook's path, the service-account token and cluster CA under
/var/run/secrets/kubernetes.io, and the platform's private CA as a mounted bundle named by
REQUESTS_CA_BUNDLE (the chart's extraVolumes/extraEnv). `--network=host` because the emulators listen on
the host's 127.0.0.1.

The API server is found through a mounted kubeconfig that names those service-account files (tokenFile,
certificate-authority), not through KUBERNETES_SERVICE_HOST: the kubernetes client's in-cluster loader
sends `Authorization: bearer <token>` (lower case, which the real API server accepts: the scheme is
case-insensitive, RFC 9110 §11.1), and tests/emulators/kube/emulator.py answers that with 401 so far.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from pathlib import Path

from kubernetes import client as k8s

from lib.clients.kube import core_api
from tests.conftest import Control
from tests.container.conftest import Image
from tests.emulators.platform import Platform

AZURE_TOKEN = "/var/run/secrets/azure/tokens/azure-identity-token"  # the AKS webhook's projected token path
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # where load_incluster_config looks
PLATFORM_CA = "/etc/ssl/platform/ca.pem"
KUBECONFIG = "/etc/kubeconfig/config"
# What the chart's fic-reconcile pod gets from its env and the pool Secret; everything else stays out.
POD_ENV = (
    "AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_IDS_JSON",
    "CWJ_ARM_ENDPOINT", "CWJ_ALLOW_CUSTOM_ARM_ENDPOINT", "CWJ_ARM_AUDIENCE", "CWJ_IDENTITY_RESOURCE_GROUP",
    "CWJ_OIDC_ISSUER", "CWJ_ISSUER_DISCOVERY_BASE",  # the emulated issuer's discovery document (issue 22 point 3)
)  # fmt: skip
WRITES = ("fic.put", "fic.delete", "identity.put", "identity.delete")


def _volume(src: Path | str, dest: Path, content: str | None = None) -> Path:
    """A file as the kubelet would project it: readable by the pod's uid (10001 is not the host's root)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        shutil.copyfile(src, dest)
    else:
        dest.write_text(content)
    dest.chmod(0o444)
    return dest


def pod_like(platform: Platform, env: dict[str, str], volumes: Path) -> tuple[dict[str, str], list[str]]:
    """(container env, podman mount flags) for fic-reconcile as the chart runs it."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "pod",
        "clusters": [
            {"name": "aks", "cluster": {"server": platform.kube.url, "certificate-authority": f"{SA_DIR}/ca.crt"}}
        ],
        "users": [{"name": "sa", "user": {"tokenFile": f"{SA_DIR}/token"}}],
        "contexts": [{"name": "pod", "context": {"cluster": "aks", "user": "sa"}}],
    }
    files = {
        AZURE_TOKEN: _volume(env["AZURE_FEDERATED_TOKEN_FILE"], volumes / "azure-identity-token"),
        f"{SA_DIR}/token": _volume("", volumes / "sa" / "token", platform.kube.token),
        f"{SA_DIR}/ca.crt": _volume(platform.ca_path, volumes / "sa" / "ca.crt"),
        f"{SA_DIR}/namespace": _volume("", volumes / "sa" / "namespace", "coder-wi-jobs"),
        PLATFORM_CA: _volume(platform.ca_path, volumes / "ca.pem"),
        KUBECONFIG: _volume("", volumes / "kubeconfig", json.dumps(kubeconfig)),
    }
    container_env = {key: env[key] for key in POD_ENV} | {
        "AZURE_FEDERATED_TOKEN_FILE": AZURE_TOKEN,
        "REQUESTS_CA_BUNDLE": PLATFORM_CA,
        "KUBECONFIG": KUBECONFIG,
    }
    mounts = [f"--volume={src}:{dest}:ro" for dest, src in files.items()]
    return container_env, mounts


def seed_namespaces(names: list[str]) -> None:
    api = core_api(os.environ)
    for name in names:
        api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))


def test_fic_reconcile_dry_run_in_the_container_prints_the_plan_and_writes_nothing(
    image: Image, platform: Platform, env: dict[str, str], control: Control, tmp_path: Path
) -> None:
    workspaces = ["ameide-ws-alice", "ameide-ws-bob", "ameide-ws-carol", "ameide-ws-dave"]
    seed_namespaces([*workspaces, "kube-system-extra"])  # the last is no workspace: no FIC for it
    container_env, mounts = pod_like(platform, env, tmp_path)
    control.clear_requests()

    done = image.run("fic-reconcile", "--dry-run", "--output", "json", env=container_env, flags=mounts, network="host")

    leaked = platform.leaked_secrets(done.stdout + done.stderr)
    assert leaked == 0, f"the container printed {leaked} secret value(s) the emulators issued (not shown here)"
    assert done.returncode == 0, done.stderr[-3000:]
    plan = json.loads(done.stdout)
    pool = [platform.baseline.pool_identity_name(i) for i in range(platform.baseline.pool_size)]
    expected = {(f"coder-ws-{ns}", ns, pool[zlib.crc32(ns.encode()) % len(pool)]) for ns in workspaces}
    assert plan["kind"] == "plan" and plan["refusal"] is None
    assert {a["kind"] for a in plan["actions"]} == {"create"}
    assert {(a["fic"], a["namespace"], a["identity"]) for a in plan["actions"]} == expected
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    assert (summary["event"], summary["dry_run"], summary["exit_code"]) == ("run.summary", True, 0)
    # It really read the platform from inside the container: Entra token exchange with the mounted
    # federated token, the pool's FICs from ARM, the namespaces with the service-account token ...
    assert control.count("entra", "token") >= 1
    assert control.count("arm", "fic.list") == len(pool)
    assert control.count("kube", "namespaces.list") >= 1
    assert plan["findings"] == []
    # ... and a dry run writes nothing.
    assert {op: control.count("arm", op) for op in WRITES} == dict.fromkeys(WRITES, 0)
    assert control.count("kube", "namespaces.create") == 0
