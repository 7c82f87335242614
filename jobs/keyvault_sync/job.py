"""keyvault-sync: keep each allowlisted secret of the seed Key Vault present, current and enabled in the cluster
Key Vault. Observe with the two vaults' list calls (a seed secret's versions list only where the lists cannot
decide, detect.py); read a value only to copy it or to compare it before adopting.

See docs/keyvault-sync.md for the settings, the exit codes and the safety rules.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from jobs.keyvault_sync.detect import current_version, marker, needs_versions
from jobs.keyvault_sync.plan import (
    MAX_TAGS,
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
from lib.auth_choice import check_azure, connect_azure
from lib.clients.keyvault_types import KeyVaultError, Props
from lib.harness import JobSpec
from lib.model import Finding, Outcome, Plan, Report
from lib.settings import label_of

if TYPE_CHECKING:
    from lib.clients.keyvault import KeyVault

NAME = "keyvault-sync"
Result = Literal["ok", "skipped"]


@dataclass(frozen=True)
class Clients:
    source: KeyVault
    target: KeyVault


def connect(settings: Settings) -> Clients:
    """One credential for both vaults. Its audience is not ours to pick: the Key Vault SDK asks for the scope
    the vault's 401 challenge names (`resource="https://vault.azure.net"`, or a sovereign cloud's vault domain)
    and, unless --keyvault-verify-challenge-resource is false, refuses a challenge whose resource domain the
    vault URL's host does not end in, so a token only goes to a host inside its own audience's domain."""
    from lib.clients.keyvault import KeyVault  # azure-core and the Key Vault SDK: ~45 ms that `--help` need not pay
    from lib.pace import Pacer

    credential = connect_azure(settings.azure_auth, label_of(Settings, "azure_auth"))
    verify = settings.verify_challenge_resource
    creates = Pacer(settings.creates_per_second, burst=max(1.0, 5 * settings.creates_per_second))
    return Clients(
        source=KeyVault(
            settings.source_vault_url, credential, label="seed", needs=SEED_NEEDS, verify_challenge_resource=verify
        ),
        target=KeyVault(
            settings.target_vault_url,
            credential,
            label="target",
            needs=TARGET_NEEDS,
            verify_challenge_resource=verify,
            creates=creates,
        ),
    )


def preflight(settings: Settings, environ: Mapping[str, str]) -> None:
    check_azure(settings.azure_auth, environ, label_of(Settings, "azure_auth"))  # exit 2 in one line


def observe(clients: Clients, settings: Settings) -> SyncState:
    """Both vaults' secrets and the target's deleted secrets (list pages only); then, for the few seed secrets
    the lists cannot decide (detect.needs_versions), their versions lists. The seed's `Date` is read before
    any versions list is sent, so it is a safe lower bound of the time the vault handled each of them."""
    source = {m.name.lower(): m for m in clients.source.list_secrets()}
    source_time = clients.source.server_time
    target = {m.name.lower(): m for m in clients.target.list_secrets()}
    deleted = {m.name.lower(): m for m in clients.target.list_deleted()}
    unsure = needs_versions(settings.allowlist, source, target)
    # Independent calls: ceil(n / concurrency) round trips instead of n.
    with ThreadPoolExecutor(max_workers=settings.concurrency) as workers:
        found = list(workers.map(lambda name: current_version(clients.source.list_versions(name)), unsure))
    versions = {name.lower(): meta for name, meta in zip(unsure, found, strict=True)}
    return SyncState(source, target, deleted, versions, source_time)


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
    refused: KeyVaultError | None = None
    for action in the_plan.actions:
        if refused is not None:  # the role assignment is wrong: every further action would be refused the same way
            outcomes.append(Outcome(action, "failed", f"not attempted: {refused}"))
            continue
        try:
            outcome = handlers[type(action)](action, clients, settings, findings)
        except KeyVaultError as exc:
            outcome = Outcome(action, "failed", str(exc))
            refused = exc if exc.inner == "ForbiddenByRbac" else None
        outcomes.append(outcome)
    return Report(the_plan, tuple(outcomes), tuple(findings))


def _write_copy(clients: Clients, source: str, target: str) -> str:
    """Read the seed's current version and write it to the target. Returns the seed version copied."""
    seen_at = clients.source.server_time  # before the read is sent: detect.settled
    seed = clients.source.read(source)
    props = desired_props(seed.meta.props, seed.meta.version, marker(seed.meta.updated, seen_at))
    if len(props.tags) > MAX_TAGS:
        raise KeyVaultError(f"{source} has {len(seed.meta.props.tags)} tags; the target would exceed {MAX_TAGS}")
    clients.target.set(target, seed.value, props)
    return str(seed.meta.version)


def _refresh(
    clients: Clients, source: str, target: str, carried: str | None, current: Props | None
) -> tuple[Result, str]:
    """Bring a target up to date with the seed's current version: when it already holds that version's value
    (the read names it), PATCH its properties (or nothing); otherwise write a new version."""
    if carried is not None and current is not None:
        seen_at = clients.source.server_time
        seed = clients.source.read(source)  # the lists could not tell; the read names the version
        if seed.meta.version == carried:
            desired = desired_props(seed.meta.props, carried, marker(seed.meta.updated, seen_at))
            if desired == current:
                return "skipped", f"already carries seed version {carried}"
            if patch_can_reach(current, desired):
                clients.target.update(target, None, desired)
                return "ok", f"already carries seed version {carried}: properties updated"
    return "ok", f"new version from seed version {_write_copy(clients, source, target)}"


def _copy(action: Copy, clients: Clients, settings: Settings, findings: list[Finding]) -> Outcome:
    result, detail = _refresh(clients, action.source, action.target, action.current_source_version, action.target_props)
    return Outcome(action, result, detail)


def _recover_copy(action: RecoverCopy, clients: Clients, settings: Settings, findings: list[Finding]) -> Outcome:
    clients.target.recover(action.target)
    if action.current:
        return Outcome(action, "ok", "recovered; its tags show the seed's current version and properties")
    clients.target.wait_until_recovered(action.target, settings.recover_timeout.total_seconds())
    _, detail = _refresh(clients, action.source, action.target, action.carried_version, action.target_props)
    return Outcome(action, "ok", f"recovered, then {detail}")


def _adopt(action: Adopt, clients: Clients, settings: Settings, findings: list[Finding]) -> Outcome:
    seen_at = clients.source.server_time
    seed = clients.source.read(action.source)
    current = clients.target.read(action.target)
    equal = hmac.compare_digest(seed.value.encode(), current.value.encode())  # in memory only, never logged
    decision = decide_adoption(equal, action.overwrite)
    if decision == "refuse":
        message = "exists, was not written by this job and holds a different value; rerun with --adopt to overwrite"
        findings.append(Finding("error", "unmanaged-conflict", action.target, message))
        return Outcome(action, "skipped", "refused: value differs from the seed")
    desired = desired_props(seed.meta.props, seed.meta.version, marker(seed.meta.updated, seen_at))
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
    preflight=preflight,
)


def main() -> None:
    harness.main(SPEC)
