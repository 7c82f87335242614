"""The Kubernetes emulator through the official Python client, configured only by KUBECONFIG."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
import requests
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.emulators.kube import parse_selector, selector_matches
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
