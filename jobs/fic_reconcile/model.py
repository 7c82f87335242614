"""What fic-reconcile observes and the actions its plan orders: plain data, shared by the plan
(plan.py), its findings (findings.py) and the job (job.py), so none of them imports another for a type."""

from __future__ import annotations

from dataclasses import dataclass

from lib.clients.arm_types import FicSpec, ObservedFic


@dataclass(frozen=True)
class IdentityState:
    name: str  # the resource name in the resource group
    client_id: str
    fics: tuple[ObservedFic, ...]
    complete: bool = True  # every page was read
    error: str = ""


@dataclass(frozen=True)
class Observed:
    namespaces: tuple[str, ...]
    namespaces_complete: bool
    identities: tuple[IdentityState, ...]  # in pool order: the order is the shard contract
    namespaces_error: str = ""


@dataclass(frozen=True)
class PutFic:
    identity: str
    client_id: str
    fic: str
    namespace: str
    spec: FicSpec
    reason: str
    phase: int = 0
    update: bool = False

    @property
    def kind(self) -> str:
        return "update" if self.update else "create"

    def describe(self) -> dict[str, str]:
        return _columns(self.phase, self.identity, self.kind, self.fic, self.namespace, self.reason)


@dataclass(frozen=True)
class DeleteFic:
    identity: str
    client_id: str
    fic: str
    namespace: str
    reason: str
    after_put: bool = False  # only once this namespace's FIC on its shard was written (earlier phase)
    phase: int = 0

    @property
    def kind(self) -> str:
        return "delete"

    def describe(self) -> dict[str, str]:
        return _columns(self.phase, self.identity, self.kind, self.fic, self.namespace, self.reason)


FicAction = PutFic | DeleteFic


def _columns(phase: int, identity: str, kind: str, fic: str, namespace: str, reason: str) -> dict[str, str]:
    return {
        "phase": str(phase),
        "identity": identity,
        "action": kind,
        "fic": fic,
        "namespace": namespace,
        "reason": reason,
    }
