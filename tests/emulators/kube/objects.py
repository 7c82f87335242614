"""core/v1 ServiceAccounts, ConfigMaps and Secrets for the Kubernetes emulator: create, get, list (one namespace, and
ServiceAccounts cluster-wide) with label and field selectors and `limit`/`continue` paging, PUT replace with
optimistic concurrency, merge / strategic-merge PATCH, delete.

Sources (kubernetes/kubernetes; texts in meta.py):
- pkg/registry/core/serviceaccount/storage/storage.go, pkg/registry/core/configmap/storage/storage.go: generic
  stores (no create on update, unconditional update allowed); DELETE answers the deleted ServiceAccount
  (ReturnDeletedObject) and a Success Status for a ConfigMap.
- staging/src/k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle/admission.go: a create in a namespace
  being terminated is 403 Forbidden, `<resource> "<name>" is forbidden: unable to create new content in namespace
  <ns> because it is being terminated`, with a `NamespaceTerminating` cause on `metadata.namespace`; a create in
  a namespace that does not exist is 404 `namespaces "<ns>" not found`. Updates and deletes are allowed.
- pkg/apis/core/validation/validation.go ValidateConfigMap: keys per validation.IsConfigMapKey
  (`[-._a-zA-Z0-9]+`, at most 253 characters, not `.`/`..`/`..*`), data + binaryData at most
  core.MaxSecretSize = 1 MiB (field.TooLong: `[]: Too long: must have at most 1048576 bytes`).
- Listing in a namespace that does not exist answers an empty list (the store filters by key prefix).
Not modelled: watch, generateName, json-patch and apply patches (415), SMP merge keys of ServiceAccount
`secrets`/`imagePullSecrets` (lists replace), `immutable` ConfigMaps, deletecollection.
"""

from __future__ import annotations

import base64
import binascii
import re
from copy import deepcopy
from typing import TYPE_CHECKING, Any

from tests.emulators.core import HttpError, Request, Response, route
from tests.emulators.kube import meta as m

if TYPE_CHECKING:
    from tests.emulators.kube.emulator import KubeEmulator

KINDS = {"serviceaccounts": "ServiceAccount", "configmaps": "ConfigMap", "secrets": "Secret"}
MAX_CONFIG_MAP_BYTES = 1024 * 1024  # core.MaxSecretSize
CONFIG_MAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
CONFIG_MAP_KEY_MESSAGE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
_NS = r"/api/v1/namespaces/(?P<ns>[^/]+)"
# Go's base64.CorruptInputError names the first byte it cannot read (here: the first outside the alphabet, else
# the end, where bad padding is found).
BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


