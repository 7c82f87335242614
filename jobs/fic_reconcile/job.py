"""fic-reconcile: one federated identity credential per workspace namespace, on the pool identity its
workspace ServiceAccount names (else the one its shard predicts), and no FIC of ours outliving its namespace.
The plan is plan.py (pure), the settings settings.py, the Kubernetes reads cluster.py; this module only
reads, writes and reports. Docs: docs/fic-reconcile.md."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from jobs.fic_reconcile import cluster
from jobs.fic_reconcile.identity_binding.model import BindingView
from jobs.fic_reconcile.model import Observed
from jobs.fic_reconcile.modes import plan_mode
from jobs.fic_reconcile.settings import FicSettings
from jobs.fic_reconcile.writes import Clients, apply, read_identity
from lib import harness
from lib.auth_choice import check_azure, connect_azure
from lib.budget import RunBudget
from lib.logs import get_logger
from lib.model import Plan, Report
from lib.redact import first_line
from lib.settings import ConfigError, label_of

# The Azure, Kubernetes and Prometheus clients are imported where they are used, not above: `--help` and a
# configuration error (exit 2) then cost ~0.1 s instead of ~0.35 s of imports (BENCHMARKS.md, start-up).

JOB = "fic-reconcile"


def connect(s: FicSettings) -> Clients:
    from azure.core.exceptions import AzureError, HttpResponseError

    from lib.clients.arm_msi import ArmError, ArmMsi, UnknownClientIds, describe_error, error_code

    log = get_logger()
    state_namespace = cluster.state_namespace(s)  # a configuration error before any request
    tenant_id = probe_tenant(s, os.environ)
    issuer_problem = verified_issuer(s)  # a wrong --issuer is a configuration error before any write
    target = s.arm_target()
    credential = connect_azure(s.azure_auth, label_of(FicSettings, "azure_auth"))
    log.info("arm.target", endpoint=target.endpoint, cloud=target.cloud, scope=target.scope)

    arm = ArmMsi(credential, s.subscription_id, s.resource_group, target.endpoint, target.scope)
    try:
        pool = arm.resolve_pool(s.client_ids)
    except UnknownClientIds as exc:
        raise ConfigError(label_of(FicSettings, "client_ids"), f"{exc}; expected the pool's client ids") from None
    except HttpResponseError as exc:
        field = {"ResourceGroupNotFound": "resource_group", "SubscriptionNotFound": "subscription_id"}.get(
            error_code(exc)
        )
        if field is None:
            raise ArmError(f"ARM list identities in {s.resource_group}: {describe_error(exc)}") from None
        raise ConfigError(label_of(FicSettings, field), f"not found ({describe_error(exc)})") from None
    except AzureError as exc:  # connection refused, timeouts, an answer that is not JSON
        raise ArmError(f"ARM list identities in {s.resource_group}: {describe_error(exc)}") from None
    aks = None
    if s.mode != "fic":
        from lib.clients.aks_bindings import AksBindings

        aks = AksBindings(credential, s.cluster(), target.endpoint, target.scope)
    budget = RunBudget(s.max_run_seconds, s.arm_writes_per_second)  # the clock starts before the first call
    return Clients(arm, tuple(pool), state_namespace, budget, tenant_id, aks, issuer_problem)


def probe_tenant(s: FicSettings, environ: Mapping[str, str]) -> str:
    """--probe exchanges workspace tokens in the pool's tenant: AZURE_TENANT_ID, as the workspaces' pods get it."""
    tenant = environ.get("AZURE_TENANT_ID", "").strip()
    if s.probe and not tenant:
        raise ConfigError(
            label_of(FicSettings, "probe"),
            "needs AZURE_TENANT_ID, the pool identities' tenant (in a pod the chart or the Workload Identity "
            "webhook sets it)",
        )
    return tenant


def preflight(s: FicSettings, environ: Mapping[str, str]) -> None:
    """Configuration errors that need the environment, as one line before any request: where the relocation
    record lives, the kubeconfig context, and which Azure credential applies."""
    cluster.state_namespace(s)
    cluster.check_context(s, environ)
    probe_tenant(s, environ)  # before the credential: --probe's own need is the more specific message
    check_azure(s.azure_auth, environ, label_of(FicSettings, "azure_auth"))


def verified_issuer(s: FicSettings) -> str:
    """ "" when the issuer's discovery document names --issuer exactly; raises ConfigError when it names another
    string (a FIC with it could never match); the reason as text when the document could not be read."""
    from jobs.fic_reconcile import issuer

    found = issuer.check(s.issuer, s.issuer_discovery_base)
    if found.problem:
        return found.problem
    if not found.matches:
        hint = " (only the trailing slash differs)" if found.published.rstrip("/") == s.issuer.rstrip("/") else ""
        raise ConfigError(
            label_of(FicSettings, "issuer"),
            f"expected exactly the issuer its discovery document names, {found.published!r}{hint}: Entra compares "
            f"a FIC's issuer with the token's as strings, so {s.issuer!r} would create FICs that never match",
        )
    return ""


def _read_cluster(s: FicSettings, namespace: str) -> cluster.ClusterView:
    try:
        return cluster.read_cluster(cluster.kube_api(s), s, namespace)
    except Exception as exc:  # no usable configuration: nothing from the cluster, so no deletes
        return cluster.ClusterView(namespaces_error=first_line(f"{type(exc).__name__}: {exc}"))


def observe(c: Clients, s: FicSettings) -> Observed:
    """Every identity's FICs (--concurrency at a time) and, beside them, the cluster's side: namespaces,
    workspace ServiceAccounts, the relocation record (the Kubernetes client's ~0.2 s of imports are spent
    while the ARM reads wait on the network)."""
    with ThreadPoolExecutor(max_workers=1) as kube, ThreadPoolExecutor(max_workers=s.concurrency) as workers:
        reading = kube.submit(_read_cluster, s, c.state_namespace)
        binding_view = workers.submit(_read_bindings, c, s) if c.aks is not None else None
        identities = tuple(workers.map(lambda p: read_identity(c.arm, p), c.pool))
        view = reading.result()
        ib = binding_view.result() if binding_view is not None else BindingView()
    return Observed(
        namespaces=view.namespaces,
        namespaces_complete=not view.namespaces_error,
        identities=identities,
        namespaces_error=view.namespaces_error,
        accounts_error=view.accounts_error,
        relocations=view.relocations,
        state_error=view.state_error,
        state_problems=view.state_problems,
        state_version=view.state_version,
        ib=ib,
        issuer_problem=c.issuer_problem,
    )


def _read_bindings(c: Clients, s: FicSettings) -> BindingView:
    from jobs.fic_reconcile.identity_binding.observe import read_binding_view

    assert c.aks is not None
    return read_binding_view(c.aks, s, [p.client_id for p in c.pool])


def plan(state: Observed, s: FicSettings, now: datetime) -> Plan:
    return plan_mode(state, s.policy(), s.binding_policy(), now)


def publish(report: Report, s: FicSettings, code: int) -> None:
    if not s.pushgateway_url:
        return
    from jobs.fic_reconcile.metrics import fic_gauges
    from lib.clients import pushgateway

    pushgateway.publish(
        s.pushgateway_url, JOB, report, exit_code=code, succeeded=code == 0, extra=lambda r: fic_gauges(report, r)
    )


def close(c: Clients) -> None:
    c.arm.close()
    if c.aks is not None:
        c.aks.close()


SPEC = harness.JobSpec(
    name=JOB,
    description="Keep one federated identity credential per workspace namespace on its shard's pool identity.",
    settings=FicSettings,
    connect=connect,
    observe=observe,
    plan=plan,
    apply=apply,
    publish=publish,
    close=close,
    preflight=preflight,
    examples=(
        "fic-reconcile --dry-run          # settings from the env: CWJ_OIDC_ISSUER, AZURE_CLIENT_IDS_JSON, ...",
        "fic-reconcile --dry-run --output json --resource-group rg-pool --subscription-id <sub> \\",
        '    --issuer "$(az aks show -g RG -n AKS --query oidcIssuerProfile.issuerUrl -o tsv)" \\',
        '    --client-ids-json \'["<client-id-1>","<client-id-2>"]\'',
        "fic-reconcile --allow-mass-delete --dry-run   # review a large delete before a one-off run that allows it",
    ),
)


def main() -> None:
    harness.main(SPEC)
