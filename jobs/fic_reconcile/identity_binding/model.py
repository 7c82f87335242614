"""What the identity-binding modes observe beyond FIC mode, the names and policy they derive from the pool, and the
actions their plan orders: plain data for plan.py (the pure plan), observe.py and apply.py (the I/O) and the job.
It imports nothing from fic-reconcile, so the job's own model and settings may use it (pyproject.toml)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.clients.arm_types import ObservedBinding
from lib.clients.rbac_types import ObservedRole, ObservedRoleBinding, Subject
from lib.model import Outcome

MODES = ("fic", "identity-binding", "both")
BINDING_FIC = "aks-identity-binding"  # the FIC AKS creates on the identity for every binding that names it
USE_VERB = "use-managed-identity"
USE_GROUP = "cid.wi.aks.azure.com"
# Every ClusterRole and ClusterRoleBinding this job writes carries these; one without them is never touched.
RBAC_LABELS = {"app.kubernetes.io/managed-by": "fic-reconcile", "app.kubernetes.io/part-of": "coder-wi-jobs"}
GUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)  # a client id, as role_name spells it
# the urgency tiers of the binding writes: before any FIC write (plan.py's tiers start at 0, these sort first)
TIER_BINDING, TIER_ROLE, TIER_ROLE_BINDING = -3, -2, -1
PHASE_NAMES = {TIER_BINDING: "binding", TIER_ROLE: "role", TIER_ROLE_BINDING: "subjects"}  # the text plan's column


@dataclass(frozen=True)
class BindingPolicy:
    mode: str
    subscription_id: str  # of the pool identities
    resource_group: str
    prefix: str  # --fic-prefix: it names our bindings, ClusterRoles and ClusterRoleBindings too
    cluster: tuple[str, str] = ("", "")  # --aks-cluster-id's resource group and name, for the commands we print

    def identity_id(self, name: str) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        )

    def binding_name(self, client_id: str) -> str:
        """ARM's binding names are `^[a-z][a-z0-9]{0,63}$` (no '-'): the prefix and the client id, unhyphenated."""
        return re.sub(r"[^a-z0-9]", "", self.prefix.lower()) + re.sub(r"[^a-z0-9]", "", client_id.lower())

    def role_name(self, client_id: str) -> str:
        return f"{self.prefix}use-mi-{client_id.lower()}"

    def role_client(self, name: str) -> str | None:
        """The client id a ClusterRole or ClusterRoleBinding name of ours is for (role_name's inverse), else None:
        our prefix and a whole client id after it, so another prefix's objects never match."""
        head = f"{self.prefix}use-mi-"
        rest = name[len(head) :] if name.startswith(head) else ""
        return rest if GUID.fullmatch(rest) else None

    def binding_client(self, name: str) -> str | None:
        """The unhyphenated client id a binding name of ours carries (binding_name's inverse), else None."""
        head = re.sub(r"[^a-z0-9]", "", self.prefix.lower())
        rest = name[len(head) :] if name.startswith(head) else ""
        return rest if re.fullmatch(r"[0-9a-f]{32}", rest) else None

    def delete_binding_command(self, binding: str) -> str:
        group, cluster = self.cluster
        return (
            f"az aks identity-binding delete -g {group or '<rg>'} --cluster-name {cluster or '<cluster>'} -n {binding}"
        )


@dataclass(frozen=True)
class BindingView:
    """The cluster's side of identity bindings: ARM's bindings on the managed cluster, and the RBAC objects."""

    bindings: tuple[ObservedBinding, ...] = ()
    roles: tuple[ObservedRole, ...] = ()  # ours (by label) and any same-named one without our labels
    role_bindings: tuple[ObservedRoleBinding, ...] = ()
    bindings_error: str = ""  # the ARM list failed: no binding is created (it might exist)
    rbac_error: str = ""  # the RBAC reads failed: no RBAC write


@dataclass(frozen=True)
class PutBinding:
    identity: str
    client_id: str
    binding: str  # the ARM resource name
    identity_id: str  # the identity's ARM resource id, the binding's managedIdentity.resourceId
    reason: str
    phase: int = TIER_BINDING

    @property
    def kind(self) -> str:
        return "binding-create"

    def describe(self) -> dict[str, str]:
        return _columns(self.phase, self.identity, self.kind, self.binding, "-", self.reason)

    def document(self) -> dict[str, Any]:
        return {**_document(self.phase, self.identity, self.binding, self.reason), "identity_id": self.identity_id}


@dataclass(frozen=True)
class PutRole:
    identity: str
    client_id: str
    role: str
    update: bool
    reason: str
    version: str = ""  # the resourceVersion read (update only)
    phase: int = TIER_ROLE

    @property
    def kind(self) -> str:
        return "role-update" if self.update else "role-create"

    def describe(self) -> dict[str, str]:
        return _columns(self.phase, self.identity, self.kind, self.role, "-", self.reason)

    def document(self) -> dict[str, Any]:
        return {**_document(self.phase, self.identity, self.role, self.reason), "update": self.update}