class CoreObjectsApi:
    """Mixed into KubeEmulator, which supplies lock, platform, error(), namespaces and resource_version."""

    objects: dict[str, dict[tuple[str, str], dict[str, Any]]]

    def reset_objects(self) -> None:
        self.objects = {resource: {} for resource in KINDS}

    # ---- lists ----------------------------------------------------------------------------------------------

    @route("GET", r"/api/v1/serviceaccounts", "serviceaccounts.list_all")
    def list_all_service_accounts(self: KubeEmulator, req: Request) -> Response:
        return self._list(req, "serviceaccounts", None)

    @route("GET", _NS + r"/serviceaccounts", "serviceaccounts.list")
    @route("GET", _NS + r"/configmaps", "configmaps.list")
    @route("GET", _NS + r"/secrets", "secrets.list")
    def list_namespaced(self: KubeEmulator, req: Request) -> Response:
        return self._list(req, req.op.split(".")[0], req.params["ns"])

    def _list(self: KubeEmulator, req: Request, resource: str, ns: str | None) -> Response:
        labels = self.label_terms(req)
        fields = m.parse_field_selector(
            self, req.q("fieldSelector"), ("metadata.name", "metadata.namespace"), m.META_FIELDS_ONLY
        )
        with self.lock:
            keyed = [
                (f"{key[0]}/{key[1]}", obj)
                for key, obj in self.objects[resource].items()
                if (ns is None or key[0] == ns)
                and self.labels_match(labels, obj)
                and m.field_matches(fields, m.object_fields(obj))
            ]
            return Response(200, m.page(self, req, keyed, KINDS[resource] + "List"))

    # ---- one object -----------------------------------------------------------------------------------------

    @route("POST", _NS + r"/serviceaccounts", "serviceaccounts.create")
    @route("POST", _NS + r"/configmaps", "configmaps.create")
    @route("POST", _NS + r"/secrets", "secrets.create")
    def create_namespaced(self: KubeEmulator, req: Request) -> Response:
        resource, ns = req.op.split(".")[0], req.params["ns"]
        body = m.json_body(self, req)
        m.check_identity(self, body, KINDS[resource], None, ns)
        with self.lock:
            return Response(201, self.create_object(resource, ns, body))

    def create_object(self: KubeEmulator, resource: str, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create as the API server would (also for seeding from tests); raises HttpError like the endpoint."""
        kind = KINDS[resource]
        obj = self._normalized(resource, deepcopy(body))
        name = obj["metadata"].get("name") or ""
        m.validate_name(self, kind, name)
        self._validate(resource, obj)
        self.admit_create(resource, ns, name)
        if (ns, name) in self.objects[resource]:
            details = {"name": name, "kind": resource}
            raise m.status_error(self, 409, "AlreadyExists", f'{resource} "{name}" already exists', details)
        obj["metadata"] = {
            k: v for k, v in obj["metadata"].items() if k in (*m.USER_METADATA, "name") and v is not None
        }
        obj["metadata"]["namespace"] = ns
        m.stamp(self, obj["metadata"])
        self.objects[resource][(ns, name)] = obj
        return deepcopy(obj)

    @route("GET", _NS + r"/serviceaccounts/(?P<name>[^/]+)", "serviceaccounts.get")
    @route("GET", _NS + r"/configmaps/(?P<name>[^/]+)", "configmaps.get")
    @route("GET", _NS + r"/secrets/(?P<name>[^/]+)", "secrets.get")
    def get_namespaced(self: KubeEmulator, req: Request) -> Response:
        resource = req.op.split(".")[0]
        with self.lock:
            return Response(200, deepcopy(self._existing(resource, req)))

    @route("PUT", _NS + r"/serviceaccounts/(?P<name>[^/]+)", "serviceaccounts.replace")
    @route("PUT", _NS + r"/configmaps/(?P<name>[^/]+)", "configmaps.replace")
    @route("PUT", _NS + r"/secrets/(?P<name>[^/]+)", "secrets.replace")
    def replace_namespaced(self: KubeEmulator, req: Request) -> Response:
        resource = req.op.split(".")[0]
        body = m.json_body(self, req)
        m.check_identity(self, body, KINDS[resource], req.params["name"], req.params["ns"])
        with self.lock:
            return Response(200, self._update(resource, self._existing(resource, req), body))

    @route("PATCH", _NS + r"/serviceaccounts/(?P<name>[^/]+)", "serviceaccounts.patch")
    @route("PATCH", _NS + r"/configmaps/(?P<name>[^/]+)", "configmaps.patch")
    @route("PATCH", _NS + r"/secrets/(?P<name>[^/]+)", "secrets.patch")
    def patch_namespaced(self: KubeEmulator, req: Request) -> Response:
        resource = req.op.split(".")[0]
        with self.lock:
            old = self._existing(resource, req)
            patched = m.apply_patch(self, req, old)
            m.check_identity(self, patched, KINDS[resource], req.params["name"], req.params["ns"])
            return Response(200, self._update(resource, old, patched))

    @route("DELETE", _NS + r"/serviceaccounts/(?P<name>[^/]+)", "serviceaccounts.delete")
    @route("DELETE", _NS + r"/configmaps/(?P<name>[^/]+)", "configmaps.delete")
    @route("DELETE", _NS + r"/secrets/(?P<name>[^/]+)", "secrets.delete")
    def delete_namespaced(self: KubeEmulator, req: Request) -> Response:
        resource = req.op.split(".")[0]
        with self.lock:
            obj = self._existing(resource, req)
            del self.objects[resource][(req.params["ns"], req.params["name"])]
            self.resource_version += 1
            # serviceaccount/storage/storage.go sets ReturnDeletedObject (the OpenAPI's delete answers a
            # ServiceAccount); configmaps answer a Success Status.
            return Response(200, deepcopy(obj) if resource == "serviceaccounts" else m.delete_status(resource, obj))

    # ---- helpers --------------------------------------------------------------------------------------------

    def _existing(self: KubeEmulator, resource: str, req: Request) -> dict[str, Any]:
        obj = self.objects[resource].get((req.params["ns"], req.params["name"]))
        if obj is None:
            raise m.not_found(self, resource, req.params["name"])
        return obj

    def _update(self: KubeEmulator, resource: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        m.require_version(self, resource, old, new)
        new = self._normalized(resource, new)
        self._validate(resource, new)
        m.finalizer_growth(self, KINDS[resource], old, new)
        m.carry_server_metadata(old, new)
        m.bump(self, new)
        key = (old["metadata"]["namespace"], old["metadata"]["name"])
        self.objects[resource][key] = new
        return deepcopy(new)

    def _normalized(self: KubeEmulator, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        for field in ("labels", "annotations"):
            if meta.get(field) is not None:
                meta[field] = m.string_map(self, meta[field], f"metadata.{field}")
        obj["metadata"] = meta
        obj["kind"], obj["apiVersion"] = KINDS[resource], "v1"
        if resource == "configmaps":
            for field in ("data", "binaryData"):
                if obj.get(field) is None:
                    obj.pop(field, None)
                else:
                    obj[field] = m.string_map(self, obj[field], field)
        if resource == "secrets":
            self._merge_string_data(obj)
        return obj

    def _merge_string_data(self: KubeEmulator, obj: dict[str, Any]) -> None:
        """pkg/apis/core/v1/conversion.go Convert_v1_Secret_To_core_Secret: stringData is write-only, merged into
        data (its keys win) and never stored; data values are base64 (encoding/json's []byte, else 400 as the
        decoder's error). defaults.go SetDefaults_Secret: type Opaque."""
        data = m.string_map(self, obj.get("data") or {}, "data")
        for value in data.values():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                at = next((i for i, c in enumerate(value) if c not in BASE64_ALPHABET), len(value))
                message = (
                    f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte {at}'
                )
                raise m.bad_request(self, message) from None
        for key, value in m.string_map(self, obj.pop("stringData", None) or {}, "stringData").items():
            data[key] = base64.b64encode(value.encode()).decode()
        if data:
            obj["data"] = data
        else:
            obj.pop("data", None)
        obj["type"] = obj.get("type") or "Opaque"

    def _validate(self: KubeEmulator, resource: str, obj: dict[str, Any]) -> None:
        if resource == "secrets":
            return self._validate_secret(obj)
        if resource != "configmaps":
            return None
        causes: list[tuple[str, str, str]] = []
        total = 0
        data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
        for field, values in (("data", data), ("binaryData", binary)):
            for key, value in sorted(values.items()):
                path = f"{field}[{key}]"
                causes += [
                    ("FieldValueInvalid", path, f'{path}: Invalid value: "{key}": {why}') for why in config_map_key(key)
                ]
                if field == "binaryData":
                    try:
                        total += len(base64.b64decode(value, validate=True))
                    except (binascii.Error, ValueError):
                        raise m.bad_request(self, f"{path}: illegal base64 data") from None
                    if key in data:
                        message = f'{path}: Invalid value: "{key}": duplicate key in both data and binaryData'
                        causes.append(("FieldValueInvalid", path, message))
                else:
                    total += len(value.encode())
        if total > MAX_CONFIG_MAP_BYTES:
            causes.append(("FieldValueTooLong", "[]", f"[]: Too long: must have at most {MAX_CONFIG_MAP_BYTES} bytes"))
        if causes:
            raise m.invalid(self, "ConfigMap", obj["metadata"].get("name") or "", causes)

    def _validate_secret(self: KubeEmulator, obj: dict[str, Any]) -> None:
        """pkg/apis/core/validation/validation.go ValidateSecret: keys as ConfigMap keys, values at most
        core.MaxSecretSize in all (field.TooLong on `data`)."""
        causes: list[tuple[str, str, str]] = []
        total = 0
        for key, value in sorted((obj.get("data") or {}).items()):
            path = f"data[{key}]"
            causes += [
                ("FieldValueInvalid", path, f'{path}: Invalid value: "{key}": {why}') for why in config_map_key(key)
            ]
            total += len(base64.b64decode(value))
        if total > MAX_CONFIG_MAP_BYTES:
            causes.append(
                ("FieldValueTooLong", "data", f"data: Too long: must have at most {MAX_CONFIG_MAP_BYTES} bytes")
            )
        if causes:
            raise m.invalid(self, "Secret", obj["metadata"].get("name") or "", causes)

    def admit_create(self: KubeEmulator, resource: str, ns: str, name: str) -> None:
        """The NamespaceLifecycle admission plugin on a create in namespace `ns`."""
        namespace = self.namespaces.get(ns)
        if namespace is None:
            raise m.not_found(self, "namespaces", ns)
        if namespace["status"].get("phase") == "Terminating":
            message = (
                f'{resource} "{name}" is forbidden: unable to create new content in namespace {ns} '
                "because it is being terminated"
            )
            cause = {
                "reason": "NamespaceTerminating",
                "message": f"namespace {ns} is being terminated",
                "field": "metadata.namespace",
            }
            details = {"name": name, "kind": resource, "causes": [cause]}
            raise HttpError(403, self.error(403, "Forbidden", message, details).body)

    def drop_namespace_content(self: KubeEmulator, ns: str) -> None:
        """What the namespace controller deletes before it removes the `kubernetes` finalizer."""
        for store in self.objects.values():
            for key in [k for k in store if k[0] == ns]:
                del store[key]
        for batch in (self.cronjobs, self.jobs):
            for key in [k for k in batch if k[0] == ns]:
                del batch[key]


def config_map_key(key: str) -> list[str]:
    """validation.IsConfigMapKey."""
    errors = []
    if len(key) > 253:
        errors.append("must be no more than 253 characters")
    if not CONFIG_MAP_KEY.fullmatch(key):
        errors.append(CONFIG_MAP_KEY_MESSAGE)
    if key == ".":
        errors.append("must not be '.'")
    elif key == "..":
        errors.append("must not be '..'")
    elif key.startswith(".."):
        errors.append("must not start with '..'")
    return errors
