"""TokenReview (authentication.k8s.io/v1) through the official Python client, as the API server answers it
(sources in tests/emulators/kube/authn.py): the reviewer's own permission, audiences, expiry, the live
ServiceAccount and its uid, and the user it names."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
import requests
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.conftest import Control
from tests.emulators.kube.authn import API_AUDIENCES, CREDENTIAL_ID
from tests.emulators.platform import Platform, SigningKey


def api(platform: Platform, token: str | None = None) -> client.AuthenticationV1Api:
    api_client = config.new_client_from_config(config_file=platform.env()["KUBECONFIG"])
    if token is not None:  # another user than the kubeconfig's (whose loader would refresh its own token back in)
        api_client.configuration.refresh_api_key_hook = None
        api_client.configuration.api_key = {"BearerToken": f"Bearer {token}"}
    return client.AuthenticationV1Api(api_client)


def review(
    platform: Platform, token: str, audiences: list[str] | None = None, as_: str | None = None
) -> dict[str, Any]:
    body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=audiences))
    got = api(platform, as_).create_token_review(body, _preload_content=False)
    assert got.status == 201
    return dict(json.loads(got.data)["status"])


@pytest.fixture
def mint_jwt(platform: Platform) -> str:
    b = platform.baseline
    return platform.service_account_jwt(b.jobs_namespace, b.mint_service_account, audience=["vault", "other"])


def test_a_live_token_names_its_service_account_and_the_matching_audiences(platform: Platform, mint_jwt: str) -> None:
    b = platform.baseline
    status = review(platform, mint_jwt, ["vault", "elsewhere"])
    assert status["authenticated"] is True and status["audiences"] == ["vault"]  # the intersection
    user = status["user"]
    assert user["username"] == f"system:serviceaccount:{b.jobs_namespace}:{b.mint_service_account}"
    assert user["uid"] == b.service_account_uid(b.jobs_namespace, b.mint_service_account)
    assert user["groups"] == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{b.jobs_namespace}",
        "system:authenticated",
    ]
    assert user["extra"][CREDENTIAL_ID][0].startswith("JTI=")


def test_no_common_audience_is_unauthenticated_with_the_api_servers_words(platform: Platform, mint_jwt: str) -> None:
    status = review(platform, mint_jwt)  # no audiences: the API server's own
    assert "authenticated" not in status
    assert status["error"] == (
        f'[invalid bearer token, token audiences ["vault" "other"] is invalid for the target audiences '
        f'["{API_AUDIENCES[0]}"]]'
    )


def test_expired_within_and_past_the_minute_of_leeway(platform: Platform, control: Control) -> None:
    b = platform.baseline
    token = platform.service_account_jwt(b.jobs_namespace, b.mint_service_account, "vault", timedelta(seconds=30))
    control.advance(80)
    assert review(platform, token, ["vault"])["authenticated"] is True  # exp + 50 s: inside go-jose's leeway
    control.advance(20)
    assert review(platform, token, ["vault"])["error"] == "[invalid bearer token, service account token has expired]"


def test_a_deleted_service_account_and_a_foreign_signature(platform: Platform, mint_jwt: str) -> None:
    b = platform.baseline
    with platform.kube.lock:
        del platform.kube.objects["serviceaccounts"][(b.jobs_namespace, b.mint_service_account)]
    gone = review(platform, mint_jwt, ["vault"])
    assert gone["error"] == f'[invalid bearer token, serviceaccounts "{b.mint_service_account}" not found]'
    forged = SigningKey("attacker").sign(jwt.decode(mint_jwt, options={"verify_signature": False}))
    assert "cryptographic primitive" in review(platform, forged, ["vault"])["error"]
    assert review(platform, "not-a-jwt", ["vault"])["error"] == "invalid bearer token"


def test_the_reviewer_needs_auth_delegator(platform: Platform, mint_jwt: str) -> None:
    b = platform.baseline
    reviewer = platform.service_account_jwt(b.reviewer_namespace, b.reviewer_service_account, API_AUDIENCES)
    assert review(platform, mint_jwt, ["vault"], as_=reviewer)["authenticated"] is True
    outsider = platform.service_account_jwt(b.jobs_namespace, b.jobs_service_account, API_AUDIENCES)
    with pytest.raises(ApiException) as info:
        review(platform, mint_jwt, ["vault"], as_=outsider)
    assert info.value.status == 403
    assert (
        f'User "system:serviceaccount:{b.jobs_namespace}:{b.jobs_service_account}" cannot create resource '
        '"tokenreviews" in API group "authentication.k8s.io" at the cluster scope'
    ) in json.loads(info.value.body)["message"]
    with pytest.raises(ApiException) as info:  # and nothing else: no RBAC beyond system:auth-delegator
        client.CoreV1Api(api(platform, reviewer).api_client).list_namespace()
    assert info.value.status == 403


def test_a_review_without_a_token_is_400(platform: Platform) -> None:
    r = requests.post(  # the Python client refuses to send one
        f"{platform.kube.url}/apis/authentication.k8s.io/v1/tokenreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {}},
        headers={"Authorization": f"Bearer {platform.kube.token}"},
        verify=str(platform.ca_path),
        timeout=10,
    )
    assert r.status_code == 400 and r.json()["message"] == "token is required for TokenReview in authentication"
