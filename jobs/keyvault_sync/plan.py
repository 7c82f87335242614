"""keyvault-sync's pure plan: the two vaults as their list calls show them (never a value) and the allowlist
in; ordered actions and findings out. No I/O, no clock (now is an argument).

Ownership: every version the job writes carries OWNER_TAG, SOURCE_VERSION_TAG (the seed version it was
copied from) and, when safe, SOURCE_UPDATED_TAG (that version's `updated`), so "already current" is decided
from the two vaults' list calls alone (detect.py); only secrets carrying OWNER_TAG are ever updated without a
value check or pruned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from jobs.keyvault_sync.allowlist import Allowlist, Entry
from jobs.keyvault_sync.detect import (
    OWNER_TAG,
    OWNER_VALUE,
    RESERVED_TAGS,
    SOURCE_UPDATED_TAG,
    SOURCE_VERSION_TAG,
    is_ours,
    list_decides,
    marker,
)
from lib.clients.keyvault_types import Props, SecretMeta
from lib.model import Finding, Plan
from lib.model import changes as model_changes

__all__ = ["OWNER_TAG", "OWNER_VALUE", "SOURCE_UPDATED_TAG", "SOURCE_VERSION_TAG", "is_ours"]
MAX_TAGS = 15  # Key Vault's limit per secret


@dataclass(frozen=True)
class SyncState:
    """Keys are lower-cased names (Key Vault names are case-insensitive)."""

    source: Mapping[str, SecretMeta] = field(default_factory=dict)  # the seed's list: current version's properties
    target: Mapping[str, SecretMeta] = field(default_factory=dict)  # current version's tags and attributes
    target_deleted: Mapping[str, SecretMeta] = field(default_factory=dict)
    # The per-secret check, only for the seed secrets detect.needs_versions named: the current version from its
    # versions list (None when the list cannot tell which is current: a read decides).
    source_versions: Mapping[str, SecretMeta | None] = field(default_factory=dict)
    source_time: int | None = None  # the seed vault's `Date` on its secrets list (detect.settled)


@dataclass(frozen=True)
class Options:
    adopt: bool = False
    prune: bool = False


# ---- actions --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    """Read the seed's current value and write it as a new target version with the seed's properties."""

    source: str
    target: str
    reason: str
    current_source_version: str | None = None  # what the target already carries: no new version if the read shows it
    target_props: Props | None = None  # the target's properties then, to PATCH instead of writing a version
    kind: str = "copy"

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "source": self.source, "reason": self.reason}

    def document(self) -> dict[str, Any]:
        return {"target": self.target, "reason": self.reason, "source": self.source}


@dataclass(frozen=True)
class RecoverCopy:
    """Recover the soft-deleted target; when its tags show it current, that is all. Otherwise wait until it
    answers, then bring it up to date as a Copy would (the read decides between a PATCH and a new version)."""

    source: str
    target: str
    current: bool
    reason: str
    carried_version: str | None = None
    target_props: Props | None = None
    kind: str = "recover-copy"

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "source": self.source, "reason": self.reason}

    def document(self) -> dict[str, Any]:
        return {"target": self.target, "reason": self.reason, "source": self.source, "already_current": self.current}


@dataclass(frozen=True)
class Adopt:
    """A target not written by us: compare values in memory; equal -> tag it (no new version); different ->
    refuse, or overwrite when --adopt."""

    source: str
    target: str
    overwrite: bool
    kind: str = "adopt"

    def describe(self) -> dict[str, str]:
        otherwise = "overwrite (--adopt)" if self.overwrite else "refuse"
        reason = f"not written by this job: tag it if the value is equal, else {otherwise}"
        return {"kind": self.kind, "target": self.target, "source": self.source, "reason": reason}

    def document(self) -> dict[str, Any]:
        return {**self.describe(), "overwrite": self.overwrite}


@dataclass(frozen=True)
class UpdateProperties:
    """Same value and seed version, drifted properties: PATCH the target's current version."""

    source: str
    target: str
    props: Props
    reason: str
    kind: str = "update"
    before: Props | None = field(default=None, compare=False)  # the target's properties now

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "source": self.source, "reason": self.reason}

    def document(self) -> dict[str, Any]:
        before = props_fields(self.before) if self.before is not None else None
        changes = model_changes(before, props_fields(self.props))
        return {"target": self.target, "reason": self.reason, "source": self.source, "changes": changes}


