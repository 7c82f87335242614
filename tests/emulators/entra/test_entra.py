"""The Entra emulator's client-assertion grant through the real azure-identity credentials: a token only for
an identity that holds a FIC with exactly the assertion's issuer and subject (NOTES.md §3.2), and the AADSTS
errors a workload sees when it does not."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, WorkloadIdentityCredential
from azure.mgmt.msi import ManagedServiceIdentityClient

from lib.clients.azure_auth import azure_credential
from tests.emulators.platform import Platform

ARM = "https://management.azure.com"
EXCHANGE = "api://AzureADTokenExchange"


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


@pytest.fixture
def msi(platform: Platform) -> ManagedServiceIdentityClient:
    """FICs are written the way the job writes them: through ARM with the jobs' own credential."""
    return ManagedServiceIdentityClient(
        azure_credential(os.environ), platform.baseline.subscription_id, base_url=os.environ["CWJ_ARM_ENDPOINT"]
    )


@pytest.fixture
def pool0(platform: Platform) -> tuple[str, str, str]:
    b = platform.baseline
    name = b.pool_identity_name(0)
    return b.pool_resource_group, name, b.client_id(name)


def add_fic(msi: ManagedServiceIdentityClient, rg: str, identity: str, name: str, issuer: str, subject: str) -> None:
    body = {"properties": {"issuer": issuer, "subject": subject, "audiences": [EXCHANGE]}}
    msi.federated_identity_credentials.create_or_update(rg, identity, name, body)


def propagate(platform: Platform) -> None:
    """Let Entra catch up with every FIC written so far: advance the emulated clock by fic_propagation_seconds."""
    platform.clock.advance(platform.entra.settings["fic_propagation_seconds"])


def exchange(platform: Platform, client_id: str, assertion: str, scope: str = f"{ARM}/.default") -> str:
    """A fresh credential (no token cache) presenting `assertion` for `client_id`."""
    credential = ClientAssertionCredential(platform.baseline.tenant_id, client_id, lambda: assertion)
    return credential.get_token(scope).token


def refused(platform: Platform, client_id: str, assertion: str) -> str:
    with pytest.raises(ClientAuthenticationError) as exc:
        exchange(platform, client_id, assertion)
    return str(exc.value.message)


def test_workload_identity_credential_from_the_env_gets_an_arm_token(platform):
    token = WorkloadIdentityCredential().get_token(f"{ARM}/.default").token
    claims = platform.entra.verify_bearer(f"Bearer {token}", ARM)
    b = platform.baseline
    assert (claims["aud"], claims["appid"], claims["tid"]) == (ARM, b.jobs_client_id, b.tenant_id)
    assert claims["oid"] == b.principal_id(b.jobs_identity)


def test_a_token_file_exchange_succeeds_only_for_the_identity_holding_the_exact_fic(msi, platform, pool0, tmp_path):
    rg, name, client_id = pool0
    b = platform.baseline
    add_fic(msi, rg, name, "coder-ws-alice", b.oidc_issuer, "system:serviceaccount:alice:default")
    propagate(platform)
    token_file = Path(tmp_path) / "token"
    token_file.write_text(platform.service_account_jwt("alice", "default"))

    def credential(cid: str) -> WorkloadIdentityCredential:
        return WorkloadIdentityCredential(tenant_id=b.tenant_id, client_id=cid, token_file_path=str(token_file))

    token = credential(client_id).get_token(f"{ARM}/.default").token
    assert claims_of(token)["appid"] == client_id
    with pytest.raises(ClientAuthenticationError) as exc:
        credential(b.client_id(b.pool_identity_name(1))).get_token(f"{ARM}/.default")
    assert "AADSTS700211" in exc.value.message  # pool-1 has no FIC for this issuer at all


def test_deleting_the_fic_ends_the_exchange(msi, platform, pool0):
    rg, name, client_id = pool0
    add_fic(msi, rg, name, "coder-ws-bob", platform.baseline.oidc_issuer, "system:serviceaccount:bob:default")
    propagate(platform)
    assertion = platform.service_account_jwt("bob", "default")
    exchange(platform, client_id, assertion)
    msi.federated_identity_credentials.delete(rg, name, "coder-ws-bob")
    assert "AADSTS700211" in refused(platform, client_id, assertion)


def test_issuer_mismatch_is_aadsts700211(msi, platform, pool0):
    rg, name, client_id = pool0
    issuer = platform.baseline.oidc_issuer
    add_fic(msi, rg, name, "coder-ws-carol", issuer.rstrip("/"), "system:serviceaccount:carol:default")
    propagate(platform)
    message = refused(platform, client_id, platform.service_account_jwt("carol", "default"))
    assert "AADSTS700211" in message and issuer in message  # a missing trailing slash is a different issuer


