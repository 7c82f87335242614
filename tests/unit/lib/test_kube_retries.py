"""The Kubernetes client's retries stay inside --retry-deadline: an API server's 429/503 with a long Retry-After
is waited for by lib/retry (capped, within the deadline), never by urllib3 under the client, whose default
Retry(3) sleeps whatever Retry-After says, up to six hours a time (found by the fault row
crb-delete-503-retry-after-an-hour, tests/faults/test_fic_reconcile_binding_delete_faults.py: the run hung).

Against a loopback HTTP server that answers like an API server shutting down (staging/src/k8s.io/apiserver/pkg/
server/filters/waitgroup.go: 503 ServiceUnavailable, Retry-After), through a kubeconfig, as a job on a laptop."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib import limits
from lib.clients.kube import KubeError, api_client
from lib.clients.kube_rbac import delete_cluster_role_binding, list_cluster_role_bindings
from tests.receivers import Answer, Received, serve

STATUS = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "ServiceUnavailable", "code": 503,
          "message": "apiserver is shutting down"}  # fmt: skip


@pytest.fixture
def bounded() -> Iterator[None]:
    limits.set_limits(limits.Limits(request_timeout=2, retry_deadline=2))
    yield
    limits.set_limits(limits.Limits())


def _kubeconfig(tmp_path: Path, server: str) -> dict[str, str]:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": server}}],
            "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        })
    )  # fmt: skip
    return {"KUBECONFIG": str(path)}


@pytest.mark.parametrize("status", [503, 429])
def test_a_long_retry_after_ends_the_call_within_the_retry_deadline(tmp_path: Path, bounded: None, status: int) -> None:
    seen: list[Received] = []

    def answer(request: Received) -> Answer:
        seen.append(request)
        body = {**STATUS, "code": status}
        return Answer(status, json.dumps(body).encode(), {"Content-Type": "application/json", "Retry-After": "5"})

    with serve(answer) as url:
        api = api_client(_kubeconfig(tmp_path, url))
        started = time.monotonic()
        with pytest.raises(KubeError) as raised:
            delete_cluster_role_binding(api, "coder-ws-use-mi-x", "7")
        took = time.monotonic() - started
    assert raised.value.status == status and "apiserver is shutting down" in str(raised.value)
    assert took < 4, f"{took:.1f} s: someone slept the Retry-After past the 2 s retry deadline"
    assert len(seen) == 1  # 5 s asked, 2 s allowed: no second attempt, and none hidden under the client


def test_a_short_retry_after_is_still_honoured_by_the_jobs_own_retry(tmp_path: Path, bounded: None) -> None:
    seen: list[float] = []
    empty = {"kind": "ClusterRoleBindingList", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {},
             "items": []}  # fmt: skip

    def answer(request: Received) -> Answer:
        seen.append(time.monotonic())
        if len(seen) == 1:
            return Answer(503, json.dumps(STATUS).encode(), {"Content-Type": "application/json", "Retry-After": "1"})
        return Answer(200, json.dumps(empty).encode(), {"Content-Type": "application/json"})

    with serve(answer) as url:
        assert list_cluster_role_bindings(api_client(_kubeconfig(tmp_path, url)), "a=b") == []
    assert len(seen) == 2 and seen[1] - seen[0] >= 0.9
