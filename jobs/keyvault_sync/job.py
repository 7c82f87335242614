"""keyvault-sync: keep each allowlisted secret of the seed Key Vault present, current and enabled in the cluster
Key Vault. Observe with list calls only; read a value only to copy it or to compare it before adopting.

See docs/keyvault-sync.md for the settings, the exit codes and the safety rules.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jobs.keyvault_sync.plan import (
    MAX_TAGS,
    SOURCE_VERSION_TAG,
    Adopt,
    Copy,
    Prune,
    RecoverCopy,
    SyncState,
    UpdateProperties,
    decide_adoption,
    desired_props,
    patch_can_reach,
    plan,
)
from jobs.keyvault_sync.roles import SEED_NEEDS, TARGET_NEEDS
from jobs.keyvault_sync.settings import Settings
from lib import harness
from lib.clients.keyvault_types import KeyVaultError, SecretMeta, current_version
from lib.harness import JobSpec
from lib.model import Finding, Outcome, Plan, Report

if TYPE_CHECKING:
    from lib.clients.keyvault import KeyVault

NAME = "keyvault-sync"


@dataclass(frozen=True)
class Clients:
    source: KeyVault
    target: KeyVault


def connect(settings: Settings) -> Clients:
    from lib.clients.azure_auth import azure_credential  # azure-identity and msal: ~65 ms that `--help` need not pay
    from lib.clients.keyvault import KeyVault  # azure-core and the Key Vault SDK: ~45 ms more

    credential = azure_credential(os.environ)
    verify = settings.verify_challenge_resource
    return Clients(
        source=KeyVault(
            settings.source_vault_url, credential, label="seed", needs=SEED_NEEDS, verify_challenge_resource=verify
        ),
        target=KeyVault(
            settings.target_vault_url, credential, label="target", needs=TARGET_NEEDS, verify_challenge_resource=verify
        ),
    )


def observe(clients: Clients, settings: Settings) -> SyncState:
    """Lists only: both vaults' secrets, the target's deleted secrets, and each allowlisted seed secret's
    versions (the secrets list has no version ids, and the current version id is what we compare)."""
    listed = {m.name.lower(): m for m in clients.source.list_secrets()}
    wanted = {e.source.lower() for e in settings.allowlist.entries}
    seeds = [meta for key, meta in listed.items() if key in wanted]
    # One versions list per seed secret and nothing else to wait on: the calls are independent, so the
    # observation costs ceil(n / concurrency) round trips instead of n.
    with ThreadPoolExecutor(max_workers=settings.concurrency) as workers:
        versioned = list(workers.map(lambda meta: _with_current_version(clients.source, meta), seeds))
    source = {meta.name.lower(): meta for meta in versioned}
    target = {m.name.lower(): m for m in clients.target.list_secrets()}
    deleted = {m.name.lower(): m for m in clients.target.list_deleted()}
    return SyncState(source=source, target=target, target_deleted=deleted)


def _with_current_version(vault: KeyVault, meta: SecretMeta) -> SecretMeta:
    return SecretMeta(meta.name, meta.props, current_version(vault.list_versions(meta.name)), meta.created)


def make_plan(state: SyncState, settings: Settings, now: datetime) -> Plan:
    return plan(state, settings.allowlist, settings.options, now)


# ---- apply ------------------------------------------------------------------------------------------------


def apply(the_plan: Plan, clients: Clients, settings: Settings) -> Report:
    outcomes: list[Outcome] = []
    findings: list[Finding] = []
    handlers: dict[type, Callable[..., Outcome]] = {
        Copy: _copy,
        RecoverCopy: _recover_copy,
        Adopt: _adopt,
        UpdateProperties: _update,
        Prune: _prune,
    }
    for action in the_plan.actions:
        try:
            outcome = handlers[type(action)](action, clients, settings, findings)
        except KeyVaultError as exc:
            outcome = Outcome(action, "failed", str(exc))
        outcomes.append(outcome)
    return Report(the_plan, tuple(outcomes), tuple(findings))


def _write_copy(clients: Clients, source: str, target: str) -> str:
    """Read the seed's current version and write it to the target. Returns the seed version copied."""
    seed = clients.source.read(source)
    props = desired_props(seed.meta.props, seed.meta.version)
    if len(props.tags) > MAX_TAGS:
        raise KeyVaultError(f"{source} has {len(seed.meta.props.tags)} tags; the target would exceed {MAX_TAGS}")
    clients.target.set(target, seed.value, props)
    return str(seed.meta.version)


