"""OpenBao's real `kubernetes` auth method against the kube emulator's TokenReview (NOTES §1).

OpenBao checks the JWT's claims itself (alg, exp/nbf/iat by its real clock, audience, bound name and namespace:
openbao/openbao builtin/credential/kubernetes/path_login.go), then asks the kube emulator's TokenReview, as the
configured reviewer, whether the token is live (kube/authn.py). A refusal by TokenReview is a bare 403
`permission denied`; OpenBao's own refusals carry their reason.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import hvac.exceptions as hx
import jwt
import pytest
import requests

from tests.conftest import Control
from tests.emulators.platform import Platform, SigningKey
from tests.emulators.vault.helpers import env_jwt, login, new_client, raw


def _forged(alg: str) -> str:
    claims = jwt.decode(env_jwt(), options={"verify_signature": False})
    if alg == "HS256":
        return jwt.encode(claims, "shared-secret-of-at-least-32-bytes!!", algorithm="HS256")
    return SigningKey("attacker").sign(claims)


def _kube(platform: Platform, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method,
        platform.kube.url + path,
        json=body,
        headers={"Authorization": f"Bearer {platform.kube.token}"},
        verify=str(platform.ca_path),
        timeout=10,
    )


def _reviews(control: Control) -> list[int]:
    return [e["status"] for e in control.requests("kube", "tokenreview.create")["log"]]


@pytest.mark.parametrize(
    ("case", "exc", "errors"),
    [
        ("wrong role", hx.InvalidRequest, ['invalid role name "no-such-role"']),
        ("sa not bound", hx.Forbidden, ["service account name not authorized"]),
        ("namespace not bound", hx.Forbidden, ["namespace not authorized"]),
        (
            "wrong audience",
            hx.Forbidden,
            ["invalid audience (aud) claim: audience claim does not match any expected audience"],
        ),
        ("bad signature", hx.Forbidden, ["permission denied"]),  # no pem_keys: TokenReview refuses it
        ("hs256", hx.Forbidden, ["permission denied"]),
        ("garbage", hx.Forbidden, ["permission denied"]),
    ],
)
def test_notes_1_3_login_refusals_carry_vaults_words(
    platform: Platform, case: str, exc: type[Exception], errors: list[str]
) -> None:
    b = platform.baseline
    token = {
        "wrong role": env_jwt(),
        "sa not bound": platform.service_account_jwt(b.jobs_namespace, "someone-else", audience="vault"),
        "namespace not bound": platform.service_account_jwt("other-ns", b.mint_service_account, audience="vault"),
        "wrong audience": platform.service_account_jwt(b.jobs_namespace, b.mint_service_account),
        "bad signature": _forged("RS256"),
        "hs256": _forged("HS256"),
        "garbage": "not-a-jwt",
    }[case]
    with pytest.raises(exc) as info:
        login("no-such-role" if case == "wrong role" else "coder-token-writer", token)
    assert info.value.errors == errors


def test_notes_1_3_expiry_is_checked_by_openbao_and_by_token_review(platform: Platform, control: Control) -> None:
    b = platform.baseline
    short = platform.service_account_jwt(b.jobs_namespace, b.mint_service_account, "vault", timedelta(seconds=30))
    control.advance(100)  # past exp and the API server's one-minute leeway on the cluster's (emulated) clock
    with pytest.raises(hx.Forbidden) as info:
        login(jwt_text=short)  # OpenBao's real clock still sees it valid: the TokenReview refuses it
    assert info.value.errors == ["permission denied"] and _reviews(control) == [201]
    now = int(time.time())
    claims = jwt.decode(env_jwt(), options={"verify_signature": False}) | {"iat": now - 900, "exp": now - 200}
    with pytest.raises(hx.Forbidden) as info:
        login(jwt_text=platform.cluster_key.sign(claims))  # past cap/jwt's 60 s leeway on OpenBao's clock
    assert info.value.errors == ["invalid expiration time (exp) claim: token is expired"]
    assert _reviews(control) == [201]  # refused before any TokenReview


def test_token_review_refuses_a_deleted_or_recreated_service_account(platform: Platform, control: Control) -> None:
    b = platform.baseline
    path = f"/api/v1/namespaces/{b.jobs_namespace}/serviceaccounts/{b.mint_service_account}"
    assert _kube(platform, "DELETE", path).status_code == 200
    with pytest.raises(hx.Forbidden) as info:
        login()
    assert info.value.errors == ["permission denied"]
    created = _kube(platform, "POST", path.rsplit("/", 1)[0], {"metadata": {"name": b.mint_service_account}})
    assert created.status_code == 201  # same name, new uid: the old token names the old one
    with pytest.raises(hx.Forbidden):
        login()
    fresh = platform.service_account_jwt(b.jobs_namespace, b.mint_service_account, audience="vault")
    assert login(jwt_text=fresh).token.startswith("s.")
    assert _reviews(control) == [201, 201, 201]


def test_a_reviewer_without_auth_delegator_gets_403_and_nobody_logs_in(platform: Platform, control: Control) -> None:
    del platform.kube.rbac["clusterrolebindings"]["vault-token-reviewer-auth-delegator"]  # to system:auth-delegator
    with pytest.raises(hx.Forbidden) as info:
        login()
    assert info.value.errors == ["permission denied"] and _reviews(control) == [403]


def test_notes_1_3_login_missing_fields(platform: Platform) -> None:
    assert raw("POST", "/v1/auth/kubernetes/login", json={"jwt": "x"}).json() == {"errors": ["missing role"]}
    assert raw("POST", "/v1/auth/kubernetes/login", json={"role": "r"}).json() == {"errors": ["missing jwt"]}


def test_notes_6_8_login_needs_no_token_and_ignores_a_bad_one(platform: Platform) -> None:
    client = new_client("s.revokedorgarbage12345678")
    client.auth.kubernetes.login("coder-token-writer", env_jwt())
    assert client.token.startswith("s.") and client.token != "s.revokedorgarbage12345678"


def test_notes_1_3_role_api_globs_and_audience_optional(platform: Platform, control: Control) -> None:
    root = new_client(platform.vault.root_token)
    resp = root.auth.kubernetes.create_role("ops", ["sa-*"], ["team-a", "team-b"], ttl="1h", policies=["default"])
    # OpenBao: a role without an audience is stored silently (204); HashiCorp's plugin warns (NOTES §1.3)
    assert resp.status_code == 204
    role = root.auth.kubernetes.read_role("ops")
    assert role["bound_service_account_names"] == ["sa-*"] and role["token_ttl"] == 3600
    assert _kube(platform, "POST", "/api/v1/namespaces", {"metadata": {"name": "team-b"}}).status_code == 201
    sa = _kube(platform, "POST", "/api/v1/namespaces/team-b/serviceaccounts", {"metadata": {"name": "sa-ci"}})
    assert sa.status_code == 201
    client = login("ops", platform.service_account_jwt("team-b", "sa-ci", audience="anything"))
    me = client.auth.token.lookup_self()["data"]
    assert me["creation_ttl"] == 3600 and 3590 < me["ttl"] <= 3600 and me["policies"] == ["default"]
    with pytest.raises(hx.InvalidRequest) as info:
        root.auth.kubernetes.create_role("bad", ["*", "x"], ["ns"])
    assert info.value.errors == ['can not mix "*" with values']
    with pytest.raises(hx.Forbidden):
        login().auth.kubernetes.create_role("mine", ["a"], ["b"])


def test_a_token_minted_on_a_clock_ahead_of_openbaos_is_not_yet_valid(platform: Platform, control: Control) -> None:
    """The emulated clock moves the cluster, not OpenBao (tests/emulators/README.md): a token issued five minutes
    in OpenBao's future is refused by OpenBao itself, as a cluster whose clock ran ahead would see."""
    b = platform.baseline
    control.advance(300)
    ahead = platform.service_account_jwt(b.jobs_namespace, b.mint_service_account, audience="vault")
    with pytest.raises(hx.Forbidden) as info:
        login(jwt_text=ahead)
    assert info.value.errors == ["invalid not before (nbf) claim: token not yet valid"]
    assert _reviews(control) == []
