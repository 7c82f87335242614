"""What rbac.py checks: RBAC objects' defaulting and validation, and Covers (whether held rules cover granted ones).

Sources: kubernetes/kubernetes pkg/apis/rbac/validation/validation.go, pkg/apis/rbac/v1/defaults.go,
pkg/registry/rbac/validation/rule.go (Covers, ruleCovers, BreakdownRule, CompactRules) and
staging/src/k8s.io/api/rbac/v1/types.go PolicyRule.CompactString; the texts are field.ErrorList's.
"""

from __future__ import annotations

from copy import deepcopy
from typing import TYPE_CHECKING, Any

from tests.emulators.kube import meta as m
from tests.emulators.kube.authn import go_quote_list

if TYPE_CHECKING:
    from tests.emulators.kube.emulator import KubeEmulator

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_V1 = RBAC_GROUP + "/v1"
KINDS = {"clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding"}
GC_FIELDS = ("ownerReferences", "finalizers")


def check_identity(emulator: KubeEmulator, body: dict[str, Any], kind: str, name: str | None) -> None:
    if body.get("kind") not in (None, kind) or body.get("apiVersion") not in (None, RBAC_V1):
        found = f"{body.get('apiVersion')}, Kind={body.get('kind')}"
        raise m.bad_request(emulator, f"expected {RBAC_V1}, Kind={kind}, got {found}")
    meta = body.get("metadata") or {}
    if not isinstance(meta, dict):
        raise m.bad_request(emulator, "metadata must be an object")
    if name is not None and meta.get("name") not in (None, "", name):
        raise m.bad_request(
            emulator, f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
        )


def normalized(emulator: KubeEmulator, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
    obj = deepcopy(obj)
    meta = obj.get("metadata") or {}
    for field in ("labels", "annotations"):
        if meta.get(field) is not None:
            meta[field] = m.string_map(emulator, meta[field], f"metadata.{field}")
    obj["metadata"], obj["kind"], obj["apiVersion"] = meta, KINDS[resource], RBAC_V1
    if resource == "clusterrolebindings":
        ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
        obj["roleRef"] = {
            "apiGroup": ref.get("apiGroup") or RBAC_GROUP,
            "kind": ref.get("kind", ""),
            "name": ref.get("name", ""),
        }
        subjects = obj.get("subjects") or []
        for subject in subjects if isinstance(subjects, list) else []:
            if isinstance(subject, dict) and subject.get("kind") in ("User", "Group") and not subject.get("apiGroup"):
                subject["apiGroup"] = RBAC_GROUP
    return obj


def validate(emulator: KubeEmulator, resource: str, obj: dict[str, Any]) -> None:
    name = obj["metadata"].get("name") or ""
    causes = name_causes(name)
    if resource == "clusterroles":
        rules = obj.get("rules") or []
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            causes += rule_causes(rule if isinstance(rule, dict) else {}, f"rules[{i}]")
    else:
        causes += binding_causes(obj)
    if causes:
        raise m.invalid(emulator, KINDS[resource], name, causes)


def name_causes(name: str) -> list[tuple[str, str, str]]:
    if not name:
        return [
            ("FieldValueRequired", "metadata.name", "metadata.name: Required value: name or generateName is required")
        ]
    for bad in (".", ".."):
        if name == bad:
            return [
                ("FieldValueInvalid", "metadata.name", f"metadata.name: Invalid value: \"{name}\": may not be '{bad}'")
            ]
    for char in ("/", "%"):
        if char in name:
            return [
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    f"metadata.name: Invalid value: \"{name}\": may not contain '{char}'",
                )
            ]
    return []


def rule_causes(rule: dict[str, Any], where: str) -> list[tuple[str, str, str]]:
    causes = []
    if not rule.get("verbs"):
        causes.append(
            (
                "FieldValueRequired",
                f"{where}.verbs",
                f"{where}.verbs: Required value: verbs must contain at least one value",
            )
        )
    if rule.get("nonResourceURLs"):
        if rule.get("apiGroups") or rule.get("resources"):
            urls = go_quote_list(rule["nonResourceURLs"])
            message = (
                f"{where}.nonResourceURLs: Invalid value: {urls}: "
                "rules cannot apply to both regular resources and non-resource URLs"
            )
            causes.append(("FieldValueInvalid", f"{where}.nonResourceURLs", message))
        return causes
    if not rule.get("apiGroups"):
        causes.append(
            (
                "FieldValueRequired",
                f"{where}.apiGroups",
                f"{where}.apiGroups: Required value: resource rules must supply at least one api group",
            )
        )
    if not rule.get("resources"):
        causes.append(
            (
                "FieldValueRequired",
                f"{where}.resources",
                f"{where}.resources: Required value: resource rules must supply at least one resource",
            )
        )
    return causes


