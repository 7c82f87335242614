"""Change detection from the two vaults' secret lists: which allowlisted seed secrets changed since the job last
copied them, decided without a versions list or a value read wherever the lists can decide. Pure.

What a secrets list shows (GET /secrets): per secret the *current* version's attributes (enabled, nbf, exp,
created, updated), tags and content type; never the version id or the value. Two kinds of seed change:
- properties (enable/disable, expiry, not-before, tags, content type): the list shows them, so the plan compares
  them with the target's directly, whatever `updated` says;
- a new version (a rotation, or a delete-purge-recreate): only `updated` shows it, since a new version is
  created with `updated = created` = its creation second (every recorded SetSecret answer). A PATCH is meant to
  move `updated` too ("Last updated time in UTC", spec SecretAttributes), but nothing here relies on that.

The marker: each target version the job writes carries SOURCE_VERSION_TAG (the seed version copied) and,
when it is safe, SOURCE_UPDATED_TAG (that seed version's `updated`, Unix seconds). Then "seed listed
`updated` == the target's SOURCE_UPDATED_TAG" proves the seed is unchanged -- if the job saw the seed at a
moment strictly later than that second. `updated` has whole-second resolution: a change made later within
the same second as the one the job copied would carry the same `updated`, and would be missed forever. The
job therefore records the tag only when it observed the seed at a vault time after `updated + CLOCK_MARGIN`,
measured by the seed vault's own clock: the HTTP `Date` of an answer received *before* the observing request
was sent (every real Key Vault answer carries one; see the recorded responses under tests/api_specs/). A
change of the seed after such an observation happens at or after that `Date` second, so its `updated` is
larger than the recorded one. Otherwise the tag is left off, and the next run checks that one secret's
versions list (the "per-secret check") and records the tag then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from jobs.keyvault_sync.allowlist import Allowlist
from lib.clients.keyvault_types import SecretMeta

OWNER_TAG = "cwj-managed-by"
OWNER_VALUE = "coder-wi-jobs-keyvault-sync"
SOURCE_VERSION_TAG = "cwj-source-version"
SOURCE_UPDATED_TAG = "cwj-source-updated"
RESERVED_TAGS = (OWNER_TAG, SOURCE_VERSION_TAG, SOURCE_UPDATED_TAG)
# Seconds the `Date` of an answer must be past a version's `updated` before that `updated` is a safe marker:
# the `Date` and the attribute stamps come from different clocks of the service -- azure-sdk-for-net's recorded
# UpdateSecret and UpdateEnabled sessions show a `Date` one second *before* the `created` of the version the
# same answer returns -- so a disagreement of up to one second either way is allowed for.
CLOCK_MARGIN = 1


def is_ours(meta: SecretMeta) -> bool:
    return meta.props.tags.get(OWNER_TAG) == OWNER_VALUE


def settled(updated: int | None, seen_at: int | None) -> bool:
    """Whether a seed version last changed at `updated` was observed by a request the vault handled after
    that second (`seen_at`: the vault's `Date` on an answer received before the request was sent)."""
    return updated is not None and seen_at is not None and updated + CLOCK_MARGIN < seen_at


def marker(updated: int | None, seen_at: int | None) -> str | None:
    """The SOURCE_UPDATED_TAG value to record, or None when recording it would not be safe."""
    return str(updated) if settled(updated, seen_at) else None


def list_decides(seed: SecretMeta, target: SecretMeta) -> bool:
    """The target (ours) is a copy of the seed's current version with its current properties, as far as the
    two lists show: the recorded seed `updated` equals the listed one."""
    recorded = target.props.tags.get(SOURCE_UPDATED_TAG)
    return (
        is_ours(target)
        and bool(target.props.tags.get(SOURCE_VERSION_TAG))
        and seed.updated is not None
        and recorded == str(seed.updated)
    )


def needs_versions(
    allowlist: Allowlist, source: Mapping[str, SecretMeta], target: Mapping[str, SecretMeta]
) -> list[str]:
    """Seed secrets whose versions list the plan needs: allowlisted, present and enabled in the seed, with a
    live target written by this job that the lists cannot decide. Everything else is decided without it: a
    missing target is copied (the read names the version), a soft-deleted one is recovered and decided by
    its tags, an unmanaged one is compared by value. Sorted, de-duplicated, as the seed spells them."""
    wanted: dict[str, str] = {}
    for entry in allowlist.entries:
        seed = source.get(entry.source.lower())
        current = target.get(entry.target.lower())
        if seed is None or not seed.props.enabled or current is None or not is_ours(current):
            continue
        if not list_decides(seed, current):
            wanted.setdefault(seed.name.lower(), seed.name)
    return sorted(wanted.values(), key=str.lower)


def current_version(versions: Iterable[SecretMeta]) -> SecretMeta | None:
    """The current version from a versions list: the newest by creation time. None when the list is empty
    or the newest second holds two versions (the list does not say which one is current; a read must)."""
    dated = [v for v in versions if v.version and v.created is not None]
    if not dated:
        return None
    newest = max(v.created or 0 for v in dated)
    top = [v for v in dated if v.created == newest]
    return top[0] if len(top) == 1 else None
