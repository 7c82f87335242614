"""fic-reconcile's fault matrix: Entra ID (token), ARM (identities, FICs) and Kubernetes (namespace list).

The world before each case: four workspace namespaces, three of them with their FIC already on their shard's
identity, and one FIC left behind by a namespace that is gone, on an identity that also holds two unmanaged
FICs (so with ARM's page size set to 2 its FIC list has two pages). A converged run creates the missing FIC
and deletes the orphan; a failed one must name the dependency and the call, and when the failure is in what
the job observed, the orphan must survive: no delete on the strength of an incomplete observation.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import yaml
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential

from lib.clients.azure_auth import azure_credential
from tests.conftest import Control
from tests.emulators.platform import Platform
from tests.faults.common import (
    DELAY_PAST_TIMEOUT,
    Case,
    Converged,
    Deferred,
    Fails,
    case,
    case_env,
    check_outcome,
    fault,
    run_case,
)

pytestmark = pytest.mark.e2e

LIVE = ["ameide-ws-alpha", "ameide-ws-bravo", "ameide-ws-charlie", "ameide-ws-delta"]  # delta has no FIC yet
GONE = "ameide-ws-gone"  # its namespace no longer exists; its FIC is ours
AUDIENCE = "api://AzureADTokenExchange"
MALFORMED = '{"value": [{"name": "coder-ws-'
T = DELAY_PAST_TIMEOUT


def shard(ns: str, size: int = 3) -> int:
    return zlib.crc32(ns.encode()) % size


GONE_ID = f"id-coder-ws-pool-{shard(GONE)}"  # the identity holding the orphan and two unmanaged FICs
ON_GONE_ID = f"/{GONE_ID}/"
FILLERS = 500  # lib/clients/kube.py reads namespaces 500 a page: 500 more make the list two pages


CASES = [
    # ---- Entra ID: the token the ARM client asks for (not a list: no paged case) ------------------------------
    case("entra-refused", Fails(("Entra ID", "token")), env={"AZURE_AUTHORITY_HOST": "closed"}),
    case("entra-timeout", Converged(("entra", "token")), fault("entra", "token", delay=T)),
    case("entra-500-once", Converged(("entra", "token")), fault("entra", "token", status=500)),
    case("entra-503-always", Fails(("Entra ID", "token", "503")), fault("entra", "token", status=503, count=None)),
    case(
        "entra-429-retry-after",
        Converged(("entra", "token"), waited=1.0),
        fault("entra", "token", status=429, retry_after=1),
    ),
    # Retry-After: 3600 is waited only up to the cap (lib/clients/azure_auth.py CappedRetryPolicy: 30 s or
    # --retry-deadline, 3 s here), then retried: the run ends in seconds, converged, or failed and named when
    # Entra keeps refusing. The cap is for all of one token request's waits together: a retry per capped wait
    # (azure-identity's 3) held the run 9 s against a 3 s --retry-deadline.
    case(
        "entra-429-retry-after-3600-once",
        # waited: the 3 s less the refused request's own time (at most the 1 s --request-timeout); a backoff
        # instead of Retry-After would be 0.375 s
        Converged(("entra", "token"), waited=1.9),
        fault("entra", "token", status=429, retry_after=3600),
        within=20,
    ),
    case(
        "entra-429-retry-after-3600-always",
        Fails(("Entra ID", "token", "429"), ("entra", "token", 2)),  # the try, one capped wait, one retry
        fault("entra", "token", status=429, retry_after=3600, count=None),
        within=15,
    ),
    case(
        "entra-401",
        Fails(("Entra ID", "token", "401"), ("entra", "token", 1)),
        fault("entra", "token", status=401, code="invalid_client", count=None),
    ),
    case(
        "entra-403",
        Fails(("Entra ID", "token", "403"), ("entra", "token", 1)),
        fault("entra", "token", status=403, code="unauthorized_client", count=None),
    ),
    case("entra-malformed-json", Fails(("Entra ID", "token")), fault("entra", "token", body=MALFORMED)),
    # ---- ARM: list identities (connect), list FICs (observe), put/delete FIC (apply) ----------------------------
    case("arm-refused", Fails(("ARM", "list identities")), env={"CWJ_ARM_ENDPOINT": "closed"}),
    case("arm-timeout", Converged(("arm", "fic.list")), fault("arm", "fic.list", delay=T)),
    case("arm-500-once", Converged(("arm", "fic.put")), fault("arm", "fic.put", status=500)),
    case(
        "arm-503-always",
        Fails(("ARM", "FIC list", "503")),
        fault("arm", "fic.list", status=503, count=None, match=ON_GONE_ID),
    ),
    case("arm-429-retry-after", Converged(("arm", "fic.put")), fault("arm", "fic.put", status=429, retry_after=1)),
    # Throttling that outlasts the run budget: the write is deferred, not failed; the next run converges.
    case(
        "arm-429-sustained-past-the-budget",
        Deferred(),
        fault("arm", "fic.put", status=429, retry_after=1, count=None),
        args=("--max-run-seconds", "8"),
        observing=False,
    ),
    case(
        "arm-429-retry-after-past-the-budget",
        Deferred(),
        fault("arm", "fic.put", status=429, retry_after=3600, count=None),
        args=("--max-run-seconds", "12"),
        observing=False,
        within=20,
    ),
    case(
        "arm-401",
        Fails(("ARM", "list identities", "401"), ("arm", "identity.list", 1)),
        fault("arm", "identity.list", status=401, code="InvalidAuthenticationToken", count=None),
    ),
    case(
        "arm-403-on-delete",
        Fails(("ARM", "delete", "403"), ("arm", "fic.delete", 1)),
        fault("arm", "fic.delete", status=403, code="AuthorizationFailed", count=None),
        observing=False,  # the observation was complete: the delete is allowed, and it failed
    ),
    case(
        "arm-malformed-json",
        Fails(("ARM", "FIC list")),
        fault("arm", "fic.list", body=MALFORMED, match=ON_GONE_ID),
    ),
    case(
        "arm-fic-list-page-2-fails",
        Fails(("ARM", "FIC list", "500")),
        fault("arm", "fic.list", status=500, skip=1, count=None, match=ON_GONE_ID),
    ),
    case(
        "arm-identity-list-page-2-fails",
        Fails(("ARM", "list identities", "500")),
        fault("arm", "identity.list", status=500, skip=1, count=None),
    ),
    # ---- Kubernetes: the namespace list ------------------------------------------------------------------------
    case("kube-refused", Fails(("Kubernetes", "namespace list")), env={"KUBECONFIG": "closed"}),
    case("kube-timeout", Converged(("kube", "namespaces.list")), fault("kube", "namespaces.list", delay=T)),
    case("kube-500-once", Converged(("kube", "namespaces.list")), fault("kube", "namespaces.list", status=500)),
    case(
        "kube-503-always",
        Fails(("Kubernetes", "namespace list", "503")),
        fault("kube", "namespaces.list", status=503, count=None),
    ),
    case(
        "kube-429-retry-after",
        Converged(("kube", "namespaces.list")),
        fault("kube", "namespaces.list", status=429, retry_after=1),
    ),
    case(
        "kube-401",
        Fails(("Kubernetes", "namespace list", "401"), ("kube", "namespaces.list", 1)),
        fault("kube", "namespaces.list", status=401, count=None),
    ),
    case(
        "kube-403",
        Fails(("Kubernetes", "namespace list", "403"), ("kube", "namespaces.list", 1)),
        fault("kube", "namespaces.list", status=403, count=None),
    ),
    case(
        "kube-malformed-json",
        Fails(("Kubernetes", "namespace list")),
        fault("kube", "namespaces.list", body='{"kind": "NamespaceList", "items": ['),
    ),
    case(
        "kube-namespace-list-page-2-fails",
        Fails(("Kubernetes", "namespace list", "500")),
        fault("kube", "namespaces.list", status=500, skip=1, count=None),
    ),
]


def _msi(platform: Platform) -> ManagedServiceIdentityClient:
    return ManagedServiceIdentityClient(
        azure_credential(os.environ), platform.baseline.subscription_id, base_url=platform.arm.url
    )


def _fics(platform: Platform) -> dict[str, set[str]]:
    client = _msi(platform)
    group = platform.baseline.pool_resource_group
    return {
        f"id-coder-ws-pool-{i}": {
            f.name for f in client.federated_identity_credentials.list(group, f"id-coder-ws-pool-{i}")
        }
        for i in range(3)
    }


def _seed(platform: Platform, control: Control, fillers: int = 0) -> None:
    session = requests.Session()
    session.verify = str(platform.ca_path)
    session.headers["Authorization"] = f"Bearer {platform.kube.token}"
    for ns in [*LIVE, *(f"filler-{i:03d}" for i in range(fillers))]:
        session.post(f"{platform.kube.url}/api/v1/namespaces", json={"metadata": {"name": ns}}).raise_for_status()
    client = _msi(platform)
    group, issuer = platform.baseline.pool_resource_group, platform.baseline.oidc_issuer
    for ns in [*LIVE[:3], GONE]:
        spec = FederatedIdentityCredential(
            issuer=issuer, subject=f"system:serviceaccount:{ns}:workspace", audiences=[AUDIENCE]
        )
        client.federated_identity_credentials.create_or_update(
            group, f"id-coder-ws-pool-{shard(ns)}", f"coder-ws-{ns}", spec
        )
    for name in ("unmanaged-app-1", "unmanaged-app-2"):
        spec = FederatedIdentityCredential(issuer="https://other.example.test/", subject=name, audiences=[AUDIENCE])
        client.federated_identity_credentials.create_or_update(group, GONE_ID, name, spec)
    control.configure("arm", fic_page_size=2, identity_page_size=2, fic_write_delay_s=0.0)
    control.clear_requests()


def _env_for(c: Case, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    out = {**case_env(c, env), "CWJ_KNOWN_ISSUERS": "https://other.example.test/"}  # the unmanaged apps' issuer
    if c.env.get("KUBECONFIG") == "closed":  # the cluster in the kubeconfig, moved to a closed port
        config = yaml.safe_load(Path(env["KUBECONFIG"]).read_text())
        config["clusters"][0]["cluster"]["server"] = out["KUBECONFIG"]
        path = tmp_path / "kubeconfig-closed.yaml"
        path.write_text(yaml.safe_dump(config))
        out["KUBECONFIG"] = str(path)
    return out


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_fic_reconcile_under_fault(
    c: Case, platform: Platform, control: Control, env: dict[str, str], tmp_path: Path
) -> None:
    _seed(platform, control, fillers=FILLERS if "page-2" in c.id and c.faults[0].service == "kube" else 0)
    before = _fics(platform)
    control.clear_requests()
    proc = run_case("fic-reconcile", c, control, _env_for(c, env, tmp_path), "--output", "json")
    check_outcome(c, proc, control)
    control.clear_faults()
    if isinstance(c.expect, Deferred):  # nothing lost: the next run, without the fault, finishes the work
        assert run_case("fic-reconcile", replace(c, faults=()), control, _env_for(c, env, tmp_path)).returncode == 0
    after = _fics(platform)
    if isinstance(c.expect, Converged | Deferred):
        assert after == {
            identity: {f"coder-ws-{ns}" for ns in LIVE if f"id-coder-ws-pool-{shard(ns)}" == identity}
            | ({"unmanaged-app-1", "unmanaged-app-2"} if identity == GONE_ID else set())
            for identity in before
        }
    elif c.observing:
        assert control.count("arm", "fic.delete") == 0, "deleted on the strength of an incomplete observation"
        assert f"coder-ws-{GONE}" in after[GONE_ID]