@dataclass(frozen=True)
class Prune:
    target: str
    kind: str = "prune"

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "source": "", "reason": "ours, no longer allowlisted"}

    def document(self) -> dict[str, Any]:
        return {"target": self.target, "reason": "ours, no longer allowlisted", "source": None}


def props_fields(props: Props) -> dict[str, Any]:
    """A secret's properties as JSON (times in Unix seconds, as Key Vault's wire has them)."""
    return {
        "content_type": props.content_type,
        "tags": dict(sorted(props.tags.items())),
        "enabled": props.enabled,
        "expires_on": props.expires_on,
        "not_before": props.not_before,
    }


Action = Copy | RecoverCopy | Adopt | UpdateProperties | Prune
AdoptionDecision = Literal["tag", "overwrite", "refuse"]


# ---- rules ----------------------------------------------------------------------------------------------


def desired_tags(seed_tags: Mapping[str, str], seed_version: str | None, seed_updated: str | None) -> dict[str, str]:
    tags = {k: v for k, v in seed_tags.items() if k not in RESERVED_TAGS}
    tags[OWNER_TAG] = OWNER_VALUE
    if seed_version:
        tags[SOURCE_VERSION_TAG] = seed_version
    if seed_version and seed_updated:
        tags[SOURCE_UPDATED_TAG] = seed_updated
    return tags


def desired_props(seed: Props, seed_version: str | None, seed_updated: str | None = None) -> Props:
    """What the target's current version should carry: the seed's properties and the job's tags
    (`seed_updated` only when detect.marker found it safe to record)."""
    return Props(
        content_type=seed.content_type,
        tags=desired_tags(seed.tags, seed_version, seed_updated),
        enabled=seed.enabled,
        expires_on=seed.expires_on,
        not_before=seed.not_before,
    )


def too_many_tags(seed: Props) -> bool:
    return len(desired_tags(seed.tags, "v", "0")) > MAX_TAGS


def patch_can_reach(current: Props, desired: Props) -> bool:
    """A PATCH cannot clear a content type, an expiry or a not-before (the SDK omits None); those need a
    new version."""
    return not any(
        cur is not None and want is None
        for cur, want in (
            (current.content_type, desired.content_type),
            (current.expires_on, desired.expires_on),
            (current.not_before, desired.not_before),
        )
    )


def decide_adoption(values_equal: bool, overwrite: bool) -> AdoptionDecision:
    if values_equal:
        return "tag"
    return "overwrite" if overwrite else "refuse"


def prop_drift(current: Props, desired: Props) -> str:
    """Names of the properties that differ, comma-separated ('' when none)."""
    pairs = {
        "content type": (current.content_type, desired.content_type),
        "tags": (dict(current.tags), dict(desired.tags)),
        "enabled": (current.enabled, desired.enabled),
        "expiry": (current.expires_on, desired.expires_on),
        "not-before": (current.not_before, desired.not_before),
    }
    return ", ".join(name for name, (a, b) in pairs.items() if a != b)


# ---- the plan -------------------------------------------------------------------------------------------


def plan(state: SyncState, allowlist: Allowlist, options: Options, now: datetime) -> Plan:
    actions: list[Action] = []
    findings: list[Finding] = []
    states: Counter[str] = Counter()
    for entry in allowlist.entries:
        label, action, entry_findings = plan_entry(entry, state, options, now)
        states[label] += 1
        findings += entry_findings
        if action is not None:
            actions.append(action)
    prunes, orphans = plan_prune(state, allowlist, options)
    actions += prunes
    findings += orphans
    return Plan(actions=tuple(actions), findings=tuple(findings), sections={"entries": dict(sorted(states.items()))})


def plan_entry(
    entry: Entry, state: SyncState, options: Options, now: datetime
) -> tuple[str, Action | None, list[Finding]]:
    seed = state.source.get(entry.source.lower())
    if seed is None:
        message = "not in the seed vault (the seeding contract is broken; every other entry is still synced)"
        return "source-missing", None, [Finding("error", "source-missing", entry.source, message)]
    if not seed.props.enabled:
        message = f"disabled in the seed vault; {entry.target} is left as it is"
        return "source-disabled", None, [Finding("warning", "source-disabled", entry.source, message)]
    if too_many_tags(seed.props):
        message = (
            f"has {len(seed.props.tags)} tags; with the job's {len(RESERVED_TAGS)} the target would exceed "
            f"Key Vault's {MAX_TAGS}"
        )
        return "too-many-tags", None, [Finding("error", "too-many-tags", entry.source, message)]
    findings = _seed_notes(entry, seed, now)
    label, action, more = _target_action(entry, seed, state, options)
    return label, action, findings + more


