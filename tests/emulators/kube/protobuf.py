"""Kubernetes protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`, what kubectl sends for
built-in kinds) decoded to the JSON object the same request would have carried as JSON, so every handler keeps
reading JSON.

Sources:
- k8s.io/apimachinery pkg/runtime/serializer/protobuf/protobuf.go (Serializer.Decode): the 4-byte magic
  `k8s\\x00`, then a runtime.Unknown {typeMeta{apiVersion, kind}, raw, contentEncoding, contentType} whose `raw`
  is the typed object; errors "empty data", "empty body", "provided data does not appear to be a protobuf
  message, expected prefix [107 56 115 0]".
- k8s.io/apimachinery pkg/runtime/error.go (notRegisteredErr): `no kind "K" is registered for version "G/V" in
  scheme "S"`; kube-apiserver's scheme is pkg/api/legacyscheme/scheme.go:30.
- k8s.io/apiserver pkg/endpoints/handlers/rest.go (transformDecodeError, summarizeData): a body that does not
  decode is 400 BadRequest `K in version "V" cannot be handled as a T: <error>` when the envelope named a kind,
  else `the object provided is unrecognized (must be of type T): <error> (<hex of the first 30 bytes> ...)`.
- The JSON forms (k8s.io/apimachinery): meta/v1 Time -> RFC 3339 seconds (time.go MarshalJSON; zero -> null),
  MicroTime -> RFC 3339 with 6 fractional digits, Duration -> Go's duration string, resource.Quantity -> its
  string, intstr.IntOrString -> int or string by `type`, RawExtension/FieldsV1 -> the embedded JSON, `bytes`
  (Secret.data values) -> base64 (encoding/json), a `+protobuf.nullable=true` wrapper (ExtraValue, Verbs) -> the
  plain list. Empty strings and absent fields are left out, as the JSON's `omitempty` does; empty messages stay
  (`spec: {}`, `emptyDir: {}`), as encoding/json writes structs.
Not modelled: non-pointer zero scalars (`hostNetwork: false`, `generation: 0`) are kept as sent, because the
.proto does not say which Go fields are pointers; the JSON path would leave most of them out. Responses stay
JSON (kubectl accepts it: its Accept header lists application/json second). Group/versions decoded: core/v1,
batch/v1, rbac.authorization.k8s.io/v1, authentication.k8s.io/v1 (the vendored files).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from tests.emulators.kube import protoschema as ps

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
SCHEME = "pkg/api/legacyscheme/scheme.go:30"
PACKAGES = {  # apiVersion -> the proto package of its kinds (the vendored generated.proto files)
    "v1": "k8s.io.api.core.v1",
    "batch/v1": "k8s.io.api.batch.v1",
    "rbac.authorization.k8s.io/v1": "k8s.io.api.rbac.v1",
    "authentication.k8s.io/v1": "k8s.io.api.authentication.v1",
}
META = "k8s.io.apimachinery.pkg.apis.meta.v1"
UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
# Go embedded structs (`json:""`): a field in protobuf, its fields promoted in JSON. The .proto does not mark them;
# this is every embedded field with a protobuf tag in kubernetes/api core, batch, rbac and authentication v1
# types.go (at the vendored commit): `awk '/^type .* struct/{t=$2} /^\t[A-Z][A-Za-z.]*[ \t]+`json:""/{print t}'`.
_CORE = "k8s.io.api.core.v1"
INLINE = frozenset(
    {
        (f"{_CORE}.Volume", "volumeSource"),
        (f"{_CORE}.PersistentVolumeSpec", "persistentVolumeSource"),
        (f"{_CORE}.Probe", "handler"),
        (f"{_CORE}.EphemeralContainer", "ephemeralContainerCommon"),
        *(
            (f"{_CORE}.{name}", "localObjectReference")
            for name in (
                "SecretProjection",
                "ConfigMapVolumeSource",
                "ConfigMapProjection",
                "ConfigMapKeySelector",
                "SecretKeySelector",
                "ConfigMapEnvSource",
                "SecretEnvSource",
            )
        ),
    }
)


class DecodeError(ValueError):
    """What kube-apiserver's create/update handler answers as 400 BadRequest (the message is its text)."""


