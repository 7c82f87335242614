"""What every core/v1 object shares in the Kubernetes emulator: Status errors with the API server's own texts,
object metadata stamping, field selectors, `limit`/`continue` paging, and merge / strategic-merge patches.

Sources (kubernetes/kubernetes):
- staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go: NewNotFound (`<resource> "<name>" not found`),
  NewAlreadyExists (`<resource> "<name>" already exists`), NewConflict (`Operation cannot be fulfilled on
  <resource> "<name>": <why>`), NewForbidden (`<resource> "<name>" is forbidden: <why>`), NewInvalid
  (`<Kind> "<name>" is invalid: <field errors>`, several joined as `[a, b]`).
- staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go: OptimisticLockErrorMsg ("the object has
  been modified; please apply your changes to the latest version and try again"), AllowUnconditionalUpdate
  (a PUT without metadata.resourceVersion overwrites), no create on update for configmaps/serviceaccounts (404).
- staging/src/k8s.io/apimachinery/pkg/runtime/conversion.go: DefaultMetaV1FieldSelectorConversion, used for
  every kind without its own field label conversion (ServiceAccount, ConfigMap): only metadata.name and
  metadata.namespace, else `"<label>" is not a known field selector: only "metadata.name", "metadata.namespace"`;
  pkg/apis/core/v1/conversion.go: Namespace has its own (metadata.name, status.phase; else
  `field label not supported: <label>`). The list handler (endpoints/handlers/get.go) answers 400 BadRequest.
- staging/src/k8s.io/apimachinery/pkg/fields/selector.go: `=`, `==`, `!=` terms joined by `,`; a term without an
  operator is `invalid selector: '<selector>'; can't understand '<term>'`.
- RFC 7386 (JSON merge patch: null deletes); staging/src/k8s.io/apimachinery/pkg/util/strategicpatch: maps merge
  like a merge patch; metadata.finalizers is `patchStrategy:"merge"` (a union), with
  `$deleteFromPrimitiveList/finalizers` to remove entries.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from copy import deepcopy
from typing import TYPE_CHECKING, Any

from tests.emulators.core import HttpError, Request

if TYPE_CHECKING:
    from tests.emulators.kube.emulator import KubeEmulator

DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
OPTIMISTIC_LOCK = "the object has been modified; please apply your changes to the latest version and try again"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
# What a PUT or PATCH may change in metadata; the rest is the server's (uid, resourceVersion, timestamps).
USER_METADATA = ("labels", "annotations", "finalizers", "ownerReferences")


def status_error(
    emulator: KubeEmulator, status: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> HttpError:
    return HttpError(status, emulator.error(status, reason, message, details).body)


def not_found(emulator: KubeEmulator, resource: str, name: str) -> HttpError:
    details = {"name": name, "kind": resource}
    return status_error(emulator, 404, "NotFound", f'{resource} "{name}" not found', details)


def conflict(emulator: KubeEmulator, resource: str, name: str, why: str = OPTIMISTIC_LOCK) -> HttpError:
    details = {"name": name, "kind": resource}
    return status_error(
        emulator, 409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": {why}', details
    )


def invalid(emulator: KubeEmulator, kind: str, name: str, causes: list[tuple[str, str, str]]) -> HttpError:
    """causes: (reason, field, message) like field.ErrorList; the message joins them as NewInvalid does."""
    texts = [message for _, _, message in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = {
        "name": name,
        "kind": kind,
        "causes": [{"reason": r, "field": f, "message": m.partition(": ")[2] or m} for r, f, m in causes],
    }
    return status_error(emulator, 422, "Invalid", f'{kind} "{name}" is invalid: {joined}', details)


def bad_request(emulator: KubeEmulator, message: str) -> HttpError:
    return status_error(emulator, 400, "BadRequest", message)


def json_body(emulator: KubeEmulator, req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        raise bad_request(emulator, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request(emulator, "the request body must be a JSON object")
    return body


def stamp(emulator: KubeEmulator, meta: dict[str, Any]) -> None:
    """What the store sets on create: uid, resourceVersion (the one cluster-wide counter), creationTimestamp."""
    emulator.resource_version += 1
    meta.update(
        uid=str(uuid.uuid4()),
        resourceVersion=str(emulator.resource_version),
        creationTimestamp=emulator.timestamp(),
    )


def bump(emulator: KubeEmulator, obj: dict[str, Any]) -> None:
    emulator.resource_version += 1
    obj["metadata"]["resourceVersion"] = str(emulator.resource_version)


def check_identity(emulator: KubeEmulator, body: dict[str, Any], kind: str, name: str | None, ns: str | None) -> None:
    """The body's kind/apiVersion, name and namespace must agree with the URL (endpoints/handlers/rest.go)."""
    if body.get("kind") not in (None, kind) or body.get("apiVersion") not in (None, "v1"):
        found = f"{body.get('apiVersion')}, Kind={body.get('kind')}"
        raise bad_request(emulator, f"expected /v1, Kind={kind}, got {found}")
    meta = body.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise bad_request(emulator, "metadata must be an object")
    meta = meta or {}
    if ns is not None and meta.get("namespace") not in (None, "", ns):
        raise bad_request(
            emulator, "the namespace of the provided object does not match the namespace sent on the request"
        )
    if name is not None and meta.get("name") not in (None, "", name):
        raise bad_request(
            emulator, f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
        )


