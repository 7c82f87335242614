"""What the fic-reconcile plan reports besides its actions: the findings (what it could not do, and why, and
FICs of a foreign issuer) and the sections (per-identity FIC counts, how many namespaces the pool holds before
CRC-32 sharding overflows an identity, the foreign-issuer FICs). Pure, like plan.py, which calls these."""

from __future__ import annotations

from collections.abc import Iterable

from jobs.fic_reconcile.capacity import overflow_upper_bound, pool_size_needed, safe_namespace_count
from jobs.fic_reconcile.model import Observed, PutFic
from lib.clients.arm_types import ObservedFic
from lib.model import Finding

# ---- findings -------------------------------------------------------------------------------------------


def unplaceable_findings(unplaceable: Iterable[str], targets: dict[str, str], limit: int) -> list[Finding]:
    return [
        Finding("error", "unplaceable", ns, f"{targets[ns]} would exceed {limit} FICs; grow the pool")
        for ns in unplaceable
    ]


def stuck_finding(put: PutFic, limit: int) -> Finding:
    message = f"{put.identity} stays at {limit} FICs until FICs relocating away are gone; grow the pool"
    return Finding("error", "unplaceable", put.namespace, message)


def suppressed_finding(n: int) -> Finding:
    return Finding("error", "deletes-suppressed", "plan", f"{n} delete(s) withheld: an observation was incomplete")


def scope_findings(observed: Observed, workspaces: int, ours: int, prefix: str) -> list[Finding]:
    """What a dry-run must not pass as green: an issuer nobody could check, and a namespace scope that matches
    nothing (a typo in the prefix or selector plans 0 actions, or deletes every FIC of ours)."""
    findings = []
    if observed.issuer_problem:
        message = f"--issuer not checked against its discovery document: {observed.issuer_problem}"
        findings.append(Finding("warning", "issuer-unverified", "issuer", message))
    if observed.namespaces_complete and workspaces == 0:
        held = f"; {ours} FIC(s) of ours exist, and the delete guard refuses deleting them all" if ours else ""
        message = f"no namespace matches --namespace-prefix {prefix!r} (and --namespace-selector, if set){held}"
        findings.append(Finding("warning", "no-workspace-namespaces", "namespaces", message))
    return findings


def observation_findings(observed: Observed, blind: set[str]) -> list[Finding]:
    findings = []
    if not observed.namespaces_complete:
        detail = observed.namespaces_error or "incomplete"
        findings.append(Finding("error", "observe-failed", "namespaces", f"Kubernetes namespace list: {detail}"))
    if observed.accounts_error:
        detail = f"Kubernetes ServiceAccount list: {observed.accounts_error}; placement unknown, no writes"
        findings.append(Finding("error", "observe-failed", "serviceaccounts", detail))
    if observed.state_error:
        detail = f"relocation record: {observed.state_error}; no relocation deletes"
        findings.append(Finding("error", "observe-failed", "relocation-record", detail))
    for problem in observed.state_problems:
        findings.append(Finding("warning", "record-entry-dropped", "relocation-record", problem))
    for identity in observed.identities:
        if identity.name in blind:
            detail = identity.error or "incomplete"
            findings.append(
                Finding("error", "observe-failed", identity.name, f"ARM FIC list: {detail}; no writes here")
            )
    return findings


def foreign_issuer_findings(foreign: Iterable[tuple[str, ObservedFic]]) -> list[Finding]:
    """An error per FIC whose issuer nobody declared: an outside workload may act as a pool identity. Error, not
    warning: it fails the run (the CronJob turns red, alerting without a Pushgateway) until someone deletes the
    FIC or declares its issuer; it blocks no write, and the FIC itself is never touched."""
    return [
        Finding(
            "error",
            "foreign-issuer",
            f"{identity}/{fic.name}",
            f"{identity} holds FIC {fic.name} trusting issuer {fic.spec.issuer} for subject {fic.spec.subject}, "
            "which is neither this cluster's issuer nor in --known-issuers: a workload outside the cluster can act "
            "as this pool identity. Delete the FIC if nobody created it on purpose, else add its issuer to "
            "--known-issuers; this job never touches it",
        )
        for identity, fic in foreign
    ]


def foreign_issuer_section(foreign: Iterable[tuple[str, ObservedFic]]) -> dict[str, object]:
    rows = [
        {"identity": identity, "fic": fic.name, "issuer": fic.spec.issuer, "subject": fic.spec.subject}
        for identity, fic in foreign
    ]
    return {"foreign_issuer_credentials": rows}


# ---- capacity -------------------------------------------------------------------------------------------


def capacity_sections(
    observed: Observed,
    ours: dict[str, dict[str, ObservedFic]],
    unmanaged: dict[str, int],
    after: dict[str, int],
    n_namespaces: int,
    limit: int,
) -> dict[str, object]:
    rows = [
        {"identity": i.name, "client_id": i.client_id, "ours": len(ours[i.name]),
         "unmanaged": unmanaged[i.name], "limit": limit, "planned": after[i.name]}
        for i in observed.identities
    ]  # fmt: skip
    caps = [max(0, limit - unmanaged[i.name]) for i in observed.identities]
    return {
        "capacity": rows,
        "pool_capacity": {
            "namespaces": n_namespaces,
            "pool_size": len(caps),
            "overflow_probability_now": round(overflow_upper_bound(n_namespaces, caps), 6),
            "safe_namespaces": safe_namespace_count(caps),
            "pool_size_for_2x": pool_size_needed(2 * n_namespaces, caps, limit),
            "method": "union bound of exact binomial tails, P(overflow) <= 1%",
        },
    }