def decode(body: bytes, expected: tuple[str, str]) -> dict[str, Any]:
    """A protobuf request body -> the JSON object (kind and apiVersion first). `expected` is the (apiVersion, kind)
    the URL's resource holds: it fills an envelope's empty apiVersion or kind (copyKindDefaults), and names the
    type in errors. Raises DecodeError."""
    expected_kind = expected[1]
    try:
        api_version, kind, raw = _envelope(body)
    except ps.ProtoError as exc:
        raise DecodeError(_unrecognized(expected_kind, str(exc), body)) from None
    api_version, kind = api_version or expected[0], kind or expected[1]
    version = api_version.rpartition("/")[2]
    package = PACKAGES.get(api_version)
    message = f"{package}.{kind}"
    if package is None or message not in ps.load():
        why = f'no kind "{kind}" is registered for version "{api_version}" in scheme "{SCHEME}"'
        raise DecodeError(f'{kind} in version "{version}" cannot be handled as a {expected_kind}: {why}')
    try:
        obj = to_json(message, raw)
    except ps.ProtoError as exc:
        raise DecodeError(f'{kind} in version "{version}" cannot be handled as a {expected_kind}: {exc}') from None
    return {"kind": kind, "apiVersion": api_version, **obj}


def _envelope(body: bytes) -> tuple[str, str, bytes]:
    if not body:
        raise ps.ProtoError("empty data")
    if not body.startswith(MAGIC):
        raise ps.ProtoError(f"provided data does not appear to be a protobuf message, expected prefix {list(MAGIC)}")
    if len(body) == len(MAGIC):
        raise ps.ProtoError("empty body")
    unknown = to_json(UNKNOWN, body[len(MAGIC) :], keep_bytes=True)
    type_meta = unknown.get("typeMeta") or {}
    raw = unknown.get("raw", b"")
    if unknown.get("contentEncoding"):  # protobuf.go only ever writes "" here
        raise ps.ProtoError(f"unsupported contentEncoding {unknown['contentEncoding']!r}")
    return str(type_meta.get("apiVersion", "")), str(type_meta.get("kind", "")), raw


def _unrecognized(expected_kind: str, why: str, body: bytes) -> str:
    summary = "<empty>" if not body else body[:30].hex() + (" ..." if len(body) > 30 else "")
    return f"the object provided is unrecognized (must be of type {expected_kind}): {why} ({summary})"


# ---- protobuf -> JSON ------------------------------------------------------------------------------------------


def to_json(message_name: str, data: bytes, keep_bytes: bool = False) -> dict[str, Any]:
    """The message's fields by JSON name; absent and empty-string fields left out, unknown field numbers skipped
    (as gogo's generated Unmarshal skips them)."""
    message = ps.load()[message_name]
    out: dict[str, Any] = {}
    for number, wire, value in ps.fields(data):
        field = message.fields.get(number)
        if field is None:
            continue
        if field.map_key is not None:
            key, item = _map_entry(field, value, keep_bytes)
            out.setdefault(field.name, {})[key] = item
        elif field.repeated:
            if field.type in ps.SCALARS and field.type not in ("string", "bytes") and wire == ps.LEN:
                assert isinstance(value, bytes)
                out.setdefault(field.name, []).extend(ps.packed(field.type, value))
            else:
                out.setdefault(field.name, []).append(_value(field.type, wire, value, keep_bytes))
        elif (message_name, field.name) in INLINE:
            out.update(_value(field.type, wire, value, keep_bytes))
        else:
            out[field.name] = _value(field.type, wire, value, keep_bytes)
    return {k: v for k, v in out.items() if v is not None and v != ""}


def _map_entry(field: ps.Field, value: int | bytes, keep_bytes: bool) -> tuple[str, Any]:
    if not isinstance(value, bytes):
        raise ps.ProtoError(f"proto: wrong wireType for map field {field.name}")
    key, item = "", None
    for number, wire, part in ps.fields(value):
        if number == 1:
            key = str(ps.scalar(field.map_key or "string", wire, part))
        elif number == 2:
            item = _value(field.type, wire, part, keep_bytes)
    if item is None:  # an entry without a value is the zero value
        item = "" if field.type in ("string", "bytes") else _value(field.type, ps.LEN, b"", keep_bytes)
    return key, item


