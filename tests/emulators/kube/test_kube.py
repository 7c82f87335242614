"""The Kubernetes emulator through the official Python client, configured only by KUBECONFIG."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
import requests
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.emulators.core import HttpError
from tests.emulators.kube.emulator import parse_selector, selector_matches
from tests.emulators.platform import Platform


@pytest.fixture
def core(platform: Platform) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=platform.env()["KUBECONFIG"]))


def make_ns(core: client.CoreV1Api, name: str, **labels: str) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))


def test_kubeconfig_client_lists_baseline_namespaces(core: client.CoreV1Api, platform: Platform) -> None:
    names = [n.metadata.name for n in core.list_namespace().items]
    assert names == sorted(names)
    assert {"default", "kube-system", platform.baseline.jobs_namespace} <= set(names)


def test_create_get_delete_namespace(core: client.CoreV1Api) -> None:
    make_ns(core, "ameide-ws-alice", team="a")
    got = core.read_namespace("ameide-ws-alice")
    assert got.metadata.labels == {"team": "a", "kubernetes.io/metadata.name": "ameide-ws-alice"}
    assert got.status.phase == "Active"
    deleted = json.loads(core.delete_namespace("ameide-ws-alice", _preload_content=False).data)
    assert deleted["status"]["phase"] == "Terminating"  # the real API answers with the object being finalized
    with pytest.raises(ApiException) as info:
        core.read_namespace("ameide-ws-alice")
    assert info.value.status == 404
    assert json.loads(info.value.body)["reason"] == "NotFound"


def test_create_conflict_and_invalid_name(core: client.CoreV1Api) -> None:
    make_ns(core, "dup")
    with pytest.raises(ApiException) as info:
        make_ns(core, "dup")
    assert info.value.status == 409 and json.loads(info.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as info:
        make_ns(core, "Bad_Name")
    assert info.value.status == 422 and "RFC 1123" in json.loads(info.value.body)["message"]


def test_paging_with_limit_and_continue_visits_each_namespace_once(core: client.CoreV1Api) -> None:
    for i in range(23):
        make_ns(core, f"ameide-ws-{i:02d}")
    seen, token, pages = [], None, 0
    while True:
        page = core.list_namespace(limit=5, _continue=token)
        pages += 1
        seen += [n.metadata.name for n in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count > 0
    assert pages >= 6 and len(seen) == len(set(seen)) == len(core.list_namespace().items)


def test_bad_continue_token_is_410_expired(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as info:
        core.list_namespace(limit=1, _continue="not-a-token!")
    assert info.value.status == 410 and json.loads(info.value.body)["reason"] == "Expired"


def test_label_selectors(core: client.CoreV1Api) -> None:
    make_ns(core, "ws-a", **{"coder.com/workspace": "true", "tier": "gold"})
    make_ns(core, "ws-b", **{"coder.com/workspace": "true", "tier": "silver"})
    make_ns(core, "other", tier="gold")

    def names(selector: str) -> list[str]:
        return [n.metadata.name for n in core.list_namespace(label_selector=selector).items]

    assert names("coder.com/workspace=true") == ["ws-a", "ws-b"]
    assert names("coder.com/workspace=true,tier!=gold") == ["ws-b"]
    assert names("tier in (gold)") == ["other", "ws-a"]
    assert "ws-a" not in names("!coder.com/workspace")
    assert names("tier notin (gold,silver),coder.com/workspace") == []


def test_selector_parser_rejects_garbage_with_400(platform: Platform) -> None:
    with pytest.raises(ValueError):
        parse_selector("a in b")
    r = requests.get(
        f"{platform.kube.url}/api/v1/namespaces",
        params={"labelSelector": "a in b"},
        headers={"Authorization": f"Bearer {platform.kube.token}"},
        verify=str(platform.ca_path),
        timeout=10,
    )
    assert r.status_code == 400 and r.json()["kind"] == "Status"
    assert selector_matches(parse_selector("a=1,b"), {"a": "1", "b": ""})


def test_wrong_token_is_401_status(platform: Platform) -> None:
    r = requests.get(
        f"{platform.kube.url}/api/v1/namespaces",
        headers={"Authorization": "Bearer wrong"},
        verify=str(platform.ca_path),
        timeout=10,
    )
    assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"


def test_token_request_issues_a_service_account_jwt_from_the_cluster_issuer(
    core: client.CoreV1Api, platform: Platform
) -> None:
    make_ns(core, "ameide-ws-bob")
    body = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=["api://AzureADTokenExchange"], expiration_seconds=3600)
    )
    tr = core.create_namespaced_service_account_token("workspace", "ameide-ws-bob", body)
    claims = jwt.decode(tr.status.token, options={"verify_signature": False})
    assert claims["iss"] == platform.baseline.oidc_issuer
    assert claims["sub"] == "system:serviceaccount:ameide-ws-bob:workspace"
    assert claims["aud"] == ["api://AzureADTokenExchange"]
    header = json.loads(base64.urlsafe_b64decode(tr.status.token.split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    with pytest.raises(ApiException) as info:
        core.create_namespaced_service_account_token("workspace", "missing-ns", body)
    assert info.value.status == 404


# ---- batch/v1 CronJobs (batch.py) -----------------------------------------------------------------------


def a_cronjob(name: str = "rel-fic-reconcile") -> client.V1CronJob:
    pod = client.V1PodSpec(
        restart_policy="Never", containers=[client.V1Container(name="job", image="img:1", command=["fic-reconcile"])]
    )
    job = client.V1JobTemplateSpec(spec=client.V1JobSpec(template=client.V1PodTemplateSpec(spec=pod)))
    spec = client.V1CronJobSpec(schedule="*/5 * * * *", job_template=job)
    return client.V1CronJob(api_version="batch/v1", kind="CronJob", metadata=client.V1ObjectMeta(name=name), spec=spec)


@pytest.fixture
def batch(platform: Platform) -> client.BatchV1Api:
    return client.BatchV1Api(config.new_client_from_config(config_file=platform.env()["KUBECONFIG"]))


def test_discovery_lists_batch_v1_cronjobs(platform: Platform) -> None:
    api = config.new_client_from_config(config_file=platform.env()["KUBECONFIG"])
    groups = client.ApisApi(api).get_api_versions()
    assert [(g.name, g.preferred_version.group_version) for g in groups.groups] == [("batch", "batch/v1")]
    group = client.BatchApi(api).get_api_group()
    assert group.name == "batch" and [v.group_version for v in group.versions] == ["batch/v1"]
    resources = client.BatchV1Api(api).get_api_resources()
    (cronjobs,) = resources.resources
    assert (cronjobs.name, cronjobs.kind, cronjobs.namespaced) == ("cronjobs", "CronJob", True)
    assert "create" in cronjobs.verbs and "delete" not in cronjobs.verbs  # no verb advertised that answers 405


def test_cronjob_create_get_list_through_the_python_client(batch: client.BatchV1Api, platform: Platform) -> None:
    ns = platform.baseline.jobs_namespace
    created = batch.create_namespaced_cron_job(ns, a_cronjob())
    assert created.metadata.uid and created.metadata.namespace == ns and created.metadata.resource_version
    got = batch.read_namespaced_cron_job("rel-fic-reconcile", ns)
    assert got.metadata.uid == created.metadata.uid
    assert got.spec.job_template.spec.template.spec.containers[0].command == ["fic-reconcile"]
    batch.create_namespaced_cron_job(ns, a_cronjob("rel-keyvault-sync"))
    names = [c.metadata.name for c in batch.list_namespaced_cron_job(ns).items]
    assert names == ["rel-fic-reconcile", "rel-keyvault-sync"]
    assert batch.list_namespaced_cron_job("default").items == []


def test_cronjob_errors_are_kubernetes_statuses(batch: client.BatchV1Api, platform: Platform) -> None:
    ns = platform.baseline.jobs_namespace
    cases = [
        (lambda: batch.read_namespaced_cron_job("missing", ns), 404, "NotFound"),
        (lambda: batch.create_namespaced_cron_job("no-such-ns", a_cronjob()), 404, "NotFound"),
        (lambda: batch.create_namespaced_cron_job(ns, a_cronjob("x" * 53)), 422, "Invalid"),
    ]
    batch.create_namespaced_cron_job(ns, a_cronjob())
    cases.append((lambda: batch.create_namespaced_cron_job(ns, a_cronjob()), 409, "AlreadyExists"))
    for call, status, reason in cases:
        with pytest.raises(ApiException) as info:
            call()
        assert (info.value.status, json.loads(info.value.body)["reason"]) == (status, reason)


def test_cronjob_create_refuses_protobuf_and_unsupported_verbs(platform: Platform) -> None:
    url = f"{platform.kube.url}/apis/batch/v1/namespaces/{platform.baseline.jobs_namespace}/cronjobs"
    auth = {"Authorization": f"Bearer {platform.kube.token}"}
    r = requests.post(
        url,
        data=b"k8s\x00",
        headers={**auth, "Content-Type": "application/vnd.kubernetes.protobuf"},
        verify=str(platform.ca_path),
        timeout=10,
    )
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"
    r = requests.delete(f"{url}/rel-fic-reconcile", headers=auth, verify=str(platform.ca_path), timeout=10)
    assert r.status_code == 405 and r.json()["kind"] == "Status"
    r = requests.get(url, headers={"Authorization": "Bearer wrong"}, verify=str(platform.ca_path), timeout=10)
    assert r.status_code == 401


def test_seeded_cronjob_is_stamped_and_gone_after_reset(platform: Platform) -> None:
    ns = platform.baseline.jobs_namespace
    stored = platform.kube.add_cronjob(
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "rel-x", "namespace": ns}, "spec": {}}
    )
    assert stored["metadata"]["uid"] and stored["metadata"]["creationTimestamp"]
    with pytest.raises(HttpError):  # not a CronJob: refused like the create endpoint refuses it
        platform.kube.add_cronjob({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns}})
    platform.reset()
    assert platform.kube.cronjobs == {}
