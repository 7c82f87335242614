"""The Vault emulator through unmodified hvac 2.4.0 (and raw requests for wire details) over HTTPS.

Tests named `test_notes_*` each check one gotcha from shared/api-specs/vault/NOTES.md (section number in
the name) that the emulator implements.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions as hx
import jwt
import pytest
import requests

from tests.emulators.platform import Platform, SigningKey
from tests.emulators.vault.emulator import KV_WARNING, Acl, PolicyError, go_duration, parse_duration, parse_policy

PATH = "coder-cli-session-token"
ACL_DENIED = ["1 error occurred:\n\t* permission denied\n\n"]
BAD_TOKEN = ["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]


def new_client(token: str | None = None) -> hvac.Client:
    return hvac.Client(url=os.environ["VAULT_ADDR"], verify=os.environ["REQUESTS_CA_BUNDLE"], token=token)


def login(role: str | None = None, jwt_text: str | None = None) -> hvac.Client:
    client = new_client()
    role = role or os.environ["CWJ_VAULT_ROLE"]
    client.auth.kubernetes.login(role, jwt_text or Path(os.environ["CWJ_VAULT_JWT_FILE"]).read_text())
    return client


def raw(method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
    headers = {"X-Vault-Token": token} if token else {}
    return requests.request(
        method,
        os.environ["VAULT_ADDR"] + path,
        headers={**headers, **kwargs.pop("headers", {})},
        verify=os.environ["REQUESTS_CA_BUNDLE"],
        timeout=10,
        **kwargs,
    )


@pytest.fixture
def root(platform: Platform) -> hvac.Client:
    return new_client(platform.vault.root_token)


@pytest.fixture
def writer(platform: Platform) -> hvac.Client:
    return login()


def scoped_token(root: hvac.Client, name: str, hcl: str) -> hvac.Client:
    root.sys.create_or_update_acl_policy(name, hcl)
    return new_client(root.auth.token.create(policies=[name], ttl="1h")["auth"]["client_token"])


# ---- the job's whole path -------------------------------------------------------------------------------


def test_hvac_kubernetes_login_kv_v2_roundtrip_and_revoke(writer: hvac.Client) -> None:
    written = writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t1", "token_id": "id1"}, cas=0)
    assert written["data"]["version"] == 1
    read = writer.secrets.kv.v2.read_secret_version(PATH, raise_on_deleted_version=True)
    assert read["data"]["data"] == {"token": "t1", "token_id": "id1"}
    assert read["data"]["metadata"]["version"] == 1
    writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t2"}, cas=1)
    meta = writer.secrets.kv.v2.read_secret_metadata(PATH)["data"]
    assert meta["current_version"] == 2 and set(meta["versions"]) == {"1", "2"}
    assert writer.secrets.kv.v2.read_secret_version(PATH, version=1, raise_on_deleted_version=True)["data"]["data"] == {
        "token": "t1",
        "token_id": "id1",
    }
    me = writer.auth.token.lookup_self()["data"]
    assert me["id"] == writer.token and me["policies"] == ["coder-token-writer", "default"]
    assert me["display_name"] == "kubernetes-coder-wi-jobs-coder-token-mint" and me["path"] == "auth/kubernetes/login"
    revoked = writer.auth.token.revoke_self()
    assert revoked.status_code == 204
    with pytest.raises(hx.Forbidden) as info:
        writer.secrets.kv.v2.read_secret_version(PATH, raise_on_deleted_version=True)
    assert info.value.errors == BAD_TOKEN


def test_notes_6_9_login_token_shape(platform: Platform) -> None:
    body = raw(
        "POST",
        "/v1/auth/kubernetes/login",
        json={"role": "coder-token-writer", "jwt": Path(os.environ["CWJ_VAULT_JWT_FILE"]).read_text()},
    ).json()
    auth = body["auth"]
    assert auth["client_token"].startswith("hvs.") and len(auth["client_token"]) >= 28
    assert auth["policies"] == auth["token_policies"] == ["coder-token-writer", "default"]
    assert (auth["lease_duration"], auth["renewable"], auth["orphan"], auth["token_type"]) == (
        900,
        True,
        True,
        "service",
    )
    b = platform.baseline
    assert auth["metadata"] == {
        "role": "coder-token-writer",
        "service_account_name": b.mint_service_account,
        "service_account_namespace": b.jobs_namespace,
        "service_account_secret_name": "",
        "service_account_uid": auth["metadata"]["service_account_uid"],
    }
    assert auth["metadata"]["service_account_uid"]
    assert (body["lease_duration"], body["renewable"], body["data"]) == (0, False, None)  # TTL lives in auth


# ---- check-and-set --------------------------------------------------------------------------------------


def test_cas_stale_version_is_invalid_request_and_changes_nothing(writer: hvac.Client) -> None:
    kv = writer.secrets.kv.v2
    kv.create_or_update_secret(PATH, {"token": "a"}, cas=0)
    kv.create_or_update_secret(PATH, {"token": "b"}, cas=1)
    with pytest.raises(hx.InvalidRequest) as info:
        kv.create_or_update_secret(PATH, {"token": "lost-race"}, cas=1)
    assert info.value.errors == ["check-and-set parameter did not match the current version"]
    latest = kv.read_secret_version(PATH, raise_on_deleted_version=True)["data"]
    assert latest["data"] == {"token": "b"} and latest["metadata"]["version"] == 2


def test_cas_zero_on_existing_key_is_refused(writer: hvac.Client) -> None:
    writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "a"}, cas=0)
    with pytest.raises(hx.InvalidRequest) as info:
        writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "b"}, cas=0)
    assert info.value.errors == ["check-and-set parameter did not match the current version"]


def test_notes_6_5_cas_required_options_empty_and_loose_cas(root: hvac.Client) -> None:
    token = root.token
    assert raw("POST", "/v1/secret/data/k", token, json={"options": {}, "data": {}}).status_code == 200
    assert (
        raw("POST", "/v1/secret/data/k", token, json={"options": {"cas": "1"}, "data": {"a": "b"}}).status_code == 200
    )
    assert raw("POST", "/v1/secret/data/k", token, json={"options": {"cas": "x"}, "data": {}}).json() == {
        "errors": ["error parsing check-and-set parameter"]
    }
    assert raw("POST", "/v1/secret/data/k", token, json={"options": {}}).json() == {"errors": ["no data provided"]}
    root.secrets.kv.v2.update_metadata("k", cas_required=True)
    with pytest.raises(hx.InvalidRequest) as info:
        root.secrets.kv.v2.create_or_update_secret("k", {"a": "c"})
    assert info.value.errors == ["check-and-set parameter required for this call"]


# ---- login refusals -------------------------------------------------------------------------------------


def _forged(platform: Platform, alg: str) -> str:
    claims = jwt.decode(Path(os.environ["CWJ_VAULT_JWT_FILE"]).read_text(), options={"verify_signature": False})
    if alg == "HS256":
        return jwt.encode(claims, "shared-secret-of-at-least-32-bytes!!", algorithm="HS256")
    return SigningKey("attacker").sign(claims)


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
        ("bad signature", hx.Forbidden, ["permission denied"]),
        ("hs256", hx.Forbidden, ["permission denied"]),
        ("garbage", hx.Forbidden, ["permission denied"]),
    ],
)
def test_login_refusals_carry_vaults_words(
    platform: Platform, case: str, exc: type[Exception], errors: list[str]
) -> None:
    b, role = platform.baseline, "coder-token-writer"
    token = {
        "wrong role": Path(os.environ["CWJ_VAULT_JWT_FILE"]).read_text(),
        "sa not bound": platform.service_account_jwt(b.jobs_namespace, "someone-else", audience="vault"),
        "namespace not bound": platform.service_account_jwt("other-ns", b.mint_service_account, audience="vault"),
        "wrong audience": platform.service_account_jwt(b.jobs_namespace, b.mint_service_account),
        "bad signature": _forged(platform, "RS256"),
        "hs256": _forged(platform, "HS256"),
        "garbage": "not-a-jwt",
    }[case]
    with pytest.raises(exc) as info:
        login("no-such-role" if case == "wrong role" else role, token)
    assert info.value.errors == errors


def test_expired_jwt_refused_past_leeway_and_by_token_review_within_it(platform: Platform, control: Any) -> None:
    b = platform.baseline
    short = platform.service_account_jwt(b.jobs_namespace, b.mint_service_account, "vault", timedelta(seconds=30))
    control.advance(45)  # past exp but inside cap/jwt's 60 s leeway: the TokenReview refuses it
    with pytest.raises(hx.Forbidden) as info:
        login(jwt_text=short)
    assert info.value.errors == ["permission denied"]
    control.advance(60)
    with pytest.raises(hx.Forbidden) as info:
        login(jwt_text=short)
    assert info.value.errors == ["invalid expiration time (exp) claim: token is expired"]


def test_login_missing_fields(platform: Platform) -> None:
    assert raw("POST", "/v1/auth/kubernetes/login", json={"jwt": "x"}).json() == {"errors": ["missing role"]}
    assert raw("POST", "/v1/auth/kubernetes/login", json={"role": "r"}).json() == {"errors": ["missing jwt"]}


def test_notes_6_8_login_needs_no_token_and_ignores_a_bad_one(platform: Platform) -> None:
    client = new_client("hvs.revoked-or-garbage")
    client.auth.kubernetes.login("coder-token-writer", Path(os.environ["CWJ_VAULT_JWT_FILE"]).read_text())
    assert client.token.startswith("hvs.") and client.token != "hvs.revoked-or-garbage"


# ---- policies -------------------------------------------------------------------------------------------


def test_role_token_is_denied_outside_its_policy_and_root_is_not(writer: hvac.Client, root: hvac.Client) -> None:
    for attempt in (
        lambda: writer.secrets.kv.v2.create_or_update_secret("other", {"a": "b"}),
        lambda: writer.secrets.kv.v2.read_secret_version("other", raise_on_deleted_version=True),
        lambda: writer.secrets.kv.v2.update_metadata(PATH, custom_metadata={"a": "b"}),  # metadata is read-only
        lambda: writer.secrets.kv.v2.delete_latest_version_of_secret(PATH),
        lambda: writer.sys.create_or_update_acl_policy("escalate", 'path "*" { capabilities = ["sudo"] }'),
    ):
        with pytest.raises(hx.Forbidden) as info:
            attempt()
        assert info.value.errors == ACL_DENIED
    assert root.secrets.kv.v2.create_or_update_secret("other", {"a": "b"})["data"]["version"] == 1


def test_notes_6_6_create_vs_update_comes_from_existence(root: hvac.Client) -> None:
    creator = scoped_token(root, "create-only", 'path "secret/data/*" { capabilities = ["create"] }')
    creator.secrets.kv.v2.create_or_update_secret("fresh", {"v": "1"})
    with pytest.raises(hx.Forbidden):
        creator.secrets.kv.v2.create_or_update_secret("fresh", {"v": "2"})  # now it exists: needs update
    root.secrets.kv.v2.update_metadata("meta-only", custom_metadata={"owner": "x"})
    with pytest.raises(hx.Forbidden):
        creator.secrets.kv.v2.create_or_update_secret("meta-only", {"v": "1"})  # metadata alone means "exists"


def test_default_policy_allows_token_self_management_only(root: hvac.Client, control: Any) -> None:
    plain = new_client(root.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"])
    assert plain.auth.token.lookup_self()["data"]["policies"] == ["default"]
    control.advance(300)
    assert plain.auth.token.renew_self(increment="10m")["auth"]["lease_duration"] == 600
    with pytest.raises(hx.Forbidden):
        plain.secrets.kv.v2.read_secret_version(PATH, raise_on_deleted_version=True)
    assert plain.auth.token.revoke_self().status_code == 204


def test_policy_api_roundtrip_and_bad_hcl(root: hvac.Client) -> None:
    root.sys.create_or_update_acl_policy("Reader", 'path "secret/data/x" {\n  capabilities = ["read"]\n}\n')
    assert root.sys.read_acl_policy("reader")["data"]["policy"].startswith('path "secret/data/x"')
    assert "reader" in root.sys.list_acl_policies()["data"]["keys"]
    with pytest.raises(hx.InvalidRequest) as info:
        root.sys.create_or_update_acl_policy("bad", 'path "secret/*" { capabilities = ["fly"] }')
    assert info.value.errors == ['failed to parse policy: path "secret/*": invalid capability "fly"']
    with pytest.raises(hx.InvalidRequest):
        root.sys.delete_acl_policy("default")
    root.sys.delete_acl_policy("reader")
    with pytest.raises(hx.InvalidPath):
        root.sys.read_acl_policy("reader")


def test_acl_priority_globs_plus_segments_and_deny() -> None:
    acl = Acl.of(
        [
            'path "secret/*" { capabilities = ["read"] }\npath "secret/+/+/foo/*" { capabilities = ["update"] }',
            'path "secret/data/a" { capabilities = ["create"] }\npath "secret/data/b" { capabilities = ["deny"] }',
            '# legacy form\npath "secret/data/a" { policy = "read" }\npath "kv/+/team" { capabilities = ["list"] }',
        ]
    )
    assert acl.allows("secret/x/y/foo/z", "read") and not acl.allows("secret/x/y/foo/z", "update")  # rule 3
    assert acl.capabilities("secret/data/a") == {"create", "read", "list"}  # same pattern: union
    assert not acl.allows("secret/data/b", "read")  # deny beats the glob
    assert acl.allows("kv/metadata/team", "list") and not acl.allows("kv/metadata/other", "list")
    assert not acl.allows("secret", "read")  # "secret/*" does not cover the mount itself
    assert Acl.of(['path "secret/data/x" { capabilities = ["list"] }']).allows("secret/data/x/", "list")
    with pytest.raises(PolicyError, match="invalid key"):
        parse_policy('path "a" { capabilities = ["read"] }\nfoo "b" {}')
    assert parse_policy('{"path": {"a/*": {"capabilities": ["read"]}}}') == {"a/*": {"read"}}


def test_role_api_seeding_and_warning(root: hvac.Client, platform: Platform) -> None:
    resp = root.auth.kubernetes.create_role("ops", ["sa-*"], ["team-a", "team-b"], ttl="1h", policies=["default"])
    assert resp["warnings"] == [  # no audience: 200 with the plugin's warning instead of 204
        "This role does not specify an audience. In a future version of Vault, specifying an audience will be required."
    ]
    role = root.auth.kubernetes.read_role("ops")
    assert role["bound_service_account_names"] == ["sa-*"] and role["token_ttl"] == 3600
    client = login("ops", platform.service_account_jwt("team-b", "sa-ci", audience="anything"))
    me = client.auth.token.lookup_self()["data"]
    assert me["creation_ttl"] == 3600 and 3590 < me["ttl"] <= 3600 and me["policies"] == ["default"]
    with pytest.raises(hx.InvalidRequest) as info:
        root.auth.kubernetes.create_role("bad", ["*", "x"], ["ns"])
    assert info.value.errors == ['can not mix "*" with values']
    with pytest.raises(hx.Forbidden):
        login().auth.kubernetes.create_role("mine", ["a"], ["b"])


# ---- tokens ---------------------------------------------------------------------------------------------


def test_token_ttl_expiry_follows_the_emulated_clock(writer: hvac.Client, control: Any) -> None:
    control.advance(890)
    assert writer.auth.token.lookup_self()["data"]["ttl"] <= 10
    control.advance(15)
    with pytest.raises(hx.Forbidden) as info:
        writer.auth.token.lookup_self()
    assert info.value.errors == BAD_TOKEN
    assert not writer.is_authenticated()


def test_root_token_and_jwt_file_survive_reset(platform: Platform, root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("gone-after-reset", {"a": "b"})
    platform.reset()
    assert root.auth.token.lookup_self()["data"]["policies"] == ["root"]
    assert root.token == os.environ["VAULT_TOKEN"]
    with pytest.raises(hx.InvalidPath):
        root.secrets.kv.v2.read_secret_version("gone-after-reset", raise_on_deleted_version=True)
    assert login().is_authenticated()


# ---- NOTES §0 / §6 wire details -------------------------------------------------------------------------


def test_notes_0_error_content_type_exactly_application_json(writer: hvac.Client) -> None:
    resp = raw("GET", "/v1/secret/data/other", writer.token)
    assert resp.status_code == 403 and resp.headers["Content-Type"] == "application/json"
    with pytest.raises(hx.Forbidden) as info:
        writer.secrets.kv.v2.read_secret_version("other", raise_on_deleted_version=True)
    assert info.value.errors == ACL_DENIED and info.value.json == {"errors": ACL_DENIED}  # hvac parsed it


def test_notes_0_write_to_path_ending_in_slash_400(platform: Platform) -> None:
    for token in (None, platform.vault.root_token):  # checked before the token
        resp = raw("POST", "/v1/secret/data/dir/", token, json={"data": {}})
        assert resp.status_code == 400 and resp.json() == {"errors": ["cannot write to a path ending in '/'"]}


def test_notes_6_2_no_content_is_204_empty_with_json_content_type(root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("x", {"a": "b"})
    for resp in (
        root.secrets.kv.v2.update_metadata("x", custom_metadata={"k": "v"}),
        root.secrets.kv.v2.delete_metadata_and_all_versions("x"),
    ):
        assert isinstance(resp, requests.Response)  # hvac returns the Response, not a dict, for a 204
        assert (resp.status_code, resp.content, resp.headers["Content-Type"]) == (204, b"", "application/json")


def test_notes_6_1_full_envelope(root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("x", {"a": "b"})
    body = raw("GET", "/v1/secret/data/x", root.token).json()
    assert set(body) == {
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
        "mount_type",
    }
    assert (body["mount_type"], body["wrap_info"], body["auth"], body["lease_id"]) == ("kv", None, None, "")


def test_notes_6_4_missing_secret_is_404_with_empty_errors(root: hvac.Client) -> None:
    resp = raw("GET", "/v1/secret/data/nothing-here", root.token)
    assert (resp.status_code, resp.json()) == (404, {"errors": []})
    with pytest.raises(hx.InvalidPath) as info:
        root.secrets.kv.v2.read_secret_version("nothing-here", raise_on_deleted_version=True)
    assert info.value.errors == []


def test_notes_6_4_deleted_version_is_404_with_the_envelope(root: hvac.Client) -> None:
    kv = root.secrets.kv.v2
    kv.create_or_update_secret("x", {"a": "b"})
    kv.delete_latest_version_of_secret("x")
    resp = raw("GET", "/v1/secret/data/x", root.token)
    assert resp.status_code == 404 and "errors" not in resp.json()
    returned = kv.read_secret_version("x", raise_on_deleted_version=False)
    assert returned["data"]["data"] is None and returned["data"]["metadata"]["deletion_time"].endswith("Z")
    kv.undelete_secret_versions("x", [1])
    assert kv.read_secret_version("x", raise_on_deleted_version=True)["data"]["data"] == {"a": "b"}
    kv.destroy_secret_versions("x", [1])
    with pytest.raises(hx.InvalidPath):  # destroyed, never soft-deleted: deletion_time "" so hvac raises
        kv.read_secret_version("x", raise_on_deleted_version=False)


def test_notes_6_7_bad_token_acl_denial_and_unknown_mount(platform: Platform, writer: hvac.Client) -> None:
    assert raw("GET", "/v1/secret/data/x", "hvs.nope").json() == {"errors": BAD_TOKEN}
    assert raw("GET", "/v1/secret/data/x").json() == {"errors": ACL_DENIED}  # no token at all
    assert raw("GET", "/v1/kv/data/x", writer.token).status_code == 403  # ACL before routing
    resp = raw("GET", "/v1/kv/data/x", platform.vault.root_token)
    assert resp.status_code == 404
    assert resp.json() == {"errors": ['no handler for route "kv/data/x". route entry not found.']}


def test_notes_6_10_types_and_formats(root: hvac.Client) -> None:
    kv = root.secrets.kv.v2
    kv.create_or_update_secret("x", {"a": "b"})
    meta = kv.read_secret_metadata("x")["data"]
    assert meta["custom_metadata"] is None and meta["delete_version_after"] == "0s"
    assert list(meta["versions"]) == ["1"] and meta["versions"]["1"]["deletion_time"] == ""
    assert isinstance(meta["current_version"], int) and meta["created_time"].endswith("Z")
    kv.update_metadata("x", delete_version_after="1h", custom_metadata={"managed_by": "coder-token-mint"})
    meta = kv.read_secret_metadata("x")["data"]
    assert meta["delete_version_after"] == "1h0m0s" and meta["custom_metadata"] == {"managed_by": "coder-token-mint"}
    assert kv.read_secret_version("x", raise_on_deleted_version=True)["data"]["metadata"]["custom_metadata"] == {
        "managed_by": "coder-token-mint"
    }
    assert [go_duration(s) for s in (0, 45, 900, 3600, 12319)] == ["0s", "45s", "15m0s", "1h0m0s", "3h25m19s"]
    assert [parse_duration(v) for v in (900, "900", "15m", "1h30m", "768h")] == [900, 900, 900, 5400, 2764800]


def test_notes_2_3_custom_metadata_validation_text(root: hvac.Client) -> None:
    with pytest.raises(hx.InvalidRequest) as info:
        root.secrets.kv.v2.update_metadata("x", custom_metadata={"k": ""})
    assert info.value.errors == [
        "1 error occurred:\n\t* custom_metadata validation failed: "
        'length of value for key "k" is 0 but must be 0 < len(value) <= 512\n\n'
    ]
    assert raw("GET", "/v1/secret/metadata/x", root.token).status_code == 404  # nothing was created


def test_notes_6_11_max_versions_purges_old_versions(root: hvac.Client) -> None:
    kv = root.secrets.kv.v2
    kv.update_metadata("x", max_versions=2)
    for i in range(3):
        kv.create_or_update_secret("x", {"v": str(i)}, cas=i)
    with pytest.raises(hx.InvalidPath) as info:
        kv.read_secret_version("x", version=1, raise_on_deleted_version=True)
    assert info.value.errors == []
    meta = kv.read_secret_metadata("x")["data"]
    assert (sorted(meta["versions"]), meta["oldest_version"], meta["current_version"]) == (["2", "3"], 2, 3)


def test_notes_6_12_v2_mount_without_data_segment(root: hvac.Client, writer: hvac.Client) -> None:
    resp = raw("GET", "/v1/secret/coder/token", root.token)
    assert resp.status_code == 404 and resp.json()["warnings"] == [KV_WARNING] and resp.json()["data"] is None
    assert raw("GET", "/v1/secret/coder/token", writer.token).status_code == 403


def test_notes_6_13_list_verb_query_form_and_empty_404(root: hvac.Client) -> None:
    for path in ("team/a", "team/b/c", "top"):
        root.secrets.kv.v2.create_or_update_secret(path, {"x": "y"})
    assert root.secrets.kv.v2.list_secrets("team")["data"]["keys"] == ["a", "b/"]  # hvac sends the LIST verb
    assert raw("GET", "/v1/secret/metadata/?list=true", root.token).json()["data"]["keys"] == ["team/", "top"]
    empty = raw("LIST", "/v1/secret/metadata/nothing", root.token)
    assert (empty.status_code, empty.json()) == (404, {"errors": []})


def test_notes_6_14_bearer_header_and_x_vault_request_recorded(platform: Platform, root: hvac.Client) -> None:
    bearer = raw("GET", "/v1/auth/token/lookup-self", headers={"Authorization": f"Bearer {platform.vault.root_token}"})
    assert bearer.status_code == 200 and bearer.json()["data"]["policies"] == ["root"]
    platform.vault.headers_seen.clear()
    root.auth.token.lookup_self()
    assert list(platform.vault.headers_seen) == [{"X-Vault-Request": "true", "X-Vault-Namespace": None}]


def test_notes_0_2_unsupported_operation_is_405_and_hvac_unexpected_error(root: hvac.Client) -> None:
    resp = raw("PATCH", "/v1/secret/data/x", root.token, json={"data": {}})
    assert resp.status_code == 405 and resp.json() == {"errors": ["1 error occurred:\n\t* unsupported operation\n\n"]}
    with pytest.raises(hx.UnexpectedError):
        root.adapter.request("PATCH", "/v1/secret/data/x", json={"data": {}})


def test_fault_injection_uses_the_vault_error_envelope(writer: hvac.Client, control: Any) -> None:
    control.fault("vault", "kv.write", status=503, message="Vault is sealed")
    with pytest.raises(hx.VaultDown) as info:
        writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t"}, cas=0)
    assert info.value.errors == ["Vault is sealed"]
    assert writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t"}, cas=0)["data"]["version"] == 1
    assert control.count("vault", "kv.write") == 2
