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

from lib.redact import MASK, Redactor
from tests.emulators.platform import Platform
from tests.emulators.vault.helpers import ACL_DENIED, BAD_TOKEN, PATH, env_jwt, new_client, raw, scoped_token


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
