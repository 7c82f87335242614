"""The fault kinds the fault matrix (tests/faults/) needs beyond status/count/delay: `skip` (the fault applies
only after the first N matching requests, so "page 1 answers, page 2 fails"), `body` (a 200 whose body is
not the JSON it claims to be) and `drop` (the connection closes unanswered, before or after the handler ran).
All through the control API, like every other fault."""

from __future__ import annotations

import json
import os

import pytest
import requests

from lib.clients.azure_auth import azure_credential
from tests.conftest import Control
from tests.emulators.core import Fault
from tests.emulators.platform import Platform


def _kube(platform: Platform, path: str, method: str = "GET", **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {platform.kube.token}"}
    url = f"{platform.kube.url}/api/v1/namespaces{path}"
    return requests.request(method, url, headers=headers, verify=str(platform.ca_path), timeout=10, **kwargs)  # type: ignore[arg-type]


def test_skip_lets_the_first_requests_through_then_fails_in_the_services_envelope(
    platform: Platform, control: Control
) -> None:
    control.fault("kube", "namespaces.list", status=500, skip=1, count=2)
    first = _kube(platform, "", params={"limit": "2"})
    assert first.status_code == 200 and first.json()["metadata"]["continue"]
    second = _kube(platform, "", params={"limit": "2", "continue": first.json()["metadata"]["continue"]})
    assert second.status_code == 500
    assert second.json()["kind"] == "Status" and second.json()["code"] == 500  # kube's own error envelope
    assert [_kube(platform, "").status_code for _ in range(2)] == [500, 200]  # count=2, then cleared


def test_skip_counts_only_matching_requests(platform: Platform, control: Control) -> None:
    control.fault("kube", "namespaces.get", status=403, skip=1, match="default")
    assert _kube(platform, "/kube-system").status_code == 200  # does not match: not counted
    assert _kube(platform, "/default").status_code == 200  # the one skipped
    assert _kube(platform, "/default").status_code == 403


def test_body_answers_malformed_json_without_running_the_handler(platform: Platform, control: Control) -> None:
    control.fault("kube", "namespaces.create", body='{"kind": "Namespace", "metadata": {')
    r = _kube(platform, "", "POST", json={"metadata": {"name": "never-created"}})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    try:
        json.loads(r.text)
        raise AssertionError("the injected body must not parse")
    except ValueError:
        pass
    assert _kube(platform, "/never-created").status_code == 404
    assert control.requests("kube", "namespaces.create")["log"][-1]["status"] == 200


def test_body_with_a_status_and_retry_after(platform: Platform, control: Control) -> None:
    # faults apply after authentication: present a token Entra issued, as any ARM client would
    token = azure_credential(os.environ).get_token("https://management.azure.com/.default").token
    control.fault("arm", "*", status=503, body="<html>upstream gateway</html>", retry_after=2)
    group = f"{platform.arm.url}/subscriptions/{platform.baseline.subscription_id}/resourceGroups/rg-coder-wi"
    r = requests.get(
        f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
        params={"api-version": "2024-11-30"},
        headers={"Authorization": f"Bearer {token}"},
        verify=str(platform.ca_path),
        timeout=10,
    )
    assert (r.status_code, r.text, r.headers["Retry-After"]) == (503, "<html>upstream gateway</html>", "2")


def test_control_rejects_a_bad_skip_or_body(control: Control) -> None:
    for bad in ({"skip": -1}, {"skip": "1"}, {"skip": True}, {"body": {"not": "text"}}):
        r = control.session.post(f"{control.url}/faults", json={"service": "kube", **bad})
        assert r.status_code == 400, bad
        assert "skip" in r.json()["error"]["message"]


def test_drop_closes_the_connection_before_or_after_the_handler_ran(platform: Platform, control: Control) -> None:
    control.fault("kube", "namespaces.create", drop="request")
    try:
        _kube(platform, "", "POST", json={"metadata": {"name": "dropped-before"}})
        raise AssertionError("the connection must close without an answer")
    except requests.ConnectionError:
        pass
    assert _kube(platform, "/dropped-before").status_code == 404  # the server never saw it
    control.fault("kube", "namespaces.create", drop="response")
    try:
        _kube(platform, "", "POST", json={"metadata": {"name": "dropped-after"}})
        raise AssertionError("the connection must close without an answer")
    except requests.ConnectionError:
        pass
    assert _kube(platform, "/dropped-after").status_code == 200  # it acted; only the answer was lost
    assert [e["status"] for e in control.requests("kube", "namespaces.create")["log"]] == [0, 0]


def test_before_lands_another_clients_request_first_so_the_handler_answers_the_race(
    platform: Platform, control: Control
) -> None:
    # someone deletes the ClusterRole while our DELETE is in flight: the handler's own 404, not an injected one
    roles = f"{platform.kube.url}/apis/rbac.authorization.k8s.io/v1/clusterroles"
    auth = {"headers": {"Authorization": f"Bearer {platform.kube.token}"}, "verify": str(platform.ca_path)}
    body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "raced"}}
    assert requests.post(roles, json=body, timeout=10, **auth).status_code == 201  # type: ignore[arg-type]

    def someone_deletes_it() -> None:
        requests.delete(f"{roles}/raced", timeout=10, **auth)  # type: ignore[arg-type]

    platform.faults.add(Fault("kube", "rbac.delete", match="/raced", before=someone_deletes_it))
    ours = requests.delete(f"{roles}/raced", timeout=10, **auth)  # type: ignore[arg-type]
    assert ours.status_code == 404, ours.text
    assert ours.json()["message"] == 'clusterroles.rbac.authorization.k8s.io "raced" not found'
    assert [e["status"] for e in control.requests("kube", "rbac.delete")["log"]] == [200, 404]  # theirs, then ours


def test_before_needs_a_count_and_is_not_offered_over_the_control_api(platform: Platform, control: Control) -> None:
    with pytest.raises(ValueError, match="needs a count"):
        platform.faults.add(Fault("kube", "namespaces.delete", count=None, before=lambda: None))
    r = control.session.post(f"{control.url}/faults", json={"service": "kube", "before": "anything"})
    assert r.status_code == 400 and "unknown ['before']" in r.json()["error"]["message"]