def test_subject_mismatch_is_aadsts700213(msi, platform, pool0):
    rg, name, client_id = pool0
    add_fic(msi, rg, name, "coder-ws-dave", platform.baseline.oidc_issuer, "system:serviceaccount:dave:default")
    propagate(platform)
    message = refused(platform, client_id, platform.service_account_jwt("erin", "default"))
    assert "AADSTS700213" in message and "system:serviceaccount:erin:default" in message


def test_subject_matching_only_case_insensitively_is_aadsts7002138(msi, platform, pool0):
    rg, name, client_id = pool0
    add_fic(msi, rg, name, "coder-ws-frank", platform.baseline.oidc_issuer, "system:serviceaccount:Frank:default")
    propagate(platform)
    message = refused(platform, client_id, platform.service_account_jwt("frank", "default"))
    assert "AADSTS7002138" in message


def test_expired_assertion_is_aadsts700024(platform, control):
    b = platform.baseline
    assertion = platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account, lifetime=timedelta(minutes=5))
    exchange(platform, b.jobs_client_id, assertion)
    control.advance(6 * 60)
    assert "AADSTS700024" in refused(platform, b.jobs_client_id, assertion)


def test_unknown_client_id_is_aadsts700016(platform):
    b = platform.baseline
    assertion = platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account)
    unknown = str(uuid.uuid4())
    message = refused(platform, unknown, assertion)
    assert "AADSTS700016" in message and unknown in message


def test_assertion_for_another_audience_is_refused(platform):
    b = platform.baseline
    assertion = platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account, audience="vault")
    assert "AADSTS700212" in refused(platform, b.jobs_client_id, assertion)


def test_assertion_not_signed_by_the_cluster_is_refused(platform):
    b = platform.baseline
    forged = jwt.encode(claims_of(platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account)), "k" * 32)
    assert "AADSTS" in refused(platform, b.jobs_client_id, forged)


@pytest.mark.parametrize("resource", [ARM, "https://vault.azure.net", "https://management.core.windows.net"])
def test_the_token_audience_is_the_requested_resource(platform, resource):
    b = platform.baseline
    token = exchange(
        platform,
        b.jobs_client_id,
        platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account),
        f"{resource}/.default",
    )
    assert claims_of(token)["aud"] == resource
    platform.entra.verify_bearer(f"Bearer {token}", resource)


def test_unknown_form_fields_like_claims_are_ignored(platform):
    b = platform.baseline
    form = {
        "client_assertion": platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account),
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_id": b.jobs_client_id,
        "grant_type": "client_credentials",
        "scope": "https://vault.azure.net/.default",
        "claims": '{"access_token": {"xms_cc": {"values": ["CP1"]}}}',
        "client_info": "1",
    }
    r = requests.post(f"{platform.entra.url}/{b.tenant_id}/oauth2/v2.0/token", data=form)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 300  # < 300 would refresh on every call (NOTES §3.2)
    assert claims_of(body["access_token"])["aud"] == "https://vault.azure.net"


def test_cae_token_request_through_the_credential_succeeds(platform):
    """The Key Vault client asks with enable_cae=True, which adds the `claims` form field."""
    b = platform.baseline
    credential = ClientAssertionCredential(
        b.tenant_id, b.jobs_client_id, lambda: platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account)
    )
    token = credential.get_token("https://vault.azure.net/.default", enable_cae=True).token
    assert claims_of(token)["aud"] == "https://vault.azure.net"


