"""Which of the cluster's objects are whose (pure): a pool identity's binding under any name, objects by name,
and a subject as the plan shows it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from jobs.fic_reconcile.identity_binding.model import BindingPolicy
from jobs.fic_reconcile.model import IdentityState
from lib.clients.arm_types import ObservedBinding
from lib.clients.rbac_types import ObservedRole, ObservedRoleBinding, Subject

N = TypeVar("N", ObservedRole, ObservedRoleBinding)


def binding_of(
    identity: IdentityState, bindings: Sequence[ObservedBinding], ib: BindingPolicy
) -> ObservedBinding | None:
    """The cluster's binding of this identity, whoever named it (ARM ids compare case-insensitively)."""
    wanted = ib.identity_id(identity.name).lower()
    for b in sorted(bindings):
        if b.identity_id.lower() == wanted or (b.client_id and b.client_id.lower() == identity.client_id.lower()):
            return b
    return None


def by_name(objects: Sequence[N]) -> dict[str, N]:
    return {o.name: o for o in objects}


def subject_label(subject: Subject, service_account: str) -> str:
    if subject.kind == "ServiceAccount" and subject.name == service_account:
        return subject.namespace
    return f"{subject.kind}:{subject.namespace + '/' if subject.namespace else ''}{subject.name}"