def _copy(action: Copy, clients: Clients, settings: Settings, findings: list[Finding]) -> Outcome:
    if action.current_source_version is not None:
        seed = clients.source.read(action.source)  # the list could not tell; the read names the version
        if seed.meta.version == action.current_source_version:
            return Outcome(action, "skipped", f"already carries seed version {seed.meta.version}")
    version = _write_copy(clients, action.source, action.target)
    return Outcome(action, "ok", f"new version from seed version {version}")


def _recover_copy(action: RecoverCopy, clients: Clients, settings: Settings, findings: list[Finding]) -> Outcome:
    recovered = clients.target.recover(action.target)
    clients.target.wait_until_recovered(action.target, settings.recover_timeout.total_seconds())
    carried = recovered.props.tags.get(SOURCE_VERSION_TAG)
    if action.source_version and carried == action.source_version:
        return Outcome(action, "ok", f"recovered; already carries seed version {carried}")
    version = _write_copy(clients, action.source, action.target)
    return Outcome(action, "ok", f"recovered, then new version from seed version {version}")


def _adopt(action: Adopt, clients: Clients, settings: Settings, findings: list[Finding]) -> Outcome:
    seed = clients.source.read(action.source)
    current = clients.target.read(action.target)
    equal = hmac.compare_digest(seed.value.encode(), current.value.encode())  # in memory only, never logged
    decision = decide_adoption(equal, action.overwrite)
    if decision == "refuse":
        message = "exists, was not written by this job and holds a different value; rerun with --adopt to overwrite"
        findings.append(Finding("error", "unmanaged-conflict", action.target, message))
        return Outcome(action, "skipped", "refused: value differs from the seed")
    desired = desired_props(seed.meta.props, seed.meta.version)
    if decision == "tag" and patch_can_reach(current.meta.props, desired):
        clients.target.update(action.target, current.meta.version, desired)
        return Outcome(action, "ok", "equal value: tagged as ours, no new version")
    version = _write_copy(clients, action.source, action.target)
    why = "value differs, overwritten (--adopt)" if decision == "overwrite" else "equal value, properties need one"
    return Outcome(action, "ok", f"{why}: new version from seed version {version}")


def _update(action: UpdateProperties, clients: Clients, settings: Settings, findings: list[Finding]) -> Outcome:
    clients.target.update(action.target, None, action.props)
    return Outcome(action, "ok", "properties updated, no new version")


def _prune(action: Prune, clients: Clients, settings: Settings, findings: list[Finding]) -> Outcome:
    clients.target.soft_delete(action.target)
    return Outcome(action, "ok", "soft-deleted (recoverable)")


# ---- metrics ----------------------------------------------------------------------------------------------


def publish(report: Report, settings: Settings, code: int) -> None:
    if not settings.pushgateway_url:
        return

    from prometheus_client import CollectorRegistry, Gauge

    from lib.clients import pushgateway

    def extra(registry: CollectorRegistry) -> None:
        entries = Gauge(
            "cwj_keyvault_sync_entries", "Allowlist entries by state before the run", ["state"], registry=registry
        )
        for state, count in dict(report.plan.sections.get("entries", {})).items():
            entries.labels(state).set(count)

    registry = pushgateway.report_registry(NAME, report, code == harness.EXIT_OK, extra)
    pushgateway.push(settings.pushgateway_url, NAME, registry)


SPEC = JobSpec(
    name=NAME,
    description="Copy the allowlisted secrets from the seed Key Vault to the cluster Key Vault.",
    settings=Settings,
    connect=connect,
    observe=observe,
    plan=make_plan,
    apply=apply,
    publish=publish,
)


def main() -> None:
    harness.main(SPEC)
