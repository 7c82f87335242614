"""What the identity-binding modes observe beyond FIC mode, and the actions their plan orders: plain data for
bindings.py (the pure plan), binding_writes.py (the apply) and the job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lib.clients.arm_types import ObservedBinding
from lib.clients.rbac_types import ObservedRole, ObservedRoleBinding, Subject

MODES = ("fic", "identity-binding", "both")
BINDING_FIC = "aks-identity-binding"  # the FIC AKS creates on the identity for every binding that names it
USE_VERB = "use-managed-identity"
USE_GROUP = "cid.wi.aks.azure.com"
# Every ClusterRole and ClusterRoleBinding this job writes carries these; one without them is never touched.
RBAC_LABELS = {"app.kubernetes.io/managed-by": "fic-reconcile", "app.kubernetes.io/part-of": "coder-wi-jobs"}
# the urgency tiers of the binding writes: before any FIC write (plan.py's tiers start at 0, these sort first)
TIER_BINDING, TIER_ROLE, TIER_ROLE_BINDING = -3, -2, -1


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


BindingAction = PutBinding | PutRole | PutRoleBinding


def _document(phase: int, identity: str, name: str, reason: str) -> dict[str, Any]:
    """The JSON of a binding action (lib.render.action_document adds kind and changes)."""
    return {"target": f"{identity}/{name}", "reason": reason, "phase": phase, "identity": identity, "object": name}


def _columns(phase: int, identity: str, kind: str, name: str, namespace: str, reason: str) -> dict[str, str]:
    return {"phase": str(phase), "identity": identity, "action": kind, "object": name, "namespace": namespace,
            "reason": reason}  # fmt: skip