def _value(type_name: str, wire: int, value: int | bytes, keep_bytes: bool) -> Any:
    if type_name in ps.SCALARS:
        item = ps.scalar(type_name, wire, value)
        if isinstance(item, bytes) and not keep_bytes:
            return base64.b64encode(item).decode()  # encoding/json writes []byte as base64
        return item
    if not isinstance(value, bytes):
        raise ps.ProtoError(f"proto: wrong wireType = {wire} for a {type_name} field")
    special = _SPECIAL.get(type_name)
    if special is not None:
        return special(to_json(type_name, value, keep_bytes=True))
    message = ps.load()[type_name]
    if "+protobuf.nullable=true" in message.annotations:
        return to_json(type_name, value).get("items", [])
    return to_json(type_name, value, keep_bytes)


def _time(fields: dict[str, Any]) -> str | None:
    seconds = int(fields.get("seconds", 0))
    if seconds == 0 and not fields.get("nanos"):
        return None  # the zero Time marshals as null; left out like an absent field
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_time(fields: dict[str, Any]) -> str | None:
    seconds, nanos = int(fields.get("seconds", 0)), int(fields.get("nanos", 0))
    if seconds == 0 and nanos == 0:
        return None
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos // 1000:06d}Z"


def _duration(fields: dict[str, Any]) -> str:
    """Go's time.Duration.String() for the whole-second and sub-second cases kube objects carry."""
    nanos = int(fields.get("duration", 0))
    sign, nanos = ("-", -nanos) if nanos < 0 else ("", nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size or unit == "ns":
                return f"{sign}{_trim(nanos / size)}{unit}" if nanos else "0s"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _trim(rest / 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    return f"{sign}{minutes}m{seconds}" if minutes else f"{sign}{seconds}"


def _trim(number: float) -> str:
    return f"{number:.9f}".rstrip("0").rstrip(".")


def _int_or_string(fields: dict[str, Any]) -> int | str:
    return str(fields.get("strVal", "")) if fields.get("type") == 1 else int(fields.get("intVal", 0))


def _embedded_json(fields: dict[str, Any]) -> Any:
    raw = fields.get("raw", fields.get("Raw", b""))
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise ps.ProtoError("embedded raw object is not JSON") from None


_SPECIAL = {
    f"{META}.Time": _time,
    f"{META}.MicroTime": _micro_time,
    f"{META}.Duration": _duration,
    f"{META}.FieldsV1": _embedded_json,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _embedded_json,
    "k8s.io.apimachinery.pkg.api.resource.Quantity": lambda f: str(f.get("string", "")),
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
}


KINDS = {
    "namespaces": "Namespace",
    "finalize": "Namespace",
    "serviceaccounts": "ServiceAccount",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "token": "TokenRequest",
    "cronjobs": "CronJob",
    "jobs": "Job",
    "clusterroles": "ClusterRole",
    "clusterrolebindings": "ClusterRoleBinding",
    "roles": "Role",
    "rolebindings": "RoleBinding",
    "tokenreviews": "TokenReview",
    "subjectaccessreviews": "SubjectAccessReview",
}


def expected_type(path: str) -> tuple[str, str]:
    """(apiVersion, kind) a write to this path takes: /api/v1/... is v1, /apis/G/V/... is G/V; the kind is the
    resource's (or subresource's) after the namespace segment, e.g. .../serviceaccounts/NAME/token -> TokenRequest
    in authentication.k8s.io/v1, as the apiserver's TokenRequest handler declares."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        api_version, rest = "v1", parts[2:]
    else:
        api_version, rest = "/".join(parts[1:3]), parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource = rest[2] if len(rest) > 2 else rest[0] if rest else ""
    if resource == "token":
        api_version = "authentication.k8s.io/v1"
    return api_version, KINDS.get(resource, resource)
