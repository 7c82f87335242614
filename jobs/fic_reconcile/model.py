"""What fic-reconcile observes and the actions its plan orders: plain data, shared by the plan
(plan.py), its findings (findings.py) and the job (job.py), so none of them imports another for a type."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.fic_reconcile.identity_binding.model import BindingView
from lib.clients.arm_types import FicSpec, ObservedFic
from lib.model import changes as model_changes


@dataclass(frozen=True)
class IdentityState:
    name: str  # the resource name in the resource group
    client_id: str
    fics: tuple[ObservedFic, ...]
    complete: bool = True  # every page was read
    error: str = ""


@dataclass(frozen=True, order=True)
class Namespace:
    name: str
    terminating: bool = False  # deletionTimestamp set: gone for this job, though still listed
    client_id: str | None = None  # what its workspace ServiceAccount names; None: no such SA or annotation
    created: datetime | None = field(default=None, compare=False)  # creationTimestamp: time to credential


@dataclass(frozen=True, order=True)
class Relocation:
    """A namespace whose FIC moved to `identity`, as this job's record (a ConfigMap) holds it: ARM FICs carry
    no creation time, so `since` is when this job created, or first saw, the FIC there."""

    namespace: str
    identity: str
    since: datetime


@dataclass(frozen=True)
class Observed:
    namespaces: tuple[Namespace, ...]
    namespaces_complete: bool
    identities: tuple[IdentityState, ...]  # in pool order: the order is the shard contract
    namespaces_error: str = ""
    accounts_error: str = ""  # the workspace ServiceAccount list failed: placement is unknown
    relocations: tuple[Relocation, ...] = ()
    state_error: str = ""  # the relocation record could not be read
    state_problems: tuple[str, ...] = ()  # record entries that did not parse (dropped: their clock restarts)
    state_version: str | None = None  # the record's resourceVersion; None: there is none yet
    ib: BindingView = field(default_factory=BindingView)  # identity bindings and RBAC (--mode other than fic)
    issuer_problem: str = ""  # --issuer could not be checked against its discovery document


@dataclass(frozen=True)
class PutFic:
    identity: str
    client_id: str
    fic: str
    namespace: str
    spec: FicSpec
    reason: str
    phase: int = 0  # urgency tier: the apply starts lower tiers first (plan.py)
    update: bool = False
    namespace_created: datetime | None = field(default=None, compare=False)  # for time to credential
    before: FicSpec | None = field(default=None, compare=False)  # an update's FIC as it is now

    @property
    def kind(self) -> str:
        return "update" if self.update else "create"

    def describe(self) -> dict[str, str]:
        return _columns(self.phase, self.identity, self.kind, self.fic, self.namespace, self.reason)

    def document(self) -> dict[str, Any]:
        after = _spec_fields(self.spec)
        changes = model_changes(_spec_fields(self.before) if self.before else None, after) if self.update else []
        return {**_document(self.phase, self.identity, self.fic, self.namespace, self.reason), "changes": changes}


@dataclass(frozen=True)
class DeleteFic:
    identity: str
    client_id: str
    fic: str
    namespace: str
    reason: str
    phase: int = 0
    replaced: bool = False  # a relocation's old FIC: the namespace keeps its FIC on the new identity

    @property
    def kind(self) -> str:
        return "delete"

    def describe(self) -> dict[str, str]:
        return _columns(self.phase, self.identity, self.kind, self.fic, self.namespace, self.reason)

    def document(self) -> dict[str, Any]:
        return {
            **_document(self.phase, self.identity, self.fic, self.namespace, self.reason),
            "replaced": self.replaced,
        }


@dataclass(frozen=True)
class RecordRelocations:
    """Replace the relocation record with `relocations` (written last, after the FIC writes). `finishing` are
    the entries whose old FIC this plan deletes: they leave the record, unless that delete fails."""

    relocations: tuple[Relocation, ...]
    reason: str
    phase: int = 0
    version: str | None = None  # the resourceVersion read: a concurrent writer makes this write fail (409)
    finishing: tuple[Relocation, ...] = ()

    @property
    def kind(self) -> str:
        return "record"

    @property
    def identity(self) -> str:
        return "-"

    def describe(self) -> dict[str, str]:
        return _columns(self.phase, "-", "record", "relocations", f"{len(self.relocations)} namespace(s)", self.reason)

    def document(self) -> dict[str, Any]:
        return {
            "target": "relocation record",
            "reason": self.reason,
            "phase": self.phase,
            "namespaces": sorted(r.namespace for r in self.relocations),
            "finishing": sorted(r.namespace for r in self.finishing),
        }


FicAction = PutFic | DeleteFic
Action = PutFic | DeleteFic | RecordRelocations


def _document(phase: int, identity: str, fic: str, namespace: str, reason: str) -> dict[str, Any]:
    """The JSON of a FIC action (lib.render.action_document adds kind and changes)."""
    return {
        "target": f"{identity}/{fic}",
        "reason": reason,
        "phase": phase,
        "identity": identity,
        "fic": fic,
        "namespace": namespace,
    }


def _spec_fields(spec: FicSpec) -> dict[str, Any]:
    return {"issuer": spec.issuer, "subject": spec.subject, "audiences": list(spec.audiences)}


# The text plan names each urgency tier (plan.py's TIER_*), so a change ticket reads what runs first without the
# docs; the JSON keeps the number, which sorts.
PHASE_NAMES = {0: "uncovered", 1: "repair", 2: "prune", 3: "record"}


def _columns(phase: int, identity: str, kind: str, fic: str, namespace: str, reason: str) -> dict[str, str]:
    return {
        "phase": PHASE_NAMES.get(phase, str(phase)),
        "identity": identity,
        "action": kind,
        "fic": fic,
        "namespace": namespace,
        "reason": reason,
    }