def test_refusals_carry_the_aad_error_body_fields(platform):
    b = platform.baseline
    form = {
        "client_assertion": platform.service_account_jwt("nobody", "default"),
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_id": b.jobs_client_id,
        "grant_type": "client_credentials",
        "scope": f"{ARM}/.default",
    }
    r = requests.post(f"{platform.entra.url}/{b.tenant_id}/oauth2/v2.0/token", data=form)
    assert r.status_code in (400, 401)
    body = r.json()
    assert body["error_codes"] == [700213] and body["error_description"].startswith("AADSTS700213: ")
    assert {"error", "timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)


# ---- FIC propagation ([doc] workload-identity-federation-considerations, "Time for federated credential changes
# to propagate": AADSTS70021 for a while after a FIC is configured; entra/emulator.py has the quote) ----------


def token_response(platform: Platform, client_id: str, assertion: str) -> requests.Response:
    form = {
        "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_id": client_id,
        "grant_type": "client_credentials",
        "scope": f"{ARM}/.default",
    }
    return requests.post(f"{platform.entra.url}/{platform.baseline.tenant_id}/oauth2/v2.0/token", data=form)


def test_doc_a_new_fic_is_refused_with_aadsts70021_until_it_has_propagated(msi, platform, pool0):
    rg, name, client_id = pool0
    add_fic(msi, rg, name, "coder-ws-gina", platform.baseline.oidc_issuer, "system:serviceaccount:gina:default")
    assertion = platform.service_account_jwt("gina", "default")
    r = token_response(platform, client_id, assertion)
    body = r.json()
    assert (r.status_code, body["error"], body["error_codes"]) == (400, "invalid_request", [70021])
    assert body["error_description"].startswith(
        "AADSTS70021: No matching federated identity record found for presented assertion. "
        f"Assertion Issuer: '{platform.baseline.oidc_issuer}'. Assertion Subject: 'system:serviceaccount:gina:default'."
    )
    assert "AADSTS70021" in refused(platform, client_id, assertion)  # what azure-identity raises
    platform.clock.advance(platform.entra.settings["fic_propagation_seconds"] - 1)
    assert token_response(platform, client_id, assertion).json()["error_codes"] == [70021]
    platform.clock.advance(1)
    assert claims_of(exchange(platform, client_id, assertion))["appid"] == client_id


def test_doc_the_default_propagation_is_several_minutes_and_configurable(platform, control, msi, pool0):
    assert platform.entra.settings["fic_propagation_seconds"] == 180  # "A token request made several minutes after"
    assert control.configure("entra", fic_propagation_seconds=0)["fic_propagation_seconds"] == 0
    rg, name, client_id = pool0
    add_fic(msi, rg, name, "coder-ws-hank", platform.baseline.oidc_issuer, "system:serviceaccount:hank:default")
    exchange(platform, client_id, platform.service_account_jwt("hank", "default"))
    for bad in (-1, "30s", True):
        with pytest.raises(requests.HTTPError):
            control.configure("entra", fic_propagation_seconds=bad)
    with pytest.raises(requests.HTTPError):
        control.configure("entra", no_such_setting=1)
    platform.reset()
    assert platform.entra.settings["fic_propagation_seconds"] == 180


def test_doc_an_issuer_change_propagates_too_and_meanwhile_entra_still_has_the_old_one(msi, platform, pool0):
    rg, name, client_id = pool0
    old_issuer = platform.baseline.oidc_issuer
    new_issuer = "https://oidc.aks.emulator.test/other-cluster/"
    subject = "system:serviceaccount:ivy:default"
    add_fic(msi, rg, name, "coder-ws-ivy", old_issuer, subject)
    propagate(platform)
    add_fic(msi, rg, name, "coder-ws-ivy", new_issuer, subject)  # an update (200) of the same FIC
    old = platform.service_account_jwt("ivy", "default")
    new = platform.service_account_jwt("ivy", "default", issuer=new_issuer)
    assert "AADSTS70021" in refused(platform, client_id, new)
    exchange(platform, client_id, old)  # the cache still holds the old issuer
    propagate(platform)
    exchange(platform, client_id, new)
    assert "AADSTS700211" in refused(platform, client_id, old)


def test_a_put_that_changes_nothing_does_not_restart_propagation(msi, platform, pool0):
    rg, name, client_id = pool0
    add_fic(msi, rg, name, "coder-ws-jack", platform.baseline.oidc_issuer, "system:serviceaccount:jack:default")
    propagate(platform)
    add_fic(msi, rg, name, "coder-ws-jack", platform.baseline.oidc_issuer, "system:serviceaccount:jack:default")
    exchange(platform, client_id, platform.service_account_jwt("jack", "default"))


def test_the_seeded_jobs_fic_counts_as_long_propagated(platform):
    b = platform.baseline
    [seeded] = platform.arm.propagated_credentials_of(b.jobs_client_id)
    assert seeded["subject"] == f"system:serviceaccount:{b.jobs_namespace}:{b.jobs_service_account}"
    exchange(platform, b.jobs_client_id, platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account))


def test_the_propagation_bookkeeping_never_reaches_arms_wire(msi, platform, pool0):
    rg, name, _ = pool0
    add_fic(msi, rg, name, "coder-ws-kim", platform.baseline.oidc_issuer, "system:serviceaccount:kim:default")
    got = msi.federated_identity_credentials.get(rg, name, "coder-ws-kim").as_dict()
    assert set(got) == {"id", "name", "type", "issuer", "subject", "audiences"}  # no systemData, no written_at
