"""The identity binding proxy's wire, with requests (the exchange through azure-identity is tests/e2e/
test_workload_exchange.py): TLS under the SNI name only, the token's audience and signature checked like the API
server's authenticator, RBAC before anything reaches Entra. Sources: ibproxy/emulator.py."""

from __future__ import annotations

import requests

from tests.emulators.core import Fault
from tests.emulators.ibproxy.emulator import BINDING_AUDIENCE, SNI_NAME
from tests.emulators.platform import Platform


def post(platform: Platform, token: str, client_id: str) -> requests.Response:
    form = {
        "client_id": client_id,
        "grant_type": "client_credentials",
        "scope": "https://management.azure.com/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": token,
    }
    url = f"{platform.ibproxy.url}/{platform.baseline.tenant_id}/oauth2/v2.0/token"
    return requests.post(url, data=form, verify=str(platform.ca_path), timeout=10)


def test_the_env_names_an_https_proxy_whose_certificate_carries_the_sni_name(platform: Platform) -> None:
    env = platform.ib_proxy_env()
    assert env["AZURE_KUBERNETES_TOKEN_PROXY"].startswith("https://127.0.0.1:")
    assert env["AZURE_KUBERNETES_SNI_NAME"] == SNI_NAME and env["AZURE_KUBERNETES_CA_FILE"] == str(platform.ca_path)


def test_a_token_for_another_audience_is_refused_before_rbac(platform: Platform) -> None:
    """The projected token for a binding has audience api://AKSIdentityBinding; an AzureADTokenExchange one is not
    accepted (kube/authn.py's audience check), and nothing reaches Entra."""
    b = platform.baseline
    platform.log.clear()
    token = platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account)  # api://AzureADTokenExchange
    resp = post(platform, token, b.pool_client_ids[0])
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    assert "token audiences" in resp.json()["error_description"]
    assert [e["service"] for e in platform.log.entries()] == ["ibproxy"]


def test_rbac_refusal_is_403_access_denied_and_entra_is_not_asked(platform: Platform) -> None:
    b = platform.baseline
    platform.log.clear()
    # coder-token-mint holds no RBAC here (fic-reconcile's account holds use-managed-identity on the pool: bootstrap.py)
    token = platform.service_account_jwt(b.jobs_namespace, b.mint_service_account, audience=BINDING_AUDIENCE)
    resp = post(platform, token, b.pool_client_ids[0])
    assert resp.status_code == 403 and resp.json()["error"] == "access_denied"
    assert platform.log.entries("entra") == []


def test_a_forged_token_is_refused(platform: Platform) -> None:
    from tests.emulators.platform import SigningKey

    b = platform.baseline
    forged = SigningKey("forged").sign({"iss": b.oidc_issuer, "aud": [BINDING_AUDIENCE], "sub": "x"})
    resp = post(platform, forged, b.pool_client_ids[0])
    assert resp.status_code == 401 and "cryptographic primitive" in resp.json()["error_description"]


def test_faults_apply_to_the_proxy_like_any_emulator(platform: Platform) -> None:
    platform.faults.add(Fault("ibproxy", "token", status=503))
    b = platform.baseline
    resp = post(platform, platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account), b.pool_client_ids[0])
    assert resp.status_code == 503


def test_only_the_token_endpoint_is_served(platform: Platform) -> None:
    resp = requests.get(f"{platform.ibproxy.url}/", verify=str(platform.ca_path), timeout=10)
    assert resp.status_code == 404