def binding_causes(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    ref, causes = obj["roleRef"], []
    if ref["apiGroup"] != RBAC_GROUP:
        causes.append(
            (
                "FieldValueNotSupported",
                "roleRef.apiGroup",
                f'roleRef.apiGroup: Unsupported value: "{ref["apiGroup"]}": supported values: "{RBAC_GROUP}"',
            )
        )
    if ref["kind"] != "ClusterRole":
        causes.append(
            (
                "FieldValueNotSupported",
                "roleRef.kind",
                f'roleRef.kind: Unsupported value: "{ref["kind"]}": supported values: "ClusterRole"',
            )
        )
    if not ref["name"]:
        causes.append(("FieldValueRequired", "roleRef.name", "roleRef.name: Required value"))
    subjects = obj.get("subjects") or []
    for i, s in enumerate(subjects if isinstance(subjects, list) else []):
        where, kind = f"subjects[{i}]", s.get("kind")
        if not s.get("name"):
            causes.append(("FieldValueRequired", f"{where}.name", f"{where}.name: Required value"))
        if kind == "ServiceAccount":
            if s.get("apiGroup"):
                causes.append(
                    (
                        "FieldValueNotSupported",
                        f"{where}.apiGroup",
                        f'{where}.apiGroup: Unsupported value: "{s["apiGroup"]}": supported values: ""',
                    )
                )
            if not s.get("namespace"):
                causes.append(("FieldValueRequired", f"{where}.namespace", f"{where}.namespace: Required value"))
        elif kind in ("User", "Group"):
            if s.get("apiGroup") != RBAC_GROUP:
                causes.append(
                    (
                        "FieldValueNotSupported",
                        f"{where}.apiGroup",
                        f'{where}.apiGroup: Unsupported value: "{s.get("apiGroup")}": supported values: "{RBAC_GROUP}"',
                    )
                )
        else:
            message = f'{where}.kind: Unsupported value: "{kind}": supported values: "ServiceAccount", "User", "Group"'
            causes.append(("FieldValueNotSupported", f"{where}.kind", message))
    return causes


def only_gc_fields(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k in m.USER_METADATA and k not in GC_FIELDS}
        return {**{k: v for k, v in obj.items() if k not in ("metadata", "kind", "apiVersion")}, "metadata": meta}

    return strip(old) == strip(new)


# ---- Covers (validation/rule.go) ---------------------------------------------------------------------------------


def breakdown(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One rule per (group, resource, verb, resourceName), as BreakdownRule does."""
    atoms = []
    for rule in rules:
        for group in rule.get("apiGroups") or [""]:
            for res in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    for name in rule.get("resourceNames") or [None]:
                        atom = {"apiGroups": [group], "resources": [res], "verbs": [verb]}
                        atoms.append(atom | ({"resourceNames": [name]} if name is not None else {}))
    return atoms


def covers(owner: dict[str, Any], atom: dict[str, Any]) -> bool:
    verbs, groups, resources = owner.get("verbs") or [], owner.get("apiGroups") or [], owner.get("resources") or []
    verb, group, res = atom["verbs"][0], atom["apiGroups"][0], atom["resources"][0]
    resource_ok = (
        "*" in resources or res in resources or any(r.startswith("*/") and res.endswith(r[1:]) for r in resources)
    )
    names, wanted = owner.get("resourceNames") or [], atom.get("resourceNames") or []
    names_ok = not names if not wanted else (not names or all(n in names for n in wanted))
    return ("*" in verbs or verb in verbs) and ("*" in groups or group in groups) and resource_ok and names_ok


def compact_strings(atoms: list[dict[str, Any]]) -> list[str]:
    """CompactRules then PolicyRule.CompactString: atoms differing only in verb merge."""
    merged: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for a in atoms:
        key = (a["apiGroups"][0], a["resources"][0], tuple(a.get("resourceNames") or ()))
        merged.setdefault(key, [])
        if a["verbs"][0] not in merged[key]:
            merged[key].append(a["verbs"][0])
    out = []
    for (group, res, names), verbs in merged.items():
        parts = [f"APIGroups:{go_quote_list([group])}", f"Resources:{go_quote_list([res])}"]
        if names:
            parts.append(f"ResourceNames:{go_quote_list(list(names))}")
        parts.append(f"Verbs:{go_quote_list(verbs)}")
        out.append("{" + ", ".join(parts) + "}")
    return out


def role_ref_text(ref: dict[str, Any]) -> str:
    """Go's %#v of an rbac.RoleRef, as the `cannot change roleRef` message prints it."""
    group, kind, name = ref.get("apiGroup", ""), ref.get("kind", ""), ref.get("name", "")
    return f'rbac.RoleRef{{APIGroup:"{group}", Kind:"{kind}", Name:"{name}"}}'


# ---- discovery ---------------------------------------------------------------------------------------------------

DISCOVERY = {
    RBAC_GROUP: [
        ("clusterroles", "ClusterRole", ["create", "delete", "get", "list", "patch", "update"]),
        ("clusterrolebindings", "ClusterRoleBinding", ["create", "delete", "get", "list", "patch", "update"]),
    ],
    "authorization.k8s.io": [("subjectaccessreviews", "SubjectAccessReview", ["create"])],
}


def discovery_groups() -> list[dict[str, Any]]:
    """The APIGroup entries of /apis for the groups rbac.py and authz.py serve (v1 only)."""
    out = []
    for group in DISCOVERY:
        version = {"groupVersion": f"{group}/v1", "version": "v1"}
        out.append({"name": group, "versions": [version], "preferredVersion": version})
    return out


def resource_list(group: str) -> dict[str, Any]:
    """/apis/<group>/v1: only what is served, with the verbs served (cluster-scoped)."""
    resources = [
        {"name": name, "singularName": kind.lower(), "namespaced": False, "kind": kind, "verbs": verbs}
        for name, kind, verbs in DISCOVERY[group]
    ]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/v1", "resources": resources}
