"""keyvault-sync: keep each allowlisted secret of the seed Key Vault present, current and enabled in the cluster
Key Vault. Observe with the two vaults' list calls (a seed secret's versions list only where the lists cannot
decide, detect.py); read a value only to copy it or to compare it before adopting; write in parallel under one
pace and a run budget (apply.py).

See docs/keyvault-sync.md for the settings, the exit codes and the safety rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from jobs.keyvault_sync.apply import Clients, apply
from jobs.keyvault_sync.detect import current_version, needs_versions
from jobs.keyvault_sync.plan import SyncState, plan
from jobs.keyvault_sync.roles import SEED_NEEDS, TARGET_NEEDS
from jobs.keyvault_sync.settings import Settings
from lib import harness
from lib.auth_choice import check_azure, connect_azure
from lib.budget import RunBudget
from lib.harness import JobSpec
from lib.model import Plan, Report
from lib.settings import label_of

NAME = "keyvault-sync"
# The pace's burst: 5 s worth, at most 125 new versions (125 at the default 25/s), well under Key Vault's bucket
# of 300 per 10 s per vault, which every other writer to the vault shares.
CREATE_BURST_S, CREATE_BURST = 5.0, 125.0


def run_budget(max_seconds: float, creates_per_second: float) -> RunBudget:
    burst_seconds = min(CREATE_BURST_S, CREATE_BURST / creates_per_second)
    return RunBudget(max_seconds, creates_per_second, burst_seconds=burst_seconds)


def connect(settings: Settings) -> Clients:
    """One credential for both vaults. Its audience is not ours to pick: the Key Vault SDK asks for the scope
    the vault's 401 challenge names (`resource="https://vault.azure.net"`, or a sovereign cloud's vault domain)
    and, unless --keyvault-verify-challenge-resource is false, refuses a challenge whose resource domain the
    vault URL's host does not end in, so a token only goes to a host inside its own audience's domain."""
    from lib.clients.keyvault import KeyVault  # azure-core and the Key Vault SDK: ~45 ms that `--help` need not pay

    credential = connect_azure(settings.azure_auth, label_of(Settings, "azure_auth"))
    verify = settings.verify_challenge_resource
    # The clock starts before the first call; new versions are paced by the budget's bucket, shared by workers.
    budget = run_budget(settings.max_run_seconds, settings.creates_per_second)
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
        ),
        budget=budget,
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
        deferred = Gauge(
            "cwj_keyvault_sync_deferred_actions",
            "Actions left for the next run (run budget, or still throttled)",
            ["kind"],
            registry=registry,
        )
        counts = Counter(o.action.kind for o in report.outcomes if o.result == "deferred")
        for kind in ("copy", "recover-copy", "adopt", "update", "prune"):
            deferred.labels(kind).set(counts[kind])

    pushgateway.publish(
        settings.pushgateway_url, NAME, report, exit_code=code, succeeded=code == harness.EXIT_OK, extra=extra
    )


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
    examples=(
        "keyvault-sync --dry-run --source-vault-url https://kv-seed.vault.azure.net \\",
        "    --target-vault-url https://kv-aks1.vault.azure.net --allowlist-file allowlist.yaml",
        "keyvault-sync --prune            # also soft-delete secrets this job wrote that left the allowlist",
    ),
)


def main() -> None:
    harness.main(SPEC)
