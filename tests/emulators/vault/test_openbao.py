"""The Vault NOTES gotchas (shared/api-specs/vault/NOTES.md), each a named test against the platform's real
OpenBao server through unmodified hvac 2.4.0 (and raw requests for wire details).

`test_notes_<section>_*` names the NOTES section. The NOTES were read from HashiCorp Vault's source; where OpenBao
answers otherwise the test asserts what OpenBao does and says so (`OpenBao:`), and tests/emulators/README.md
lists those differences. The jobs depend on none of them: they branch on status codes, never on texts.
"""

from __future__ import annotations

import time

import hvac
import hvac.exceptions as hx
import pytest
import requests

from lib.redact import MASK, Redactor
from tests.emulators.platform import Platform
from tests.emulators.vault.helpers import ACL_DENIED, BAD_TOKEN, PATH, env_jwt, new_client, raw, scoped_token

# OpenBao names its own CLI here (Vault: "If using the Vault CLI, use 'vault kv get' for this operation.")
KV_WARNING = (
    "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. "
    "If using the OpenBao CLI, use 'bao kv get' for this operation."
)


def test_hvac_kubernetes_login_kv_v2_roundtrip_and_revoke(writer: hvac.Client) -> None:
    written = writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t1", "token_id": "id1"}, cas=0)
    assert written["data"]["version"] == 1
    read = writer.secrets.kv.v2.read_secret_version(PATH, raise_on_deleted_version=True)
    assert read["data"]["data"] == {"token": "t1", "token_id": "id1"} and read["data"]["metadata"]["version"] == 1
    writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t2"}, cas=1)
    meta = writer.secrets.kv.v2.read_secret_metadata(PATH)["data"]
    assert meta["current_version"] == 2 and set(meta["versions"]) == {"1", "2"}
    old = writer.secrets.kv.v2.read_secret_version(PATH, version=1, raise_on_deleted_version=True)
    assert old["data"]["data"] == {"token": "t1", "token_id": "id1"}
    me = writer.auth.token.lookup_self()["data"]
    assert me["id"] == writer.token and me["policies"] == ["coder-token-writer", "default"]
    assert me["display_name"] == "kubernetes-coder-wi-jobs-coder-token-mint" and me["path"] == "auth/kubernetes/login"
    assert writer.auth.token.revoke_self().status_code == 204
    with pytest.raises(hx.Forbidden) as info:
        writer.secrets.kv.v2.read_secret_version(PATH, raise_on_deleted_version=True)
    assert info.value.errors == BAD_TOKEN


def test_notes_1_2_and_6_9_login_token_shape(platform: Platform) -> None:
    body = raw("POST", "/v1/auth/kubernetes/login", json={"role": "coder-token-writer", "jwt": env_jwt()}).json()
    auth = body["auth"]
    # OpenBao: `s.` + 24 base62 characters (Vault >= 1.10: `hvs.`); lib/redact.py masks both shapes unregistered
    token = auth["client_token"]
    assert token.startswith("s.") and len(token) == 26 and token[2:].isalnum()
    assert Redactor().scrub(f"token {token} leaked") == f"token {MASK} leaked"
    assert auth["policies"] == auth["token_policies"] == ["coder-token-writer", "default"]
    shape = (auth["lease_duration"], auth["renewable"], auth["orphan"], auth["token_type"])
    assert shape == (900, True, True, "service")
    b = platform.baseline
    assert auth["metadata"] == {
        "role": "coder-token-writer",
        "service_account_name": b.mint_service_account,
        "service_account_namespace": b.jobs_namespace,
        "service_account_secret_name": "",
        "service_account_uid": b.service_account_uid(b.jobs_namespace, b.mint_service_account),
    }
    assert (body["lease_duration"], body["renewable"], body["data"]) == (0, False, None)  # the TTL lives in auth


# ---- KV v2 check-and-set (NOTES §2.2, §6.5) -------------------------------------------------------------------


def test_notes_2_2_cas_stale_version_is_invalid_request_and_changes_nothing(writer: hvac.Client) -> None:
    kv = writer.secrets.kv.v2
    kv.create_or_update_secret(PATH, {"token": "a"}, cas=0)
    kv.create_or_update_secret(PATH, {"token": "b"}, cas=1)
    with pytest.raises(hx.InvalidRequest) as info:
        kv.create_or_update_secret(PATH, {"token": "lost-race"}, cas=1)
    assert info.value.errors == ["check-and-set parameter did not match the current version"]
    latest = kv.read_secret_version(PATH, raise_on_deleted_version=True)["data"]
    assert latest["data"] == {"token": "b"} and latest["metadata"]["version"] == 2


def test_notes_2_2_cas_zero_on_existing_key_is_refused(writer: hvac.Client) -> None:
    writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "a"}, cas=0)
    with pytest.raises(hx.InvalidRequest) as info:
        writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "b"}, cas=0)
    assert info.value.errors == ["check-and-set parameter did not match the current version"]


def test_notes_6_5_cas_required_options_empty_and_loose_cas(root: hvac.Client) -> None:
    token = root.token
    assert raw("POST", "/v1/secret/data/k", token, json={"options": {}, "data": {}}).status_code == 200
    loose = raw("POST", "/v1/secret/data/k", token, json={"options": {"cas": "1"}, "data": {"a": "b"}})
    assert loose.status_code == 200
    assert raw("POST", "/v1/secret/data/k", token, json={"options": {"cas": "x"}, "data": {}}).json() == {
        "errors": ["error parsing check-and-set parameter"]
    }
    assert raw("POST", "/v1/secret/data/k", token, json={"options": {}}).json() == {"errors": ["no data provided"]}
    root.secrets.kv.v2.update_metadata("k", cas_required=True)
    with pytest.raises(hx.InvalidRequest) as info:
        root.secrets.kv.v2.create_or_update_secret("k", {"a": "c"})
    assert info.value.errors == ["check-and-set parameter required for this call"]


