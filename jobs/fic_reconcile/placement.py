"""Where each workspace namespace's FIC belongs, and which FICs are ours (pure).

The truth is what the pod will present: the Workload Identity webhook injects the client id written on the
namespace's `workspace` ServiceAccount (`azure.workload.identity/client-id`) into every pod at admission. So:
- the SA names a pool member: the FIC goes on that identity, whatever the shard rule says (a disagreement is
  reported: the template and this job compute different shards, and capacity planning is off);
- no SA yet, or no annotation: the shard rule predicts, so the credential exists before the first pod;
- the SA names a client id outside the pool: no FIC (a template bug or tampering; every pool identity carries
  the same rights, so following an annotation grants nothing a pool member would not have anyway).

Ownership: a FIC is ours when its name carries our prefix AND its issuer is this cluster's. Several clusters
may share one pool, each with its own issuer; a prefixed FIC with another issuer is another cluster's: never
updated or deleted, only counted toward the identity's limit. ARM names are case-insensitive, so is ownership.

Trust: any FIC on a pool identity lets its issuer's tokens act as that identity. An issuer that is neither
this cluster's nor declared (--known-issuers: the other clusters sharing the pool) is foreign, whatever the
FIC's name: a possible backdoor, reported (findings.py) and, like every FIC not ours, never touched. Issuers
compare exactly, as Entra compares a token's `iss` with the FIC's issuer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from jobs.fic_reconcile.model import IdentityState, Namespace
from jobs.fic_reconcile.shard import shard_index
from lib.clients.arm_types import ObservedFic
from lib.model import Finding


@dataclass(frozen=True)
class Placement:
    targets: dict[str, str]  # namespace -> identity name; namespaces with a foreign client id are absent
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # annotated, predicted, disagreeing, foreign


def place_namespaces(workspaces: Iterable[Namespace], identities: Sequence[IdentityState], rule: str) -> Placement:
    pool = [i.name for i in identities]
    by_client = {i.client_id.lower(): i.name for i in identities}
    targets: dict[str, str] = {}
    findings: list[Finding] = []
    counts = dict.fromkeys(("annotated", "predicted", "disagreeing", "foreign"), 0)
    for ns in sorted(workspaces):
        predicted = pool[shard_index(ns.name, len(pool), rule)]
        if ns.client_id is None:
            targets[ns.name] = predicted
            counts["predicted"] += 1
        elif ns.client_id.lower() in by_client:
            targets[ns.name] = named = by_client[ns.client_id.lower()]
            counts["annotated"] += 1
            if named != predicted:
                counts["disagreeing"] += 1
                findings.append(disagreement(ns.name, named, predicted, rule))
        else:
            counts["foreign"] += 1
            findings.append(foreign_client(ns.name, ns.client_id))
    return Placement(targets, findings, counts)


def disagreement(namespace: str, named: str, predicted: str, rule: str) -> Finding:
    message = (
        f"its workspace ServiceAccount names {named}, --shard-hash {rule} predicts {predicted}: "
        "the FIC follows the ServiceAccount; make the template and --shard-hash use the same rule"
    )
    return Finding("warning", "shard-disagrees", namespace, message)


def foreign_client(namespace: str, client_id: str) -> Finding:
    message = (
        f"its workspace ServiceAccount names client id {client_id}, which is not in the pool: no FIC is created "
        "(a template bug or tampering; existing FICs of ours are kept)"
    )
    return Finding("error", "foreign-client-id", namespace, message)


# ---- ownership ------------------------------------------------------------------------------------------


def is_ours(fic: ObservedFic, prefix: str, issuer: str) -> bool:
    return has_prefix(fic.name, prefix) and fic.spec.issuer == issuer


def has_prefix(name: str, prefix: str) -> bool:
    return name.lower().startswith(prefix.lower())


def split_by_owner(
    identities: Sequence[IdentityState], prefix: str, issuer: str
) -> tuple[dict[str, dict[str, ObservedFic]], dict[str, dict[str, ObservedFic]]]:
    """(ours, other clusters'): identity -> namespace -> the prefixed FIC there, split by issuer."""
    ours: dict[str, dict[str, ObservedFic]] = {i.name: {} for i in identities}
    others: dict[str, dict[str, ObservedFic]] = {i.name: {} for i in identities}
    for identity in identities:
        for fic in identity.fics:
            if has_prefix(fic.name, prefix):
                owner = ours if fic.spec.issuer == issuer else others
                owner[identity.name][fic.name[len(prefix) :].lower()] = fic
    return ours, others


def foreign_issuer_fics(
    identities: Sequence[IdentityState], issuer: str, known: Iterable[str]
) -> list[tuple[str, ObservedFic]]:
    """(identity, FIC) for every FIC whose issuer is neither `issuer` nor in `known`, in pool then name order."""
    trusted = {issuer, *known}
    return [
        (identity.name, fic)
        for identity in identities
        for fic in sorted(identity.fics, key=lambda f: f.name.lower())
        if fic.spec.issuer not in trusted
    ]


def collision(namespace: str, identity: str, theirs: ObservedFic, issuer: str) -> Finding:
    message = (
        f"{identity} already holds {theirs.name} for issuer {theirs.spec.issuer}, another cluster's, while this "
        f"cluster ({issuer}) needs that name: give each cluster sharing the pool its own --fic-prefix"
    )
    return Finding("error", "name-collision", namespace, message)
