"""RFC 6902 JSON Patch (add, remove, replace, move, copy, test) with RFC 6901 pointers, for the Kubernetes
emulator's RBAC objects: `application/json-patch+json` is the content type the kubernetes Python client picks by
default for every `patch_*` call (ApiClient.select_header_content_type takes the first JSON type of the
operation's list, and json-patch comes first).

Source: staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go (jsonPatcher): a patch that does not decode is
400 BadRequest; one that fails to apply (a missing path, a failed `test`) is 422 with the library's error text.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any


class PatchError(Exception):
    """The patch does not apply; the text is what the API server shows."""


def decode_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer {pointer!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _parent(doc: Any, parts: list[str], op: str, path: str) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"{op} operation does not apply: doc is missing path: {path!r}")
    return node, parts[-1]


def _get(doc: Any, path: str, op: str) -> Any:
    parts = decode_pointer(path)
    if not parts:
        return doc
    node, key = _parent(doc, parts, op, path)
    if isinstance(node, dict) and key in node:
        return node[key]
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return node[int(key)]
    raise PatchError(f"{op} operation does not apply: doc is missing path: {path!r}")


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    parts = decode_pointer(path)
    if not parts:
        return deepcopy(value)
    node, key = _parent(doc, parts, op, path)
    if isinstance(node, dict):
        node[key] = deepcopy(value)
    elif isinstance(node, list) and (key == "-" or (key.isdigit() and int(key) <= len(node))):
        node.insert(len(node) if key == "-" else int(key), deepcopy(value))
    else:
        raise PatchError(f"{op} operation does not apply: doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> Any:
    _get(doc, path, op)
    node, key = _parent(doc, decode_pointer(path), op, path)
    if isinstance(node, dict):
        del node[key]
    else:
        del node[int(key)]
    return doc


def apply(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The patched copy of `doc`. Raises ValueError (undecodable patch) or PatchError (does not apply)."""
    if not isinstance(patch, list) or not all(isinstance(o, dict) for o in patch):
        raise ValueError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    result: Any = deepcopy(doc)
    for operation in patch:
        op, path = operation.get("op"), operation.get("path")
        if not isinstance(path, str):
            raise PatchError(f"{op} operation does not apply: missing path")
        if op == "add":
            result = _add(result, path, operation.get("value"))
        elif op == "remove":
            result = _remove(result, path)
        elif op == "replace":
            _get(result, path, "replace")
            result = _add(_remove(result, path, "replace"), path, operation.get("value"), "replace")
        elif op in ("move", "copy"):
            source = operation.get("from", "")
            value = deepcopy(_get(result, source, op))
            if op == "move":
                result = _remove(result, source, op)
            result = _add(result, path, value, op)
        elif op == "test":
            if _get(result, path, "test") != operation.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {op}")
    if not isinstance(result, dict):
        raise PatchError("the patched document is not an object")
    return result
