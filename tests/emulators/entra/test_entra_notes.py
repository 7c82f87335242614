"""Entra gotchas from shared/api-specs/azure/NOTES.md §3, one test each, through the real azure-identity."""

from __future__ import annotations

import os

import msal
import requests
from azure.identity import WorkloadIdentityCredential

from tests.conftest import Control
from tests.emulators.platform import Platform

ARM_SCOPE = "https://management.azure.com/.default"


def token_post(platform: Platform, assertion: str) -> requests.Response:
    """The client-assertion grant exactly as azure-identity sends it, for the jobs' own client id."""
    b = platform.baseline
    return requests.post(
        f"{platform.entra.url}/{b.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": b.jobs_client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            "scope": ARM_SCOPE,
        },
        verify=str(platform.ca_path),
        timeout=10,
    )


def test_notes_3_2_workload_identity_makes_only_the_token_post(platform: Platform, control: Control) -> None:
    control.clear_requests()
    WorkloadIdentityCredential().get_token(ARM_SCOPE)
    log = control.requests("entra")["log"]
    assert [(e["method"], e["op"]) for e in log] == [("POST", "token")]  # no discovery, no metadata


def test_notes_3_2_expires_in_is_an_hour_so_azure_core_does_not_refresh_every_call(platform: Platform) -> None:
    b = platform.baseline
    assertion = platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account)
    r = token_post(platform, assertion)
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "Bearer"
    assert body["expires_in"] >= 3600 - 1 > 300  # azure-core refreshes within 300 s of expiry (NOTES §3.2)


def test_notes_3_2_fic_matching_is_case_sensitive_since_2024(platform: Platform) -> None:
    b = platform.baseline
    shouting = platform.service_account_jwt(b.jobs_namespace.upper(), b.jobs_service_account)
    r = token_post(platform, shouting)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.json()["error_codes"] == [7002138]  # matches only case-insensitively (Azure/login#517)


def test_notes_3_3_msal_finds_the_endpoints_it_needs_without_instance_discovery(platform: Platform) -> None:
    # MSAL (client-secret credentials) needs authorization_endpoint and token_endpoint from the tenant's
    # openid-configuration; with instance discovery off it never calls the public host.
    b = platform.baseline
    app = msal.ConfidentialClientApplication(
        b.jobs_client_id,
        client_credential="unused-secret",
        authority=f"{platform.entra.url}/{b.tenant_id}",
        instance_discovery=False,
        verify=os.environ["REQUESTS_CA_BUNDLE"],
    )
    assert app.authority.token_endpoint == f"{platform.entra.url}/{b.tenant_id}/oauth2/v2.0/token"