def _seed_notes(entry: Entry, seed: SecretMeta, now: datetime) -> list[Finding]:
    notes = []
    if seed.props.expires_on is not None and seed.props.expires_on <= now.timestamp():
        notes.append(Finding("warning", "source-expired", entry.source, "expired in the seed vault; copied as is"))
    reserved = sorted(k for k in seed.props.tags if k in RESERVED_TAGS)
    if reserved:
        message = f"carries the job's own tag(s) {', '.join(reserved)}; the job's values replace them on the target"
        notes.append(Finding("warning", "reserved-tag", entry.source, message))
    return notes


def _target_action(
    entry: Entry, seed: SecretMeta, state: SyncState, options: Options
) -> tuple[str, Action | None, list[Finding]]:
    key = entry.target.lower()
    target = state.target.get(key)
    if target is None:
        deleted = state.target_deleted.get(key)
        if deleted is None:
            return "copy", Copy(entry.source, entry.target, "missing in the target"), []
        return _recover_action(entry, seed, deleted, options)
    if not is_ours(target):
        return "adopt", Adopt(entry.source, entry.target, options.adopt), []
    carried = target.props.tags.get(SOURCE_VERSION_TAG)
    if carried and list_decides(seed, target):
        desired = desired_props(seed.props, carried, str(seed.updated))
        return _props_action(entry, target, desired, "")
    return _checked_action(entry, target, carried, state)


def _checked_action(
    entry: Entry, target: SecretMeta, carried: str | None, state: SyncState
) -> tuple[str, Action | None, list[Finding]]:
    """The lists could not decide: the seed's versions list (the per-secret check) names its current version."""
    current = state.source_versions.get(entry.source.lower())
    if current is None or current.version is None:
        return "copy", Copy(entry.source, entry.target, "seed version unknown", carried, target.props), []
    if carried != current.version:
        return "copy", Copy(entry.source, entry.target, "new seed version"), []
    desired = desired_props(current.props, carried, marker(current.updated, state.source_time))
    return _props_action(entry, target, desired, "seed changed: ")


def _props_action(
    entry: Entry, target: SecretMeta, desired: Props, why: str
) -> tuple[str, Action | None, list[Finding]]:
    drift = prop_drift(target.props, desired)
    if not drift:
        return "in-sync", None, []
    if not patch_can_reach(target.props, desired):
        return "copy", Copy(entry.source, entry.target, f"{why}{drift} differ (needs a new version)"), []
    update = UpdateProperties(entry.source, entry.target, desired, f"{why}{drift} differ", before=target.props)
    return "update", update, []


def _recover_action(
    entry: Entry, seed: SecretMeta, deleted: SecretMeta, options: Options
) -> tuple[str, Action | None, list[Finding]]:
    if not is_ours(deleted) and not options.adopt:
        message = "soft-deleted and not written by this job; recover or purge it, or rerun with --adopt"
        return "conflict", None, [Finding("error", "deleted-unmanaged", entry.target, message)]
    carried = deleted.props.tags.get(SOURCE_VERSION_TAG) if is_ours(deleted) else None
    current = bool(carried) and list_decides(seed, deleted)
    if current and prop_drift(deleted.props, desired_props(seed.props, carried, str(seed.updated))):
        current = False
    why = "soft-deleted" + ("" if is_ours(deleted) else ", not ours (--adopt)") + (", current" if current else "")
    return "recover", RecoverCopy(entry.source, entry.target, current, why, carried, deleted.props), []


def plan_prune(state: SyncState, allowlist: Allowlist, options: Options) -> tuple[list[Action], list[Finding]]:
    """Only secrets carrying the ownership tag, and only with --prune; otherwise an info finding."""
    wanted = allowlist.targets
    orphans = sorted((m.name for k, m in state.target.items() if is_ours(m) and k not in wanted), key=str.lower)
    if options.prune:
        return [Prune(name) for name in orphans], []
    message = "written by this job but no longer allowlisted; --prune would soft-delete it"
    return [], [Finding("info", "orphan", name, message) for name in orphans]