def validate_name(emulator: KubeEmulator, kind: str, name: str) -> None:
    if not name:
        cause = (
            "FieldValueRequired",
            "metadata.name",
            "metadata.name: Required value: name or generateName is required",
        )
        raise invalid(emulator, kind, name, [cause])
    if len(name) > 253 or not DNS1123_SUBDOMAIN.fullmatch(name):
        why = "must be no more than 253 characters" if len(name) > 253 else SUBDOMAIN_MESSAGE
        cause = ("FieldValueInvalid", "metadata.name", f'metadata.name: Invalid value: "{name}": {why}')
        raise invalid(emulator, kind, name, [cause])


def string_map(emulator: KubeEmulator, value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise bad_request(emulator, f"{where}: expected a map of strings to strings")
    return dict(value)


# ---- field selectors -------------------------------------------------------------------------------------


def parse_field_selector(
    emulator: KubeEmulator, text: str | None, supported: tuple[str, ...], unsupported: str
) -> list[tuple[str, bool, str]]:
    """`a=b,c!=d` -> [(field, equal, value)]. `unsupported` formats the error for any other field."""
    terms: list[tuple[str, bool, str]] = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        m = re.fullmatch(r"\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if not m:
            raise bad_request(emulator, f"invalid selector: '{text}'; can't understand '{part}'")
        label, op, value = m.groups()
        if label not in supported:
            raise bad_request(emulator, unsupported.format(label=label))
        terms.append((label, op != "!=", value))
    return terms


def field_matches(terms: list[tuple[str, bool, str]], fields: dict[str, str]) -> bool:
    return all((fields.get(label) == value) == equal for label, equal, value in terms)


META_FIELDS_ONLY = '"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'


def object_fields(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj["metadata"]
    return {"metadata.name": meta["name"], "metadata.namespace": meta.get("namespace", "")}


# ---- paging ----------------------------------------------------------------------------------------------


def encode_continue(last: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"v": "meta.k8s.io/v1", "start": last}).encode()).decode()


def decode_continue(emulator: KubeEmulator, token: str | None) -> str:
    if not token:
        return ""
    try:
        return str(json.loads(base64.urlsafe_b64decode(token.encode()))["start"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        message = (
            "The provided continue parameter is too old to display a consistent "
            "list result. You can start a new list without the continue parameter."
        )
        raise status_error(emulator, 410, "Expired", message) from None


def page(
    emulator: KubeEmulator, req: Request, keyed: list[tuple[str, dict[str, Any]]], list_kind: str
) -> dict[str, Any]:
    """A list answer from (key, object) pairs already filtered: sorted by key (etcd's order), `limit` items,
    a `continue` token naming the last key when more remain, and `remainingItemCount` if no selector filtered."""
    start = decode_continue(emulator, req.q("continue"))
    matching = sorted(((k, o) for k, o in keyed if k > start), key=lambda pair: pair[0])
    try:
        limit = int(req.q("limit") or 0)
    except ValueError:
        raise bad_request(emulator, f"limit: Invalid value: {req.q('limit')!r}") from None
    chosen = matching[:limit] if limit > 0 else matching
    meta: dict[str, Any] = {"resourceVersion": str(emulator.resource_version)}
    if limit > 0 and len(matching) > limit:
        meta["continue"] = encode_continue(chosen[-1][0])
        if not req.q("labelSelector") and not req.q("fieldSelector"):  # etcd3/store.go: only when unfiltered
            meta["remainingItemCount"] = len(matching) - limit
    return {"kind": list_kind, "apiVersion": "v1", "metadata": meta, "items": [deepcopy(o) for _, o in chosen]}


# ---- patches ---------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(emulator: KubeEmulator, target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A strategic merge patch on the fields these objects have: maps merge as in a merge patch, other lists
    replace, metadata.finalizers merges as a set (patchStrategy "merge") and honours
    `$deleteFromPrimitiveList/finalizers`. Other `$` directives are not modelled: 400."""
    patch = deepcopy(patch)
    meta_patch = patch.get("metadata") if isinstance(patch.get("metadata"), dict) else {}
    removed = meta_patch.pop("$deleteFromPrimitiveList/finalizers", None) or []
    added = meta_patch.pop("finalizers", None) if "finalizers" in meta_patch else None
    _refuse_directives(emulator, patch)
    result: dict[str, Any] = merge_patch(target, patch)
    if added is not None or removed:
        finalizers = list((target.get("metadata") or {}).get("finalizers") or [])
        finalizers += [f for f in added or [] if f not in finalizers]
        result["metadata"]["finalizers"] = [f for f in finalizers if f not in removed]
    return result


def _refuse_directives(emulator: KubeEmulator, value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key.startswith("$"):
                raise bad_request(emulator, f"strategic merge patch directive {key} is not modelled by this emulator")
            _refuse_directives(emulator, inner)


def apply_patch(emulator: KubeEmulator, req: Request, current: dict[str, Any]) -> dict[str, Any]:
    """The patched copy of `current` per the request's Content-Type; server-owned metadata is restored by the
    caller. A metadata.resourceVersion in the patch is a precondition (409 when stale)."""
    content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
    if content_type not in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
        message = (
            "the body of the request was in an unknown format - accepted media types include: "
            f"{MERGE_PATCH}, {STRATEGIC_MERGE_PATCH} (this emulator does not model json-patch or apply; "
            f'got "{content_type}")'
        )
        raise status_error(emulator, 415, "UnsupportedMediaType", message)
    patch = json_body(emulator, req)
    if content_type == MERGE_PATCH:
        patched: dict[str, Any] = merge_patch(current, patch)
    else:
        patched = strategic_merge_patch(emulator, current, patch)
    if not isinstance(patched.get("metadata"), dict):
        raise bad_request(emulator, "metadata must be an object")
    return patched


def carry_server_metadata(old: dict[str, Any], new: dict[str, Any]) -> None:
    """After a PUT or PATCH only USER_METADATA comes from the request (rest.BeforeUpdate)."""
    meta = {k: v for k, v in (new.get("metadata") or {}).items() if k in USER_METADATA and v is not None}
    for key, value in old["metadata"].items():
        if key not in USER_METADATA:
            meta[key] = value
    new["metadata"] = meta
    new["kind"], new["apiVersion"] = old["kind"], old["apiVersion"]


def require_version(emulator: KubeEmulator, resource: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """metadata.resourceVersion in a PUT or PATCH body must be the stored one (store.go GuaranteedUpdate)."""
    sent = (new.get("metadata") or {}).get("resourceVersion")
    if sent not in (None, "") and str(sent) != old["metadata"]["resourceVersion"]:
        raise conflict(emulator, resource, old["metadata"]["name"])


def finalizer_growth(emulator: KubeEmulator, kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """ValidateObjectMetaUpdate: no new finalizers once deletionTimestamp is set."""
    if not old["metadata"].get("deletionTimestamp"):
        return
    finalizers = new["metadata"].get("finalizers") or []
    if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
        raise bad_request(emulator, "metadata.finalizers: expected a list of strings")
    added = sorted(set(finalizers) - set(old["metadata"].get("finalizers") or []))
    if added:
        go_list = "[]string{" + ", ".join(f'"{f}"' for f in added) + "}"
        message = (
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, "
            f"found new finalizers {go_list}"
        )
        raise invalid(
            emulator, kind, old["metadata"]["name"], [("FieldValueForbidden", "metadata.finalizers", message)]
        )


def delete_status(resource: str, obj: dict[str, Any]) -> dict[str, Any]:
    """What DELETE answers for a kind without ReturnDeletedObject: a Success Status naming the object."""
    meta = obj["metadata"]
    details = {"name": meta["name"], "kind": resource, "uid": meta["uid"]}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
