"""The relocation record's format (pure): one ConfigMap key per namespace in relocation, its value a small
JSON object. Plain enough for `kubectl get cm -o yaml` to show an operator what is pending, and small: a
ConfigMap holds at most 1 MiB, some 10,000 entries of this size."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from jobs.fic_reconcile.model import Relocation
from lib.render import rfc3339

DEFAULT_NAME = "coder-wi-jobs-fic-relocations"
LABELS = {"app.kubernetes.io/managed-by": "fic-reconcile", "app.kubernetes.io/part-of": "coder-wi-jobs"}


def encode(relocations: Iterable[Relocation]) -> dict[str, str]:
    return {
        r.namespace: json.dumps({"identity": r.identity, "since": rfc3339(r.since)}, sort_keys=True)
        for r in sorted(relocations)
    }


def decode(data: Mapping[str, str]) -> tuple[tuple[Relocation, ...], list[str]]:
    """(the entries that parse, one line per entry that does not). A bad entry is dropped: its relocation's
    clock restarts, which delays a delete and never causes one."""
    good, bad = [], []
    for namespace, raw in sorted(data.items()):
        try:
            value = json.loads(raw)
            since = datetime.strptime(value["since"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            identity = value["identity"]
            if not isinstance(identity, str) or not identity:
                raise ValueError("identity is not a name")
            good.append(Relocation(namespace, identity, since))
        except (ValueError, TypeError, KeyError) as exc:
            bad.append(f"{namespace}: {type(exc).__name__}: {exc}")
    return tuple(good), bad
