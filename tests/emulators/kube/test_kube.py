"""The Kubernetes emulator through the official Python client, configured only by KUBECONFIG."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
import requests
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.conftest import Control
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


def test_create_get_delete_namespace(core: client.CoreV1Api, platform: Platform) -> None:
    make_ns(core, "ameide-ws-alice", team="a")
    got = core.read_namespace("ameide-ws-alice")
    assert got.metadata.labels == {"team": "a", "kubernetes.io/metadata.name": "ameide-ws-alice"}
    assert got.status.phase == "Active"
    deleted = json.loads(core.delete_namespace("ameide-ws-alice", _preload_content=False).data)
    assert deleted["status"]["phase"] == "Terminating"  # the real API answers with the object being finalized
    platform.clock.advance(platform.kube.settings["namespace_cleanup_seconds"])  # the namespace controller's turn
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
    with pytest.raises(ApiException) as info:  # serviceaccount/storage/token.go: the ServiceAccount must exist
        core.create_namespaced_service_account_token("workspace", "ameide-ws-bob", body)
    assert json.loads(info.value.body)["message"] == 'serviceaccounts "workspace" not found'
    core.create_namespaced_service_account(
        "ameide-ws-bob", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="workspace"))
    )
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


def test_discovery_lists_batch_v1_cronjobs_and_jobs(platform: Platform) -> None:
    api = config.new_client_from_config(config_file=platform.env()["KUBECONFIG"])
    groups = client.ApisApi(api).get_api_versions()
    assert [(g.name, g.preferred_version.group_version) for g in groups.groups] == [
        ("batch", "batch/v1"),
        ("rbac.authorization.k8s.io", "rbac.authorization.k8s.io/v1"),  # rbac.py
        ("authorization.k8s.io", "authorization.k8s.io/v1"),  # SubjectAccessReview (authz.py)
    ]
    group = client.BatchApi(api).get_api_group()
    assert group.name == "batch" and [v.group_version for v in group.versions] == ["batch/v1"]
    resources = client.BatchV1Api(api).get_api_resources()
    cronjobs, jobs = resources.resources
    assert (cronjobs.name, cronjobs.kind, cronjobs.namespaced) == ("cronjobs", "CronJob", True)
    assert (jobs.name, jobs.kind, jobs.namespaced) == ("jobs", "Job", True)
    for resource in (cronjobs, jobs):  # no verb advertised that answers 405
        assert "create" in resource.verbs and "delete" not in resource.verbs


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


def test_cronjob_create_refuses_an_empty_protobuf_body_other_media_types_and_unsupported_verbs(
    platform: Platform,
) -> None:
    url = f"{platform.kube.url}/apis/batch/v1/namespaces/{platform.baseline.jobs_namespace}/cronjobs"
    auth = {"Authorization": f"Bearer {platform.kube.token}"}
    r = requests.post(
        url,
        data=b"k8s\x00",
        headers={**auth, "Content-Type": "application/vnd.kubernetes.protobuf"},
        verify=str(platform.ca_path),
        timeout=10,
    )
    # protobuf.go Serializer.Decode: the magic alone is "empty body"; rest.go transformDecodeError wraps it
    assert (r.status_code, r.json()["reason"]) == (400, "BadRequest")
    assert r.json()["message"] == (
        "the object provided is unrecognized (must be of type CronJob): empty body (6b387300)"
    )
    r = requests.post(url, data=b"x", headers={**auth, "Content-Type": "text/plain"}, verify=str(platform.ca_path))
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


# ---- namespace deletion: Terminating, finalizers, the namespace controller ---------------------------------


def status_of(info: pytest.ExceptionInfo[ApiException]) -> tuple[int, str, str]:
    body = json.loads(info.value.body)
    return info.value.status, body["reason"], body["message"]


def new_sa(name: str, **annotations: str) -> client.V1ServiceAccount:
    return client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name, annotations=annotations or None))


def test_namespace_delete_is_terminating_until_the_controller_removes_the_kubernetes_finalizer_storage_go(
    core: client.CoreV1Api, platform: Platform
) -> None:
    make_ns(core, "ws-t")
    core.create_namespaced_service_account("ws-t", new_sa("workspace"))
    core.create_namespaced_config_map("ws-t", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    first = json.loads(core.delete_namespace("ws-t", _preload_content=False).data)
    assert first["metadata"]["deletionTimestamp"] and first["status"]["phase"] == "Terminating"
    assert first["spec"]["finalizers"] == ["kubernetes"]
    # still listed and gettable, with its content, and a second DELETE is 200 with the object
    assert core.read_namespace("ws-t").status.phase == "Terminating"
    listed = {n.metadata.name: n for n in core.list_namespace().items}
    assert listed["ws-t"].metadata.deletion_timestamp is not None
    assert [s.metadata.name for s in core.list_namespaced_service_account("ws-t").items] == ["default", "workspace"]
    again = json.loads(core.delete_namespace("ws-t", _preload_content=False).data)
    assert again["metadata"]["deletionTimestamp"] == first["metadata"]["deletionTimestamp"]
    platform.clock.advance(4.9)
    assert core.read_namespace("ws-t").status.phase == "Terminating"
    platform.clock.advance(0.2)  # namespace_cleanup_seconds (5) after deletionTimestamp: content, then namespace
    with pytest.raises(ApiException) as info:
        core.read_namespace("ws-t")
    assert status_of(info) == (404, "NotFound", 'namespaces "ws-t" not found')
    assert "ws-t" not in {n.metadata.name for n in core.list_namespace().items}
    assert core.list_namespaced_service_account("ws-t").items == []  # an empty list, as the real store answers
    assert platform.kube.objects["configmaps"] == {}


def test_creating_in_a_terminating_namespace_is_403_namespace_lifecycle_admission(
    core: client.CoreV1Api, platform: Platform
) -> None:
    make_ns(core, "ws-gone")
    core.delete_namespace("ws-gone")
    with pytest.raises(ApiException) as info:
        core.create_namespaced_service_account("ws-gone", new_sa("workspace"))
    assert status_of(info) == (
        403,
        "Forbidden",
        'serviceaccounts "workspace" is forbidden: unable to create new content in namespace ws-gone '
        "because it is being terminated",
    )
    cause = json.loads(info.value.body)["details"]["causes"][0]
    assert cause == {
        "reason": "NamespaceTerminating",
        "message": "namespace ws-gone is being terminated",
        "field": "metadata.namespace",
    }
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("ws-gone", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    assert status_of(info)[:2] == (403, "Forbidden") and 'configmaps "c" is forbidden' in status_of(info)[2]
    with pytest.raises(ApiException) as info:
        core.create_namespaced_service_account("no-such-ns", new_sa("workspace"))
    assert status_of(info) == (404, "NotFound", 'namespaces "no-such-ns" not found')


def test_a_custom_finalizer_holds_the_namespace_until_a_merge_patch_removes_it(
    core: client.CoreV1Api, platform: Platform
) -> None:
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name="ws-held", finalizers=["example.com/hold"]))
    )
    core.delete_namespace("ws-held")
    platform.clock.advance(60)
    held = core.read_namespace("ws-held")
    assert held.status.phase == "Terminating" and held.spec.finalizers == []  # the controller's part is done
    merge = "application/merge-patch+json"
    with pytest.raises(ApiException) as info:  # ValidateObjectMetaUpdate: no new finalizers while deleting
        core.patch_namespace("ws-held", {"metadata": {"finalizers": ["a.example.com/x"]}}, _content_type=merge)
    assert info.value.status == 422 and "no new finalizers can be added" in status_of(info)[2]
    gone = core.patch_namespace("ws-held", {"metadata": {"finalizers": None}}, _content_type=merge)
    assert gone.metadata.finalizers is None  # answered with the object as written, then purged
    with pytest.raises(ApiException) as info:
        core.read_namespace("ws-held")
    assert info.value.status == 404


def test_finalize_subresource_replaces_spec_finalizers_and_releases_the_namespace(
    core: client.CoreV1Api, platform: Platform
) -> None:
    make_ns(core, "ws-fin")
    ns = core.read_namespace("ws-fin")
    ns.spec.finalizers = ["kubernetes", "example.com/spec-hold"]
    core.replace_namespace_finalize("ws-fin", ns)
    core.delete_namespace("ws-fin")
    platform.clock.advance(10)
    held = core.read_namespace("ws-fin")
    assert held.spec.finalizers == ["example.com/spec-hold"] and held.status.phase == "Terminating"
    held.metadata.resource_version = "1"  # stale: the store's optimistic lock
    with pytest.raises(ApiException) as info:
        core.replace_namespace_finalize("ws-fin", held)
    assert status_of(info)[:2] == (409, "Conflict")
    held = core.read_namespace("ws-fin")
    held.spec.finalizers = []
    assert core.replace_namespace_finalize("ws-fin", held).status.phase == "Terminating"
    assert "ws-fin" not in {n.metadata.name for n in core.list_namespace().items}


def test_immortal_namespaces_may_not_be_deleted_namespace_lifecycle_admission(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as info:
        core.delete_namespace("kube-system")
    assert status_of(info) == (
        403,
        "Forbidden",
        'namespaces "kube-system" is forbidden: this namespace may not be deleted',
    )


def test_a_namespace_without_finalizers_goes_on_the_next_request(core: client.CoreV1Api, platform: Platform) -> None:
    make_ns(core, "ws-bare")
    ns = core.read_namespace("ws-bare")
    ns.spec.finalizers = []
    core.replace_namespace_finalize("ws-bare", ns)
    core.delete_namespace("ws-bare")
    with pytest.raises(ApiException):
        core.read_namespace("ws-bare")


def test_namespace_cleanup_seconds_is_a_setting(control: Control, core: client.CoreV1Api) -> None:
    assert control.configure("kube", namespace_cleanup_seconds=0)["namespace_cleanup_seconds"] == 0
    make_ns(core, "ws-quick")
    core.delete_namespace("ws-quick")
    assert "ws-quick" not in {n.metadata.name for n in core.list_namespace().items}
    with pytest.raises(requests.HTTPError):
        control.configure("kube", bogus=1)


def test_namespace_field_selectors_are_name_and_phase_only_conversion_go(
    core: client.CoreV1Api, platform: Platform
) -> None:
    make_ns(core, "ws-a")
    make_ns(core, "ws-b")
    core.delete_namespace("ws-b")
    assert [n.metadata.name for n in core.list_namespace(field_selector="status.phase=Terminating").items] == ["ws-b"]
    assert [n.metadata.name for n in core.list_namespace(field_selector="metadata.name==ws-a").items] == ["ws-a"]
    with pytest.raises(ApiException) as info:
        core.list_namespace(field_selector="spec.finalizers=kubernetes")
    assert status_of(info) == (400, "BadRequest", "field label not supported: spec.finalizers")


# ---- ServiceAccounts ----------------------------------------------------------------------------------------


def test_service_account_create_get_conflict_and_stamps(core: client.CoreV1Api) -> None:
    make_ns(core, "ws-sa")
    created = core.create_namespaced_service_account(
        "ws-sa", new_sa("workspace", **{"azure.workload.identity/client-id": "cid-1"})
    )
    assert created.metadata.uid and created.metadata.creation_timestamp and created.metadata.namespace == "ws-sa"
    got = core.read_namespaced_service_account("workspace", "ws-sa")
    assert got.metadata.annotations == {"azure.workload.identity/client-id": "cid-1"}
    assert int(got.metadata.resource_version) > int(core.read_namespace("ws-sa").metadata.resource_version)
    with pytest.raises(ApiException) as info:
        core.create_namespaced_service_account("ws-sa", new_sa("workspace"))
    assert status_of(info) == (409, "AlreadyExists", 'serviceaccounts "workspace" already exists')
    with pytest.raises(ApiException) as info:
        core.read_namespaced_service_account("nobody", "ws-sa")
    assert status_of(info) == (404, "NotFound", 'serviceaccounts "nobody" not found')
    with pytest.raises(ApiException) as info:
        core.create_namespaced_service_account("ws-sa", new_sa("Not_Valid"))
    assert info.value.status == 422 and "RFC 1123 subdomain" in status_of(info)[2]
    deleted = core.delete_namespaced_service_account("workspace", "ws-sa")
    assert deleted.metadata.uid == created.metadata.uid  # ReturnDeletedObject: the ServiceAccount itself
    with pytest.raises(ApiException) as info:
        core.delete_namespaced_service_account("workspace", "ws-sa")
    assert info.value.status == 404


def test_service_account_cluster_list_with_field_and_label_selectors_and_paging(core: client.CoreV1Api) -> None:
    for i in range(7):
        make_ns(core, f"ws-{i}")
        core.create_namespaced_service_account(
            f"ws-{i}",
            client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="workspace", labels={"n": str(i % 2)})),
        )

    def listed(**kwargs: object) -> list[str]:
        return [
            f"{s.metadata.namespace}/{s.metadata.name}"
            for s in core.list_service_account_for_all_namespaces(**kwargs).items
        ]

    assert listed(field_selector="metadata.name=workspace") == [f"ws-{i}/workspace" for i in range(7)]
    assert listed(field_selector="metadata.name==workspace,metadata.namespace=ws-3") == ["ws-3/workspace"]
    assert "ws-3/workspace" not in listed(field_selector="metadata.name!=default,metadata.namespace!=ws-3")
    assert listed(label_selector="n=1") == ["ws-1/workspace", "ws-3/workspace", "ws-5/workspace"]
    assert "default/default" in listed()  # every namespace has its "default" ServiceAccount
    seen, token = [], None
    while True:
        page = core.list_service_account_for_all_namespaces(
            field_selector="metadata.name=workspace", limit=3, _continue=token
        )
        seen += [s.metadata.namespace for s in page.items]
        assert page.metadata.remaining_item_count is None  # not computed for a filtered list
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"ws-{i}" for i in range(7)]
    with pytest.raises(ApiException) as info:
        core.list_service_account_for_all_namespaces(limit=1, _continue="garbage!")
    assert status_of(info)[:2] == (410, "Expired")
    with pytest.raises(ApiException) as info:  # runtime.DefaultMetaV1FieldSelectorConversion
        core.list_service_account_for_all_namespaces(field_selector="spec.automountServiceAccountToken=true")
    assert status_of(info) == (
        400,
        "BadRequest",
        '"spec.automountServiceAccountToken" is not a known field selector: only "metadata.name", "metadata.namespace"',
    )
    with pytest.raises(ApiException) as info:
        core.list_service_account_for_all_namespaces(field_selector="metadata.name")
    assert status_of(info)[:2] == (400, "BadRequest")
    assert [
        s.metadata.name
        for s in core.list_namespaced_service_account("ws-2", field_selector="metadata.name=workspace").items
    ] == ["workspace"]


def test_service_account_patch_merge_and_strategic_annotations(core: client.CoreV1Api) -> None:
    make_ns(core, "ws-p")
    core.create_namespaced_service_account("ws-p", new_sa("workspace", a="1", b="2"))
    merged = core.patch_namespaced_service_account(
        "workspace",
        "ws-p",
        {"metadata": {"annotations": {"a": None, "azure.workload.identity/client-id": "cid-2"}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.annotations == {"b": "2", "azure.workload.identity/client-id": "cid-2"}
    smp = core.patch_namespaced_service_account(
        "workspace",
        "ws-p",
        {"metadata": {"labels": {"x": "y"}, "annotations": {"b": None}}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert smp.metadata.labels == {"x": "y"} and smp.metadata.annotations == {
        "azure.workload.identity/client-id": "cid-2"
    }
    assert int(smp.metadata.resource_version) > int(merged.metadata.resource_version)
    with pytest.raises(ApiException) as info:  # a resourceVersion in the patch is a precondition
        core.patch_namespaced_service_account(
            "workspace",
            "ws-p",
            {"metadata": {"resourceVersion": merged.metadata.resource_version, "labels": None}},
            _content_type="application/merge-patch+json",
        )
    assert status_of(info)[:2] == (409, "Conflict")
    with pytest.raises(ApiException) as info:  # the client's default, json-patch, is not modelled
        core.patch_namespaced_service_account("workspace", "ws-p", [{"op": "remove", "path": "/metadata/labels"}])
    assert info.value.status == 415


def test_service_account_replace_checks_the_resource_version_store_go(core: client.CoreV1Api) -> None:
    make_ns(core, "ws-r")
    sa = core.create_namespaced_service_account("ws-r", new_sa("workspace", a="1"))
    sa.metadata.annotations = {"a": "2"}
    replaced = core.replace_namespaced_service_account("workspace", "ws-r", sa)
    assert replaced.metadata.annotations == {"a": "2"} and replaced.metadata.uid == sa.metadata.uid
    with pytest.raises(ApiException) as info:  # sa still carries the old resourceVersion
        core.replace_namespaced_service_account("workspace", "ws-r", sa)
    assert status_of(info) == (
        409,
        "Conflict",
        'Operation cannot be fulfilled on serviceaccounts "workspace": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )


# ---- ConfigMaps ---------------------------------------------------------------------------------------------


def a_config_map(name: str = "fic-relocations", **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"app": "cwj"}), data=data or None)


def test_config_map_create_replace_with_optimistic_concurrency_list_delete(
    core: client.CoreV1Api, platform: Platform
) -> None:
    ns = platform.baseline.jobs_namespace
    created = core.create_namespaced_config_map(ns, a_config_map(k="v1"))
    first, second = (
        core.read_namespaced_config_map("fic-relocations", ns),
        core.read_namespaced_config_map("fic-relocations", ns),
    )
    first.data = {"k": "v2"}
    core.replace_namespaced_config_map("fic-relocations", ns, first)
    second.data = {"k": "v3"}
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("fic-relocations", ns, second)
    assert status_of(info) == (
        409,
        "Conflict",
        'Operation cannot be fulfilled on configmaps "fic-relocations": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )
    assert core.read_namespaced_config_map("fic-relocations", ns).data == {"k": "v2"}
    assert (
        core.read_namespaced_config_map("fic-relocations", ns).metadata.creation_timestamp
        == created.metadata.creation_timestamp
    )
    with pytest.raises(ApiException) as info:  # no create on update
        core.replace_namespaced_config_map("other", ns, a_config_map("other"))
    assert status_of(info) == (404, "NotFound", 'configmaps "other" not found')
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, a_config_map())
    assert status_of(info) == (409, "AlreadyExists", 'configmaps "fic-relocations" already exists')
    core.create_namespaced_config_map(ns, a_config_map("b-second"))
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector="app=cwj").items] == [
        "b-second",
        "fic-relocations",
    ]
    assert core.delete_namespaced_config_map("b-second", ns)["status"] == "Success"  # a Status, not the object
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns).items] == ["fic-relocations"]


def test_config_map_size_and_key_validation_validate_config_map(core: client.CoreV1Api, platform: Platform) -> None:
    ns = platform.baseline.jobs_namespace
    core.create_namespaced_config_map(ns, a_config_map("exact", a="x" * (1024 * 1024)))  # exactly 1 MiB is fine
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, a_config_map("big", a="x" * (512 * 1024), b="y" * (512 * 1024 + 1)))
    status, reason, message = status_of(info)
    assert (status, reason) == (422, "Invalid")
    assert message == 'ConfigMap "big" is invalid: []: Too long: must have at most 1048576 bytes'
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, a_config_map("keys", **{"bad key": "1"}))
    assert status_of(info)[2].startswith(
        'ConfigMap "keys" is invalid: data[bad key]: Invalid value: "bad key": a valid config key'
    )
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, a_config_map("long", **{"k" * 254: "1"}))
    assert "must be no more than 253 characters" in status_of(info)[2]
    cm = core.read_namespaced_config_map("exact", ns)
    cm.data = {"a": "x" * (1024 * 1024 + 1)}
    with pytest.raises(ApiException) as info:  # the limit holds on replace too
        core.replace_namespaced_config_map("exact", ns, cm)
    assert info.value.status == 422


def test_discovery_lists_core_resources_with_their_verbs(platform: Platform) -> None:
    api = config.new_client_from_config(config_file=platform.env()["KUBECONFIG"])
    resources = {r.name: r for r in client.CoreV1Api(api).get_api_resources().resources}
    assert set(resources["serviceaccounts"].verbs) == {"create", "delete", "get", "list", "patch", "update"}
    assert set(resources["configmaps"].verbs) == {"create", "delete", "get", "list", "patch", "update"}
    assert resources["namespaces/finalize"].verbs == ["update"]
