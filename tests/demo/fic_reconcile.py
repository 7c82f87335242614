"""fic-reconcile in `make demo`: 12 workspace namespaces (one whose ServiceAccount names its identity) and a
FIC someone else owns, then dry-run, apply, apply again (nothing to do), a few namespaces go away (one held
Terminating by a finalizer), the delete guard refuses a plan that would delete every FIC, and a pool that
grows 3 -> 4 relocates credentials: create at once, delete the old copies after the grace; last, the migration
to AKS identity bindings (`--mode both`, then `identity-binding`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity
from kubernetes import client as k8s

from lib.clients.kube import core_api
from tests.demo import Demo


def _msi(demo: Demo) -> ManagedServiceIdentityClient:
    env, ca = demo.env, str(demo.platform.ca_path)
    credential = demo.platform.azure_credential()
    return ManagedServiceIdentityClient(
        credential, env["AZURE_SUBSCRIPTION_ID"], base_url=env["CWJ_ARM_ENDPOINT"], connection_verify=ca
    )


def run(demo: Demo) -> None:
    b = demo.platform.baseline
    kube = core_api(demo.env)
    names = [
        f"ameide-ws-{n}"
        for n in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "nia")
    ]
    for name in names:
        kube.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    arm = _msi(demo)
    foreign = FederatedIdentityCredential(
        issuer="https://token.actions.githubusercontent.com",
        subject="repo:org/infra:environment:prod",
        audiences=["api://AzureADTokenExchange"],
    )
    arm.federated_identity_credentials.create_or_update(
        b.pool_resource_group, b.pool_identity_name(0), "github-infra-prod", foreign
    )
    named = b.pool_client_ids[2]
    sa = k8s.V1ServiceAccount(
        metadata=k8s.V1ObjectMeta(name="workspace", annotations={"azure.workload.identity/client-id": named})
    )
    kube.create_namespaced_service_account("ameide-ws-nia", sa)
    demo.say("seeded 12 workspace namespaces and one FIC that belongs to someone else (github-infra-prod);")
    demo.say("ameide-ws-nia's workspace ServiceAccount names pool identity 2: its FIC follows the annotation")

    demo.job(
        "fic-reconcile",
        "--dry-run",
        expect=1,
        title="what would change (nothing is written); github-infra-prod's issuer is nobody's: foreign-issuer, exit 1",
    )
    known = {"CWJ_KNOWN_ISSUERS": "https://token.actions.githubusercontent.com"}
    demo.say("github-infra-prod is the infra team's, on purpose: declare its issuer (--known-issuers) from now on")
    demo.job("fic-reconcile", env=known, title="apply: one FIC per namespace, on its CRC-32 shard")
    demo.job("fic-reconcile", env=known, title="again: converged, zero writes")

    kube.patch_namespace(names[2], {"metadata": {"finalizers": ["example.com/backup"]}})
    for name in names[:3]:
        kube.delete_namespace(name)
    # Namespaces stay Terminating until the namespace controller has removed their content (5 s by default);
    # a finalizer of someone else's (a backup tool, say) keeps one listed as Terminating far longer.
    demo.platform.clock.advance(demo.platform.kube.settings["namespace_cleanup_seconds"])
    demo.say(f"three workspaces were deleted; {names[2]} stays Terminating, held by a finalizer")
    demo.job("fic-reconcile", env=known, title="their three FICs go (gone or Terminating); github-infra-prod stays")

    demo.say("safety: a broken namespace selector makes every workspace look gone")
    demo.job(
        "fic-reconcile", "--namespace-selector", "team=nobody", expect=3, env=known, title="refused, nothing written"
    )

    new = arm.user_assigned_identities.create_or_update(
        b.pool_resource_group, b.pool_identity_name(3), Identity(location=b.location)
    )
    grown = {**known, "AZURE_CLIENT_IDS_JSON": json.dumps([*b.pool_client_ids, new.client_id])}
    demo.say("the pool grows to 4 identities: most namespaces without an annotated ServiceAccount change shard")
    now = datetime.now(UTC)
    demo.job("fic-reconcile", "--dry-run", env=grown, title="review: creates on the new shards, deletes nothing yet")
    demo.job("fic-reconcile", env=grown, title="relocate: new FICs now, old ones kept and recorded")
    later = (now + timedelta(minutes=61)).isoformat()
    demo.job("fic-reconcile", "--now", later, env=grown, title="61 minutes later: the grace is over, old FICs go")
    demo.job("fic-reconcile", "--now", later, env=grown, title="converged")

    demo.say("moving to AKS identity bindings (docs/identity-bindings.md): `both` adds one binding and its RBAC per")
    demo.say("identity beside the FICs, while templates add the binding annotation; `identity-binding` then prunes")
    demo.job("fic-reconcile", "--mode", "both", "--dry-run", "--now", later, env=grown, title="the RBAC diff")
    demo.job("fic-reconcile", "--mode", "both", "--now", later, env=grown, title="bindings, roles, subjects")
    demo.job("fic-reconcile", "--mode", "identity-binding", "--dry-run", "--now", later, env=grown,
             title="the migration: our per-namespace FICs would go, the bindings are in place")  # fmt: skip
    demo.job("fic-reconcile", "--mode", "identity-binding", "--now", later, env=grown, title="prune our FICs")
    demo.job("fic-reconcile", "--mode", "identity-binding", "--now", later, env=grown, title="converged")
    demo.job("fic-reconcile", env={"AZURE_CLIENT_IDS_JSON": "[]"}, expect=2, title="bad input: exit 2, one line")
