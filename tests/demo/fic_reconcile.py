"""fic-reconcile in `make demo`: 12 workspace namespaces and a FIC someone else owns, then dry-run, apply,
apply again (nothing to do), a few namespaces go away, the delete guard refuses a plan that would delete
every FIC, and a pool that grows 3 -> 4 relocates credentials create-before-delete."""

from __future__ import annotations

import json

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
    demo.say("seeded 12 workspace namespaces and one FIC that belongs to someone else (github-infra-prod)")

    demo.job("fic-reconcile", "--dry-run", title="what would change (nothing is written)")
    demo.job("fic-reconcile", title="apply: one FIC per namespace, on its CRC-32 shard")
    demo.job("fic-reconcile", title="again: converged, zero writes")

    for name in names[:3]:
        kube.delete_namespace(name)
    # Namespaces stay Terminating until the namespace controller has removed their content (5 s by default).
    demo.platform.clock.advance(demo.platform.kube.settings["namespace_cleanup_seconds"])
    demo.say("three workspaces were deleted")
    demo.job("fic-reconcile", title="their three FICs go; github-infra-prod stays")

    demo.say("safety: a broken namespace selector makes every workspace look gone")
    demo.job("fic-reconcile", "--namespace-selector", "team=nobody", expect=3, title="refused, nothing written")

    new = arm.user_assigned_identities.create_or_update(
        b.pool_resource_group, b.pool_identity_name(3), Identity(location=b.location)
    )
    grown = {"AZURE_CLIENT_IDS_JSON": json.dumps([*b.pool_client_ids, new.client_id])}
    demo.say("the pool grows to 4 identities: most namespaces change shard")
    demo.job("fic-reconcile", "--dry-run", env=grown, title="review: phase 0 creates on the new shard, phase 1 deletes")
    demo.job("fic-reconcile", env=grown, title="relocate")
    demo.job("fic-reconcile", env=grown, title="converged")
    demo.job("fic-reconcile", env={"AZURE_CLIENT_IDS_JSON": "[]"}, expect=2, title="bad input: exit 2, one line")
