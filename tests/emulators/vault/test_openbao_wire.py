"""The Vault NOTES' wire details (§0 transport, §6 checklist) against the platform's real OpenBao through
unmodified hvac 2.4.0 and raw requests; the conventions are test_openbao.py's (`OpenBao:` marks a difference
from HashiCorp Vault, which the NOTES were read from)."""

from __future__ import annotations

from typing import Any

import hvac
import hvac.exceptions as hx
import pytest
import requests

from tests.emulators.platform import Platform
from tests.emulators.vault.helpers import ACL_DENIED, raw, scoped_token

# OpenBao names its own CLI here (Vault: "If using the Vault CLI, use 'vault kv get' for this operation.")
KV_WARNING = (
    "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. "
    "If using the OpenBao CLI, use 'bao kv get' for this operation."
)


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


def test_notes_6_15_hvac_client_traps(root: hvac.Client, writer: hvac.Client, control: Any) -> None:
    kv = root.secrets.kv.v2
    kv.update_metadata("x", delete_version_after="1h")
    kv.update_metadata("x", custom_metadata={"k": "v"})  # hvac always sends delete_version_after="0s"
    assert kv.read_secret_metadata("x")["data"]["delete_version_after"] == "0s"
    patcher = scoped_token(root, "rw", 'path "secret/data/y" { capabilities = ["create", "read", "update"] }')
    kv.create_or_update_secret("y", {"a": "1"})
    with pytest.warns(DeprecationWarning, match="raise_on_deleted_version"):  # its GET takes the deprecated default
        patcher.secrets.kv.v2.patch("y", {"b": "2"})  # client-side: GET, then a check-and-set write; no `patch` needed
    assert kv.read_secret_version("y", raise_on_deleted_version=True)["data"]["data"] == {"a": "1", "b": "2"}
    control.fault("vault", "token.lookup-self", status=503, message="Vault is sealed")
    with pytest.raises(hx.VaultDown):
        writer.is_authenticated()  # a 5xx is not "unauthenticated": it propagates
    token = writer.token
    writer.auth.token.revoke_self()
    assert writer.token == token and not writer.is_authenticated()  # revoke_self leaves the dead token set
