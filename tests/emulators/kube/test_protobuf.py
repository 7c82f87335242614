"""The protobuf body decoder (protobuf.py, protoschema.py) on bytes real kubectl 1.37.1 sent (fixtures/, captured
by fixtures/capture_kubectl.py), on hand-encoded messages for the JSON forms kubectl's creates do not carry
(Time, MicroTime, IntOrString), and through the emulator over HTTPS."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.emulators.kube import protobuf as pb
from tests.emulators.kube import protoschema as ps
from tests.emulators.platform import Platform

FIXTURES = Path(__file__).parent / "fixtures" / "kubectl-1.37.1"
# The vendored generated.proto folders under tests/api_specs/ (each must be read by the decoder's schema).
VENDORED = (
    "kubernetes/k8s.io/api/core/v1",
    "kubernetes/k8s.io/api/batch/v1",
    "kubernetes/k8s.io/api/rbac/v1",
    "kubernetes/k8s.io/api/authentication/v1",
    "kubernetes/k8s.io/api/scheduling/v1alpha3",
    "kubernetes/k8s.io/apimachinery/pkg/apis/meta/v1",
    "kubernetes/k8s.io/apimachinery/pkg/runtime",
    "kubernetes/k8s.io/apimachinery/pkg/runtime/schema",
    "kubernetes/k8s.io/apimachinery/pkg/util/intstr",
    "kubernetes/k8s.io/apimachinery/pkg/api/resource",
)
PROTOBUF = "application/vnd.kubernetes.protobuf"


# ---- a minimal encoder for hand-built messages (the wire format, protobuf.dev "Encoding") -----------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative ints are 10-byte two's complement varints
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def vi(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return pb.MAGIC + ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, raw) + ld(3, "") + ld(4, "")


# ---- the schema --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", VENDORED)
def test_every_vendored_proto_file_is_in_the_schema(folder: str) -> None:
    messages = ps.parse_file((ps.API_SPECS / folder / "generated.proto").read_text())
    assert set(messages) <= set(ps.load())
    assert messages or folder.endswith("runtime/schema")  # imported by the others; it defines no message


def test_the_schema_refuses_constructs_it_does_not_decode() -> None:
    with pytest.raises(ValueError, match="unexpected line"):
        ps.parse_file('syntax = "proto2";\npackage a;\nmessage M {\n  oneof x {\n  }\n}\n')
    with pytest.raises(ValueError, match="unexpected line outside"):
        ps.parse_file('syntax = "proto2";\npackage a;\nenum E {\n  A = 0;\n}\n')


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_int64_varints_decode_to_the_value_encoded(value: int) -> None:
    ((number, wire, raw),) = ps.fields(vi(3, value))
    assert (number, wire, ps.scalar("int64", wire, raw)) == (3, ps.VARINT, value)


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_int32_varints_decode_to_the_value_encoded(value: int) -> None:
    ((_, wire, raw),) = ps.fields(vi(1, value))
    assert ps.scalar("int32", wire, raw) == value


# ---- bytes kubectl sent --------------------------------------------------------------------------------------


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.pb").read_bytes()


def test_kubectl_create_namespace_decodes_to_the_json_kubectl_would_send() -> None:
    assert pb.decode(fixture("namespace"), ("v1", "Namespace")) == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "capture-ns", "generation": 0},  # non-pointer zero kept: protobuf.py "Not modelled"
        "spec": {},
        "status": {},
    }


def test_kubectl_create_secret_from_file_decodes_data_to_base64() -> None:
    secret = pb.decode(fixture("secret"), ("v1", "Secret"))
    assert secret["metadata"]["name"] == "capture-secret" and secret["metadata"]["namespace"] == "coder-wi-jobs"
    assert secret["data"] == {"token": base64.b64encode(b"not-a-secret-fixture-value\n").decode()}
    assert "stringData" not in secret and "type" not in secret  # kubectl sent none; the server defaults Opaque


def test_kubectl_create_job_from_cronjob_decodes_owner_quantities_and_inline_volume_source() -> None:
    job = pb.decode(fixture("job"), ("batch/v1", "Job"))
    assert (job["kind"], job["apiVersion"], job["metadata"]["name"]) == ("Job", "batch/v1", "capture-1")
    (owner,) = job["metadata"]["ownerReferences"]
    assert {k: owner[k] for k in ("apiVersion", "kind", "name", "controller")} == {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": "capture",
        "controller": True,
    }
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]  # VolumeSource is inline in JSON
    (container,) = pod["containers"]
    assert container["resources"] == {"limits": {"cpu": "100m", "memory": "64Mi"}}  # Quantity -> string
    assert (container["args"], container["env"]) == (["true"], [{"name": "A", "value": "b"}])
    assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"


# ---- JSON forms of the special types -------------------------------------------------------------------------


def test_time_micro_time_and_int_or_string_take_their_json_forms() -> None:
    time = ld(6, vi(1, 1764633600)) + ld(7, b"")  # firstTimestamp 2025-12-02; lastTimestamp the zero Time
    micro = ld(10, vi(1, 1764633600) + vi(2, 123_456_789))
    event = pb.to_json("k8s.io.api.core.v1.Event", ld(1, ld(1, "e")) + time + micro)
    assert event["firstTimestamp"] == "2025-12-02T00:00:00Z" and "lastTimestamp" not in event
    assert event["eventTime"] == "2025-12-02T00:00:00.123456Z"
    named = pb.to_json("k8s.io.api.core.v1.ServicePort", vi(3, 80) + ld(4, vi(1, 1) + ld(3, "http")))
    numbered = pb.to_json("k8s.io.api.core.v1.ServicePort", vi(3, 80) + ld(4, vi(1, 0) + vi(2, 8080)))
    assert (named["targetPort"], numbered["targetPort"]) == ("http", 8080)


def test_durations_print_as_go_does() -> None:
    cases = {90 * 10**9: "1m30s", 3600 * 10**9: "1h0m0s", 1_500_000: "1.5ms", 0: "0s", 2 * 10**9: "2s"}
    assert {n: pb._duration({"duration": n}) for n in cases} == cases


# ---- what does not decode: the apiserver's 400 texts -----------------------------------------------------------


def test_a_body_without_the_magic_is_unrecognized_with_its_hex_summary() -> None:
    with pytest.raises(pb.DecodeError) as info:
        pb.decode(b'{"kind":"Namespace"}', ("v1", "Namespace"))
    assert str(info.value) == (
        "the object provided is unrecognized (must be of type Namespace): provided data does not appear to be a "
        "protobuf message, expected prefix [107, 56, 115, 0] (7b226b696e64223a224e616d657370616365227d)"
    )


def test_a_truncated_body_is_unexpected_eof() -> None:
    with pytest.raises(pb.DecodeError, match=r"must be of type Job\): unexpected EOF \(6b387300"):
        pb.decode(fixture("job")[:200], ("batch/v1", "Job"))


def test_an_unregistered_kind_cannot_be_handled() -> None:
    with pytest.raises(pb.DecodeError) as info:
        pb.decode(envelope("v1", "Widget", ld(1, ld(1, "w"))), ("v1", "Namespace"))
    assert str(info.value) == (
        'Widget in version "v1" cannot be handled as a Namespace: no kind "Widget" is registered for version "v1" '
        'in scheme "pkg/api/legacyscheme/scheme.go:30"'
    )


def test_an_envelope_without_kind_takes_the_urls(platform: Platform) -> None:
    """copyKindDefaults: the handler's kind fills an empty one."""
    assert pb.decode(envelope("", "", ld(1, ld(1, "n"))), ("v1", "Namespace"))["kind"] == "Namespace"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/namespaces", ("v1", "Namespace")),
        ("/api/v1/namespaces/a/secrets", ("v1", "Secret")),
        ("/api/v1/namespaces/a/serviceaccounts/b/token", ("authentication.k8s.io/v1", "TokenRequest")),
        ("/apis/batch/v1/namespaces/a/jobs", ("batch/v1", "Job")),
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles/x", ("rbac.authorization.k8s.io/v1", "ClusterRole")),
    ],
)
def test_the_url_names_the_type_a_write_takes(path: str, expected: tuple[str, str]) -> None:
    assert pb.expected_type(path) == expected


