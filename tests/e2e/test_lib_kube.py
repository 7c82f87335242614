"""lib/clients/kube.py against the Kubernetes emulator over HTTPS with the KUBECONFIG the platform writes:
namespaces with their Terminating state, the cluster-wide ServiceAccount list by name, and a ConfigMap read and
written with optimistic concurrency; paging, retries and errors as one-line KubeErrors."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s

from lib.clients.kube import (
    ConfigMapData,
    KubeConflict,
    KubeError,
    NamespaceApi,
    NamespaceInfo,
    ServiceAccountInfo,
    api_client,
    core_api,
    list_namespaces,
    list_service_accounts,
    namespace_names,
    read_config_map,
    write_config_map,
)
from tests.conftest import Control
from tests.emulators.platform import Platform

CLIENT_ID = "azure.workload.identity/client-id"


@pytest.fixture
def api(platform: Platform) -> Any:
    return api_client({"KUBECONFIG": platform.env()["KUBECONFIG"]})


@pytest.fixture
def core(platform: Platform) -> k8s.CoreV1Api:
    return core_api({"KUBECONFIG": platform.env()["KUBECONFIG"]})


def workspace(core: k8s.CoreV1Api, ns: str, client_id: str | None = None, name: str = "workspace") -> None:
    if ns not in namespace_names(core):
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns, labels={"coder": "ws"})))
    annotations = {CLIENT_ID: client_id} if client_id else None
    core.create_namespaced_service_account(
        ns, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name=name, annotations=annotations))
    )


def test_list_namespaces_marks_terminating_ones_across_pages(api: Any, core: k8s.CoreV1Api) -> None:
    for i in range(7):
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=f"ws-{i}", labels={"coder": "ws"})))
    core.delete_namespace("ws-3")
    got = list_namespaces(api, "coder=ws", page_size=2)
    assert got == [NamespaceInfo(f"ws-{i}", i == 3) for i in range(7)]
    assert namespace_names(NamespaceApi(api), "coder=ws", page_size=3) == [f"ws-{i}" for i in range(7)]
    assert list_namespaces(NamespaceApi(api), "coder=ws") == got  # a NamespaceApi works too


def test_list_service_accounts_reads_every_page_of_one_name_cluster_wide(
    api: Any, core: k8s.CoreV1Api, control: Control
) -> None:
    for i in range(5):
        workspace(core, f"ws-{i}", f"cid-{i % 2}" if i != 4 else None)
    workspace(core, "ws-0", name="other")
    control.clear_requests()
    got = list_service_accounts(api, "workspace", page_size=2)
    assert [(s.namespace, s.name, s.annotation(CLIENT_ID)) for s in got] == [
        ("ws-0", "workspace", "cid-0"),
        ("ws-1", "workspace", "cid-1"),
        ("ws-2", "workspace", "cid-0"),
        ("ws-3", "workspace", "cid-1"),
        ("ws-4", "workspace", None),
    ]
    assert got[0] == ServiceAccountInfo("ws-0", "workspace", ((CLIENT_ID, "cid-0"),)) and hash(got[0])
    log = control.requests("kube", "serviceaccounts.list_all")["log"]
    assert len(log) == 3 and all("fieldSelector=metadata.name%3Dworkspace" in e["path"] for e in log)


def test_service_account_list_retries_a_503_and_restarts_on_410(
    api: Any, core: k8s.CoreV1Api, control: Control
) -> None:
    for i in range(4):
        workspace(core, f"ws-{i}", "cid")
    control.fault("kube", "serviceaccounts.list_all", status=503, count=1)
    control.fault("kube", "serviceaccounts.list_all", status=410, code="Expired", skip=1, count=1)
    assert len(list_service_accounts(api, "workspace", page_size=2)) == 4
    control.fault("kube", "serviceaccounts.list_all", status=403, code="Forbidden", message="no list", count=None)
    with pytest.raises(KubeError, match=r"^403 Forbidden: no list$"):
        list_service_accounts(api, "workspace")


def test_config_map_read_create_replace_and_conflicts(api: Any, platform: Platform) -> None:
    ns = platform.baseline.jobs_namespace
    assert read_config_map(api, ns, "fic-relocations") == ConfigMapData((), None)
    first = write_config_map(api, ns, "fic-relocations", {"b": "2", "a": "1"}, None, labels={"app": "cwj"})
    read = read_config_map(api, ns, "fic-relocations")
    assert read == ConfigMapData((("a", "1"), ("b", "2")), first)
    with pytest.raises(KubeConflict, match="already exists"):  # someone else created it first
        write_config_map(api, ns, "fic-relocations", {"a": "x"}, None)
    second = write_config_map(api, ns, "fic-relocations", {"a": "3"}, first)
    assert int(second) > int(first)
    with pytest.raises(KubeConflict, match="the object has been modified") as info:  # first is stale now
        write_config_map(api, ns, "fic-relocations", {"a": "4"}, first)
    assert info.value.status == 409
    assert read_config_map(api, ns, "fic-relocations") == ConfigMapData((("a", "3"),), second)
    with pytest.raises(KubeError, match=r"^422 Unprocessable Entity: .*must have at most 1048576 bytes$"):
        write_config_map(api, ns, "fic-relocations", {"a": "x" * (1024 * 1024 + 1)}, second)
    with pytest.raises(KubeError, match=r'^404 Not Found: namespaces "nowhere" not found$'):
        write_config_map(api, "nowhere", "fic-relocations", {}, None)


def test_config_map_writes_retry_429_and_reads_retry_5xx(api: Any, platform: Platform, control: Control) -> None:
    ns = platform.baseline.jobs_namespace
    control.fault("kube", "configmaps.create", status=429, retry_after=0, count=1)
    version = write_config_map(api, ns, "cm", {"k": "v"}, None)
    control.fault("kube", "configmaps.get", status=500, count=1)
    assert read_config_map(api, ns, "cm").resource_version == version
    assert [e["status"] for e in control.requests("kube", "configmaps.create")["log"]] == [429, 201]


def test_a_refused_connection_is_one_line(platform: Platform) -> None:
    config = k8s.Configuration()
    config.host = "https://127.0.0.1:9"  # nothing listens on the discard port
    api = k8s.ApiClient(config)
    with pytest.raises(KubeError) as info:
        read_config_map(api, "ns", "cm")
    assert "\n" not in str(info.value) and info.value.status is None
