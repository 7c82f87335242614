"""When a FIC left behind by a relocation may go (pure; `now` is an input).

A namespace's FIC relocates when its placement changes: the ServiceAccount names another pool identity, or,
with no annotation, the pool changed and the shard rule predicts another one. The new FIC is created first;
the old one is deleted only when
- the namespace's ServiceAccount no longer names the old identity (true by construction: placement follows
  the annotation, so an old identity is never the one the SA names), and
- the new FIC was already there when this run observed (never in the run that creates it), and
- it has been there for at least --relocation-grace: Entra honours a new FIC only after it propagates
  (seconds to minutes, AADSTS70021 meanwhile), and a pod started before the SA changed keeps the old client id.

ARM FIC bodies carry no creation time (no `systemData`), so this job keeps its own record: a ConfigMap with
one entry per namespace in relocation, `since` = when this job created the new FIC or first saw it. A lost or
unreadable record only delays deletes (the clock restarts); it never causes one. See state.py for the format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jobs.fic_reconcile.model import DeleteFic, IdentityState, Relocation
from lib.clients.arm_types import FicSpec, ObservedFic
from lib.render import rfc3339


@dataclass(frozen=True)
class Relocations:
    deletes: list[DeleteFic] = field(default_factory=list)  # old FICs whose grace is over
    record: tuple[Relocation, ...] = ()  # the record after this run
    finishing: tuple[Relocation, ...] = ()  # entries whose old FIC is deleted by this run
    waiting: list[dict[str, str]] = field(default_factory=list)  # old FICs kept for now, and until when


def plan_relocations(
    identities: Sequence[IdentityState],
    ours: Mapping[str, Mapping[str, ObservedFic]],
    targets: Mapping[str, str],
    placed: set[str],
    creating: set[str],
    wanted: Mapping[str, FicSpec],
    recorded: Sequence[Relocation],
    now: datetime,
    grace: timedelta,
) -> Relocations:
    """`creating`: namespaces whose FIC on their target this plan creates; `wanted`: the spec per namespace."""
    previous = {r.namespace: r for r in recorded}
    record: dict[str, Relocation] = {}
    finishing: dict[str, Relocation] = {}
    result = Relocations()
    for identity in identities:
        for ns, fic in sorted(ours[identity.name].items()):
            target = targets.get(ns)
            if ns not in placed or target is None or target == identity.name:
                continue  # not a relocation: kept (unplaceable, foreign client id) or already in place
            there = ours[target].get(ns)
            ready = there is not None and there.spec == wanted[ns]
            if not ready and ns not in creating:
                continue  # nothing to move to yet (its target could not be read): keep the old one
            since = _since(previous.get(ns), target, ready, now)
            due = since + grace
            if ready and now >= due:
                finishing[ns] = Relocation(ns, target, since)
                reason = f"relocated: on {target} since {rfc3339(since)}"
                result.deletes.append(DeleteFic(identity.name, identity.client_id, fic.name, ns, reason, replaced=True))
            else:
                record[ns] = Relocation(ns, target, since)
                result.waiting.append(_waiting(ns, identity.name, target, since, due, ready))
    # every old copy of a namespace shares its target and clock, so a namespace is finishing or waiting, not both
    return Relocations(
        result.deletes, tuple(sorted(record.values())), tuple(sorted(finishing.values())), result.waiting
    )


def _since(previous: Relocation | None, target: str, ready: bool, now: datetime) -> datetime:
    """The recorded start stands only for the same target and only while the new FIC exists."""
    if ready and previous is not None and previous.identity == target and previous.since <= now:
        return previous.since
    return now


def _waiting(ns: str, old: str, target: str, since: datetime, due: datetime, ready: bool) -> dict[str, str]:
    return {
        "namespace": ns,
        "from": old,
        "to": target,
        "since": rfc3339(since),
        "old_fic_deleted_after": rfc3339(due),
        "new_fic": "present" if ready else "created by this run",
    }