# ---- through the emulator ---------------------------------------------------------------------------------------


def post(platform: Platform, path: str, body: bytes, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or platform.kube.token}", "Content-Type": PROTOBUF}
    return requests.post(platform.kube.url + path, data=body, headers=headers, verify=str(platform.ca_path), timeout=10)


def test_the_emulator_creates_from_kubectls_protobuf_and_answers_json(platform: Platform) -> None:
    r = post(platform, "/api/v1/namespaces", fixture("namespace"))
    assert r.status_code == 201 and r.headers["Content-Type"].startswith("application/json")
    assert r.json()["metadata"]["name"] == "capture-ns" and r.json()["status"]["phase"] == "Active"
    r = post(platform, "/api/v1/namespaces/coder-wi-jobs/secrets", fixture("secret"))
    assert r.status_code == 201 and r.json()["type"] == "Opaque"
    assert base64.b64decode(r.json()["data"]["token"]) == b"not-a-secret-fixture-value\n"


def test_the_emulator_answers_400_status_for_a_body_that_does_not_decode(platform: Platform) -> None:
    r = post(platform, "/api/v1/namespaces", envelope("v1", "Widget", b""))
    assert r.status_code == 400
    assert (r.json()["kind"], r.json()["reason"]) == ("Status", "BadRequest")
    assert r.json()["message"].startswith('Widget in version "v1" cannot be handled as a Namespace: no kind')
    assert "capture-ns" not in platform.kube.namespaces


def test_authentication_comes_before_decoding(platform: Platform) -> None:
    assert post(platform, "/api/v1/namespaces", b"garbage", token="wrong").status_code == 401