@dataclass(frozen=True)
class PutRoleBinding:
    identity: str
    client_id: str
    name: str
    subjects: tuple[Subject, ...]  # the whole list after the write
    added: tuple[str, ...]  # namespaces
    removed: tuple[str, ...]
    update: bool
    version: str = ""
    phase: int = TIER_ROLE_BINDING

    @property
    def kind(self) -> str:
        return "rolebinding-update" if self.update else "rolebinding-create"

    @property
    def reason(self) -> str:
        return f"subjects +{len(self.added)} -{len(self.removed)} (= {len(self.subjects)})"

    def describe(self) -> dict[str, str]:
        return _columns(self.phase, self.identity, self.kind, self.name, "-", self.reason)

    def document(self) -> dict[str, Any]:
        """Typed, with the subjects' namespaces before -> after (issue 22 point 6)."""
        after = sorted(s.namespace for s in self.subjects)
        before = sorted({*after, *self.removed} - set(self.added))
        return {
            **_document(self.phase, self.identity, self.name, self.reason),
            "update": self.update,
            "added": list(self.added),
            "removed": list(self.removed),
            "changes": [{"field": "subjects", "before": before if self.update else None, "after": after}],
        }


@dataclass(frozen=True)
class DeleteRbac:
    """Our ClusterRole or ClusterRoleBinding for a client id that left the pool: kept, it would go on granting
    workspace ServiceAccounts the use of an identity the operator removed. Deleted at the resourceVersion read."""

    client_id: str
    resource: str  # "ClusterRoleBinding" or "ClusterRole"
    name: str
    version: str
    removed: tuple[str, ...] = ()  # the namespaces (or other subjects) the ClusterRoleBinding named
    phase: int = TIER_ROLE_BINDING  # the ClusterRoleBinding is planned before its ClusterRole

    @property
    def identity(self) -> str:
        return self.client_id  # it has no pool name any more

    @property
    def kind(self) -> str:
        return "rolebinding-delete" if self.resource == "ClusterRoleBinding" else "role-delete"

    @property
    def reason(self) -> str:
        gone = f"; subjects -{len(self.removed)}" if self.resource == "ClusterRoleBinding" else ""
        return f"client id left the pool{gone}"

    def describe(self) -> dict[str, str]:
        return _columns(self.phase, self.client_id, self.kind, self.name, "-", self.reason)

    def document(self) -> dict[str, Any]:
        return {**_document(self.phase, self.client_id, self.name, self.reason), "removed": list(self.removed)}


BindingAction = PutBinding | PutRole | PutRoleBinding | DeleteRbac
BINDING_ACTIONS = (PutBinding, PutRole, PutRoleBinding, DeleteRbac)


def _document(phase: int, identity: str, name: str, reason: str) -> dict[str, Any]:
    """The JSON of a binding action (lib.render.action_document adds kind and changes)."""
    return {"target": f"{identity}/{name}", "reason": reason, "phase": phase, "identity": identity, "object": name}


def _columns(phase: int, identity: str, kind: str, name: str, namespace: str, reason: str) -> dict[str, str]:
    return {"phase": PHASE_NAMES.get(phase, str(phase)), "identity": identity, "action": kind, "object": name,
            "namespace": namespace, "reason": reason}  # fmt: skip


def bindings_after(rows: Sequence[Mapping[str, Any]], outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The plan's `identity_bindings` rows as this run leaves them, from what its writes returned: the report
    and the metrics say "Succeeded" for a binding created just now instead of the plan's "planned". No second
    read: the next run's observe checks it."""
    results: dict[str, list[tuple[object, str]]] = {}
    for o in outcomes:
        if isinstance(o.action, PutBinding | PutRole | PutRoleBinding):
            result: str = o.result
            if isinstance(o.action, PutBinding) and result == "ok":  # ARM's provisioningState when not yet there
                result = "Succeeded" if not o.detail else o.detail.removeprefix("provisioning ")
            results.setdefault(o.action.identity, []).append((o.action, result))
    after: list[dict[str, Any]] = []
    for row in rows:
        done = results.get(str(row["identity"]), [])
        binding = next((r for a, r in done if isinstance(a, PutBinding)), None)
        rbac = [r for a, r in done if not isinstance(a, PutBinding)]
        subjects = next((len(a.subjects) for a, r in done if isinstance(a, PutRoleBinding) and r == "ok"), None)
        after.append({
            "identity": row["identity"],
            "client_id": row["client_id"],
            "binding": row["binding"] if binding is None else binding,
            "rbac": _worst(rbac) if rbac else row["rbac"],
            "subjects": row["observed_subjects"] if subjects is None else subjects,
            "placed_namespaces": row["placed_namespaces"],
        })  # fmt: skip
    return after


def _worst(results: Sequence[str]) -> str:
    """Of one identity's RBAC writes: failed over deferred (or skipped) over ok."""
    return "failed" if "failed" in results else next((r for r in results if r != "ok"), "ok")
