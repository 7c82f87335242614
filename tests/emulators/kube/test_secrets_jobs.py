"""core/v1 Secrets and batch/v1 Jobs in the Kubernetes emulator through the official Python client (JSON), as
kube-apiserver serves them (sources in objects.py and batch.py)."""

from __future__ import annotations

import base64
import json

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.emulators.platform import Platform


@pytest.fixture
def api(platform: Platform) -> client.ApiClient:
    return config.new_client_from_config(config_file=platform.env()["KUBECONFIG"])


def failure(call: object) -> tuple[int, str, str]:
    with pytest.raises(ApiException) as info:
        call()  # type: ignore[operator]
    body = json.loads(info.value.body)
    return info.value.status, body["reason"], body["message"]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_secret_string_data_is_merged_into_data_and_never_stored(api: client.ApiClient, platform: Platform) -> None:
    core, ns = client.CoreV1Api(api), platform.baseline.jobs_namespace
    body = {"metadata": {"name": "s"}, "data": {"a": b64("old"), "b": b64("kept")}, "stringData": {"a": "new"}}
    created = core.create_namespaced_secret(ns, body)
    assert created.type == "Opaque" and created.string_data is None
    assert created.data == {"a": b64("new"), "b": b64("kept")}  # stringData wins over data
    assert core.read_namespaced_secret("s", ns).data == created.data
    assert [s.metadata.name for s in core.list_namespaced_secret(ns).items] == ["s"]
    replaced = core.replace_namespaced_secret("s", ns, {"metadata": {"name": "s"}, "stringData": {"c": "x"}})
    assert replaced.data == {"c": b64("x")}
    deleted = core.delete_namespaced_secret("s", ns)
    assert deleted["status"] == "Success"  # a Status, not the Secret (no ReturnDeletedObject)
    assert failure(lambda: core.read_namespaced_secret("s", ns))[:2] == (404, "NotFound")


def test_secret_validation_answers_as_the_apiserver(api: client.ApiClient, platform: Platform) -> None:
    core, ns = client.CoreV1Api(api), platform.baseline.jobs_namespace
    status, reason, message = failure(
        lambda: core.create_namespaced_secret(ns, {"metadata": {"name": "k"}, "stringData": {"bad/key": "v"}})
    )
    assert (status, reason) == (422, "Invalid") and 'Secret "k" is invalid: data[bad/key]: Invalid value' in message
    big = {"metadata": {"name": "big"}, "stringData": {"a": "x" * (1024 * 1024 + 1)}}
    assert failure(lambda: core.create_namespaced_secret(ns, big))[2].endswith("must have at most 1048576 bytes")
    status, reason, message = failure(
        lambda: core.create_namespaced_secret(ns, {"metadata": {"name": "b"}, "data": {"a": "!!"}})
    )
    assert (status, reason) == (400, "BadRequest")
    assert message == 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 0'
    core.create_namespaced_secret(ns, {"metadata": {"name": "dup"}})
    assert failure(lambda: core.create_namespaced_secret(ns, {"metadata": {"name": "dup"}}))[:2] == (
        409,
        "AlreadyExists",
    )
    assert failure(lambda: core.create_namespaced_secret("nope", {"metadata": {"name": "x"}}))[:2] == (404, "NotFound")


SPEC = {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}


def job(name: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels or {}}, "spec": SPEC}


def test_jobs_create_get_list_by_label_and_go_with_their_namespace(api: client.ApiClient, platform: Platform) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "jobs-here"}})
    batch.create_namespaced_job("jobs-here", job("a", {"app.kubernetes.io/instance": "rel"}))
    batch.create_namespaced_job("jobs-here", job("b"))
    assert batch.read_namespaced_job("a", "jobs-here").metadata.uid
    listed = batch.list_namespaced_job("jobs-here", label_selector="app.kubernetes.io/instance=rel")
    assert [j.metadata.name for j in listed.items] == ["a"]
    assert failure(lambda: batch.create_namespaced_job("jobs-here", job("a")))[:2] == (409, "AlreadyExists")
    status, _, message = failure(lambda: batch.read_namespaced_job("zz", "jobs-here"))
    assert (status, message) == (404, 'jobs.batch "zz" not found')
    wrong = {**job("c"), "kind": "CronJob"}
    assert failure(lambda: batch.create_namespaced_job("jobs-here", wrong))[:2] == (400, "BadRequest")
    core.delete_namespace("jobs-here")
    platform.clock.advance(platform.kube.settings["namespace_cleanup_seconds"])
    core.list_namespace()  # the namespace controller runs on a request
    assert not [key for key in platform.kube.jobs if key[0] == "jobs-here"]