# ---- policies and the ACL (NOTES §3.3, §5, §6.6, §6.7) ---------------------------------------------------------


def test_notes_5_role_token_is_denied_outside_its_policy_and_root_is_not(
    writer: hvac.Client, root: hvac.Client
) -> None:
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


def test_notes_5_acl_priority_plus_segments_union_and_deny(root: hvac.Client) -> None:
    policies = {
        "p1": 'path "secret/*" { capabilities = ["read"] }\npath "secret/+/+/foo/*" { capabilities = ["update"] }',
        "p2": 'path "secret/data/a" { capabilities = ["create"] }\npath "secret/data/b" { capabilities = ["deny"] }',
        "p3": 'path "secret/data/a" { capabilities = ["list"] }\npath "kv/+/team" { capabilities = ["list"] }',
    }
    for name, hcl in policies.items():
        root.sys.create_or_update_acl_policy(name, hcl)
    token = root.auth.token.create(policies=list(policies), ttl="1h")["auth"]["client_token"]
    paths = ["secret/x/y/foo/z", "secret/data/a", "secret/data/b", "kv/metadata/team", "kv/metadata/other", "secret"]
    caps = raw("POST", "/v1/sys/capabilities-self", token, json={"paths": paths}).json()["data"]
    assert caps["secret/x/y/foo/z"] == ["read"]  # more `+` segments: lower priority than "secret/*"
    assert sorted(caps["secret/data/a"]) == ["create", "list"]  # the same pattern in two policies: union
    assert caps["secret/data/b"] == ["deny"] and caps["kv/metadata/team"] == ["list"]
    assert caps["kv/metadata/other"] == ["deny"] and caps["secret"] == ["deny"]  # "secret/*" is not the mount


def test_notes_3_1_default_policy_allows_token_self_management_only(root: hvac.Client) -> None:
    plain = new_client(root.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"])
    assert plain.auth.token.lookup_self()["data"]["policies"] == ["default"]
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
    # OpenBao names the path twice
    assert info.value.errors == ['failed to parse policy: path "secret/*": path "secret/*": invalid capability "fly"']
    with pytest.raises(hx.InvalidRequest):
        root.sys.delete_acl_policy("default")
    root.sys.delete_acl_policy("reader")
    with pytest.raises(hx.InvalidPath):
        root.sys.read_acl_policy("reader")


def test_notes_6_7_bad_token_acl_denial_and_unknown_mount(platform: Platform, writer: hvac.Client) -> None:
    assert raw("GET", "/v1/secret/data/x", "s.nopenopenopenopenopenope").json() == {"errors": BAD_TOKEN}
    assert raw("GET", "/v1/secret/data/x").json() == {"errors": BAD_TOKEN}  # no token at all
    assert raw("GET", "/v1/kv/data/x", writer.token).json() == {"errors": ACL_DENIED}  # the ACL runs before routing
    resp = raw("GET", "/v1/kv/data/x", platform.vault.root_token)
    assert resp.status_code == 404
    assert resp.json() == {"errors": ['no handler for route "kv/data/x". route entry not found.']}


# ---- tokens (NOTES §3) -----------------------------------------------------------------------------------------


def test_notes_3_2_an_expired_token_is_refused_like_a_revoked_one(root: hvac.Client) -> None:
    """OpenBao keeps real time (the platform's emulated clock does not move it): a 2-second token, waited out."""
    short = new_client(root.auth.token.create(policies=["default"], ttl="2s")["auth"]["client_token"])
    assert short.auth.token.lookup_self()["data"]["ttl"] <= 2
    time.sleep(2.5)
    with pytest.raises(hx.Forbidden) as info:
        short.auth.token.lookup_self()
    assert info.value.errors == BAD_TOKEN
    assert not short.is_authenticated()  # NOTES §3.4: a 403 is "not authenticated", not an error


def test_root_token_and_jwt_file_survive_reset(platform: Platform, root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("gone-after-reset", {"a": "b"})
    root.sys.create_or_update_acl_policy("gone-too", 'path "x" { capabilities = ["read"] }')
    platform.reset()
    assert root.auth.token.lookup_self()["data"]["policies"] == ["root"]
    with pytest.raises(hx.InvalidPath):
        root.secrets.kv.v2.read_secret_version("gone-after-reset", raise_on_deleted_version=True)
    assert "gone-too" not in root.sys.list_acl_policies()["data"]["keys"]
    assert new_client().auth.kubernetes.login("coder-token-writer", env_jwt())["auth"]["client_token"]


# ---- NOTES §0 / §6 wire details -------------------------------------------------------------------------------


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
    # OpenBao sends no `mount_type` (Vault adds "mount_type": "kv"); hvac and the jobs never read it
    assert set(body) == {
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    }
    assert (body["wrap_info"], body["auth"], body["lease_id"], body["renewable"]) == (None, None, "", False)


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
    latest = kv.read_secret_version("x", raise_on_deleted_version=True)["data"]["metadata"]
    assert latest["custom_metadata"] == {"managed_by": "coder-token-mint"}


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
    resp = raw("DELETE", "/v1/auth/token/lookup-self", root.token)
    assert resp.status_code == 405 and resp.json() == {"errors": ["1 error occurred:\n\t* unsupported operation\n\n"]}
    with pytest.raises(hx.UnexpectedError):
        root.adapter.request("DELETE", "/v1/auth/token/lookup-self")
    # OpenBao: PATCH with a JSON body is 415, before routing (it wants application/merge-patch+json)
    assert raw("PATCH", "/v1/secret/data/x", root.token, json={"data": {}}).status_code == 415
