"""The Key Vault emulator through the real azure-keyvault-secrets SDK (and raw HTTPS where the SDK hides the
wire): round trips on both vaults, paging, soft-delete, errors, the challenge, throttling, the eventual
consistency windows, every spec example replayed, and one test per NOTES.md §2 gotcha it implements."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import KeyVaultSecretIdentifier, SecretClient

from lib.clients.azure_auth import azure_credential
from tests.conftest import Control
from tests.emulators.platform import Platform
from tests.specs import API_SPECS

SPEC_DIR = API_SPECS / "azure/keyvault-secrets/2026-04-01"
EXAMPLES = sorted((SPEC_DIR / "examples").glob("*.json"))
CHALLENGE = 'Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="https://vault.azure.net"'
HEX32 = re.compile(r"[0-9a-f]{32}")
FAST = {"_polling_interval": 0.05}
API = {"api-version": "2026-04-01"}


# ---- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture
def client(platform: Platform) -> Callable[..., SecretClient]:
    def make(vault: str = "source", **kwargs: Any) -> SecretClient:
        url = (platform.kv_source if vault == "source" else platform.kv_target).url
        kwargs.setdefault("verify_challenge_resource", False)
        return SecretClient(url, credential=azure_credential(os.environ), **kwargs)

    return make


@pytest.fixture
def source(client: Callable[..., SecretClient]) -> SecretClient:
    return client("source")


@pytest.fixture
def http(platform: Platform) -> requests.Session:
    """Raw HTTPS with a real bearer token from the Entra emulator (through the jobs' credential)."""
    token = azure_credential(os.environ).get_token("https://vault.azure.net/.default").token
    session = requests.Session()
    session.verify = str(platform.ca_path)
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def unauthenticated(platform: Platform) -> requests.Session:
    session = requests.Session()
    session.verify = str(platform.ca_path)
    return session


def forged_token(platform: Platform, **overrides: Any) -> str:
    """A token signed by the Entra emulator's key with chosen claims (another tenant, audience, lifetime); a None
    claim is left out. Also a fresh token after a large clock advance, when the SDK's cached one has expired
    in emulated time but not in azure-core's (wall-clock) view."""
    now = int(platform.clock.timestamp())
    claims = {
        "aud": "https://vault.azure.net",
        "iss": f"https://sts.windows.net/{platform.baseline.tenant_id}/",
        "tid": platform.baseline.tenant_id,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "oid": platform.baseline.principal_id(platform.baseline.jobs_identity),  # the baseline's role holder
        **overrides,
    }
    return platform.entra.signing_key.sign({k: v for k, v in claims.items() if v is not None})


def inner_code(exc: HttpResponseError) -> str:
    assert exc.response is not None
    return str(exc.response.json()["error"]["innererror"]["code"])


def ops(control: Control, service: str) -> list[tuple[str, str, int]]:
    return [(e["op"], e["method"], e["status"]) for e in control.requests(service)["log"] if e["service"] == service]


# ---- round trips --------------------------------------------------------------------------------------------------


def test_notes_2_2_one_vault_per_host_port_both_vaults_independent(client: Callable[..., SecretClient]) -> None:
    src, dst = client("source"), client("target")
    src.set_secret("shared-name", "from-source")
    dst.set_secret("shared-name", "from-target")
    dst.set_secret("only-target", "t")
    assert src.get_secret("shared-name").value == "from-source"
    assert dst.get_secret("shared-name").value == "from-target"
    assert sorted(p.name for p in src.list_properties_of_secrets()) == ["shared-name"]
    assert sorted(p.name for p in dst.list_properties_of_secrets()) == ["only-target", "shared-name"]
    assert src.vault_url != dst.vault_url
    with pytest.raises(ResourceNotFoundError):
        src.get_secret("only-target")


def test_set_creates_a_new_32_hex_version_every_time_and_get_latest_follows(source: SecretClient) -> None:
    first = source.set_secret("rotating", "v1")
    second = source.set_secret("rotating", "v2")
    assert HEX32.fullmatch(first.properties.version or "") and HEX32.fullmatch(second.properties.version or "")
    assert first.properties.version != second.properties.version
    assert source.get_secret("rotating").value == "v2"
    assert source.get_secret("rotating", first.properties.version).value == "v1"
    versions = {p.version for p in source.list_properties_of_secret_versions("rotating")}
    assert versions == {first.properties.version, second.properties.version}


def test_attributes_tags_and_content_type_round_trip_with_emulated_clock(
    platform: Platform, source: SecretClient, control: Control
) -> None:
    control.advance(1800)  # created/updated come from the emulated clock, not the wall clock
    nbf = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    exp = nbf + timedelta(days=30)
    tags = {f"k{i}": f"v{i}" for i in range(15)}  # the documented maximum
    secret = source.set_secret(
        "full", "value", content_type="text/plain", tags=tags, enabled=True, not_before=nbf, expires_on=exp
    )
    got = source.get_secret("full")
    for props in (secret.properties, got.properties):
        assert props.content_type == "text/plain"
        assert props.tags == tags
        assert props.not_before == nbf and props.expires_on == exp and props.enabled is True
        assert props.recoverable_days == 90 and props.recovery_level == "Recoverable+Purgeable"
        assert props.created_on is not None
        assert abs(props.created_on.timestamp() - platform.clock.timestamp()) < 5
        assert props.created_on > datetime.now(UTC) + timedelta(minutes=25)
    listed = next(iter(source.list_properties_of_secrets()))
    assert listed.tags == tags and listed.content_type == "text/plain" and listed.expires_on == exp


def test_update_properties_changes_metadata_without_a_new_version(source: SecretClient, control: Control) -> None:
    original = source.set_secret("meta", "value", tags={"a": "1"}, content_type="old")
    control.advance(60)
    updated = source.update_secret_properties(
        "meta", original.properties.version, content_type="new", tags={"b": "2"}, enabled=True
    )
    assert updated.version == original.properties.version
    assert updated.tags == {"b": "2"}  # replaced, not merged
    assert updated.content_type == "new"
    assert updated.updated_on and original.properties.updated_on
    assert updated.updated_on > original.properties.updated_on
    assert updated.created_on == original.properties.created_on
    assert [p.version for p in source.list_properties_of_secret_versions("meta")] == [original.properties.version]
    latest = source.update_secret_properties("meta", expires_on=datetime(2031, 1, 1, tzinfo=UTC))  # "/meta/"
    assert latest.version == original.properties.version and latest.tags == {"b": "2"}
    assert source.get_secret("meta").value == "value"


def test_paging_beyond_25_with_sdk_and_maxresults_limits(
    platform: Platform, source: SecretClient, http: requests.Session, control: Control
) -> None:
    names = [f"page-{i:03d}" for i in range(57)]
    for name in names:
        source.set_secret(name, "x")
    control.clear_requests()
    pages = list(source.list_properties_of_secrets().by_page())
    page_sizes = [len(list(page)) for page in pages]
    assert page_sizes == [25, 25, 7]
    assert sorted(p.name for p in source.list_properties_of_secrets()) == names
    assert [op for op, _, status in ops(control, "keyvault_source") if status == 200].count("secret.list") == 6
    small = list(source.list_properties_of_secrets(max_page_size=10).by_page())
    assert len(small) == 6
    for bad in ("26", "0", "x"):
        r = http.get(f"{platform.kv_source.url}/secrets", params={**API, "maxresults": bad})
        assert r.status_code == 400 and r.json()["error"]["code"] == "BadParameter"


def test_paging_marker_neither_repeats_nor_skips_when_written_between_pages(
    platform: Platform, source: SecretClient, http: requests.Session
) -> None:
    for i in range(4):
        source.set_secret(f"m-{i}", "x")
    first = http.get(f"{platform.kv_source.url}/secrets", params={**API, "maxresults": "2"}).json()
    source.set_secret("a-before-marker", "x")  # sorts before the marker: must not shift the next page
    second = http.get(first["nextLink"]).json()  # followed verbatim (old api-version, accepted)
    seen = [item["id"].rsplit("/", 1)[1] for item in first["value"] + second["value"]]
    assert seen == ["m-0", "m-1", "m-2", "m-3"]
    assert second["nextLink"] is None


def test_versions_listed_in_version_id_order_not_creation_order(source: SecretClient) -> None:
    """The real versions skiptoken encodes secret/NAME/VERSIONID (GetSecretVersions example): callers must
    not take the list order as time order."""
    created = [source.set_secret("many", f"v{i}").properties.version for i in range(8)]
    listed = [p.version for p in source.list_properties_of_secret_versions("many")]
    assert listed == sorted(created)
    assert source.get_secret("many").properties.version == created[-1]


def test_value_reads_are_counted_apart_from_list_calls(source: SecretClient, control: Control) -> None:
    source.set_secret("counted", "x")
    source.set_secret("counted", "y")
    control.clear_requests()
    list(source.list_properties_of_secrets())
    list(source.list_properties_of_secret_versions("counted"))
    assert control.count("keyvault_source", "secret.get") == 0
    assert control.count("keyvault_source", "secret.list") == 1
    assert control.count("keyvault_source", "secret.versions") == 1
    source.get_secret("counted")
    assert control.count("keyvault_source", "secret.get") == 1
    assert control.count("keyvault_target") == 0


# ---- soft-delete ---------------------------------------------------------------------------------------------


def test_delete_recover_purge_round_trip(source: SecretClient, control: Control) -> None:
    source.set_secret("lifecycle", "v1", tags={"t": "1"})
    deleted = source.begin_delete_secret("lifecycle", **FAST).result()
    assert deleted.recovery_id and deleted.recovery_id.endswith("/deletedsecrets/lifecycle")
    assert deleted.deleted_date and deleted.scheduled_purge_date
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=90)
    with pytest.raises(ResourceNotFoundError):
        source.get_secret("lifecycle")
    assert [d.name for d in source.list_deleted_secrets()] == ["lifecycle"]
    assert source.get_deleted_secret("lifecycle").properties.tags == {"t": "1"}
    assert list(source.list_properties_of_secrets()) == []

    source.begin_recover_deleted_secret("lifecycle", **FAST).wait()
    assert source.get_secret("lifecycle").value == "v1"
    assert list(source.list_deleted_secrets()) == []

    source.begin_delete_secret("lifecycle", **FAST).wait()
    control.clear_requests()
    assert source.purge_deleted_secret("lifecycle") is None
    assert ops(control, "keyvault_source") == [("deleted.purge", "DELETE", 204)]
    with pytest.raises(ResourceNotFoundError):
        source.get_deleted_secret("lifecycle")
    assert source.set_secret("lifecycle", "fresh").value == "fresh"
    assert len(list(source.list_properties_of_secret_versions("lifecycle"))) == 1


def test_deleted_secret_is_purged_by_the_system_after_90_days(
    platform: Platform, source: SecretClient, control: Control
) -> None:
    source.set_secret("old", "x")
    source.begin_delete_secret("old", **FAST).wait()
    control.advance(90 * 86400 + 1)
    raw = unauthenticated(platform)
    raw.headers["Authorization"] = f"Bearer {forged_token(platform)}"
    listed = raw.get(f"{platform.kv_source.url}/deletedsecrets", params=API).json()
    assert listed == {"value": [], "nextLink": None}
    r = raw.put(f"{platform.kv_source.url}/secrets/old", params=API, json={"value": "reused"})
    assert r.status_code == 200 and r.json()["value"] == "reused"


# ---- errors (NOTES §2.3) --------------------------------------------------------------------------------------


def test_notes_2_3_missing_secret_404_secret_not_found(source: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        source.get_secret("nope")
    assert info.value.error is not None and info.value.error.code == "SecretNotFound"
    assert "A secret with (name/id) nope was not found in this key vault" in str(info.value.message)
    source.set_secret("exists", "x")
    with pytest.raises(ResourceNotFoundError):
        source.get_secret("exists", "0" * 32)
    assert list(source.list_properties_of_secret_versions("nope")) == []  # not a 404: see the recording below


RECORDINGS = API_SPECS / "azure/keyvault-secrets/recordings"


def test_recorded_versions_list_of_a_missing_secret_is_200_and_empty(
    platform: Platform, http: requests.Session, source: SecretClient, control: Control
) -> None:
    """Replays azure-sdk-for-net's live recording GetSecretVersionsNonExisting: a real vault answers the
    versions list of a name it does not hold with 200 `{"value": [], "nextLink": null}`; so does a name that
    is soft-deleted or still being recovered (nothing is listable under it)."""
    record = json.loads((RECORDINGS / "GetSecretVersionsNonExisting.json").read_text())
    challenge, answered = record["Entries"]
    url = f"{platform.kv_source.url}/secrets/91945129/versions"
    bare = requests.get(url, params=API, verify=str(platform.ca_path))
    assert bare.status_code == challenge["StatusCode"] == 401
    assert bare.json() == challenge["ResponseBody"]
    r = http.get(url, params=API)
    assert r.status_code == answered["StatusCode"] == 200
    assert r.json() == answered["ResponseBody"]
    assert r.headers["Content-Type"] == answered["ResponseHeaders"]["Content-Type"]
    source.set_secret("was-here", "value-was-here")
    source.begin_delete_secret("was-here", **FAST).wait()
    assert (
        http.get(f"{platform.kv_source.url}/secrets/was-here/versions", params=API).json() == answered["ResponseBody"]
    )
    control.configure("keyvault_source", recover_read_delay_seconds=30)
    source.begin_recover_deleted_secret("was-here")
    assert (
        http.get(f"{platform.kv_source.url}/secrets/was-here/versions", params=API).json() == answered["ResponseBody"]
    )
    control.advance(31)
    assert len(http.get(f"{platform.kv_source.url}/secrets/was-here/versions", params=API).json()["value"]) == 1


def test_notes_2_3_disabled_get_403_secret_disabled(source: SecretClient, control: Control) -> None:
    v1 = source.set_secret("off", "v1").properties.version
    v2 = source.set_secret("off", "v2", enabled=False).properties.version
    with pytest.raises(HttpResponseError) as info:
        source.get_secret("off")
    assert info.value.status_code == 403
    assert info.value.error is not None and info.value.error.code == "Forbidden"
    assert inner_code(info.value) == "SecretDisabled"
    assert source.get_secret("off", v1).value == "v1"  # only the disabled version is refused
    listed = {p.version: p.enabled for p in source.list_properties_of_secret_versions("off")}
    assert listed == {v1: True, v2: False}
    assert next(iter(source.list_properties_of_secrets())).enabled is False
    source.update_secret_properties("off", v2, enabled=True)
    assert source.get_secret("off").value == "v2"


def test_notes_2_3_put_on_soft_deleted_409_object_is_deleted_but_recoverable(source: SecretClient) -> None:
    source.set_secret("gone", "x")
    source.begin_delete_secret("gone", **FAST).wait()
    with pytest.raises(ResourceExistsError) as info:
        source.set_secret("gone", "again")
    assert info.value.error is not None and info.value.error.code == "Conflict"
    assert inner_code(info.value) == "ObjectIsDeletedButRecoverable"
    assert "deleted but recoverable state" in str(info.value.message)


def test_notes_2_2_invalid_name_400_bad_parameter(source: SecretClient) -> None:
    for bad in ("my_secret", "a" * 128, "dot.name"):
        with pytest.raises(HttpResponseError) as info:
            source.set_secret(bad, "x")
        assert info.value.status_code == 400
        assert info.value.error is not None and info.value.error.code == "BadParameter"
        assert f"The request URI contains an invalid name: {bad}" == info.value.error.message
    assert source.set_secret("a" * 127, "x").name == "a" * 127


def test_notes_2_2_limits_value_content_type_tags(source: SecretClient) -> None:
    assert source.set_secret("big", "x" * 25_600).value == "x" * 25_600
    attempts: list[Callable[[], object]] = [
        lambda: source.set_secret("big", "x" * 25_601),
        lambda: source.set_secret("ct", "x", content_type="c" * 256),
        lambda: source.set_secret("tags", "x", tags={f"k{i}": "v" for i in range(16)}),
        lambda: source.set_secret("tagv", "x", tags={"k": "v" * 257}),
    ]
    for attempt in attempts:
        with pytest.raises(HttpResponseError) as info:
            attempt()
        assert info.value.status_code == 400 and info.value.error is not None
        assert info.value.error.code == "BadParameter"


def test_secret_names_are_case_insensitive(source: SecretClient) -> None:
    source.set_secret("MixedCase", "one")
    source.set_secret("mixedcase", "two")
    assert source.get_secret("MIXEDCASE").value == "two"
    assert [p.name for p in source.list_properties_of_secrets()] == ["MixedCase"]


# ---- authentication (NOTES §2.4) ---------------------------------------------------------------------------------


def test_notes_2_4_challenge_before_body_validation(platform: Platform, control: Control) -> None:
    raw = unauthenticated(platform)
    url = f"{platform.kv_source.url}/secrets/not_a_valid_name"
    for body in (b"{not json", b""):
        r = raw.put(url, data=body, headers={"Content-Type": "application/json"})  # no api-version either
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == CHALLENGE.format(tenant=platform.baseline.tenant_id)
        assert r.json() == {
            "error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}
        }
    r = raw.get(f"{platform.kv_source.url}/no/such/route")
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert {op for op, _, _ in ops(control, "keyvault_source")} == {"challenge"}


def test_notes_2_4_rejected_tokens_get_key_vaults_401_bodies(platform: Platform, control: Control) -> None:
    url = f"{platform.kv_source.url}/secrets"
    raw = unauthenticated(platform)
    other = "22222222-3333-4444-5555-666666666666"
    cases = {
        "AKV10032: Invalid issuer": forged_token(platform, tid=other, iss=f"https://sts.windows.net/{other}/"),
        "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com.": (
            forged_token(platform, aud="https://management.azure.com")
        ),
        "Token validation failed": forged_token(platform, exp=int(platform.clock.timestamp()) - 10),
        "AKV10000": "",
    }
    for expected, token in cases.items():
        r = raw.get(url, params=API, headers={"Authorization": f"Bearer {token}"} if token else {})
        assert r.status_code == 401, expected
        assert r.headers["WWW-Authenticate"].startswith('Bearer authorization="https://login.microsoftonline.com/')
        assert r.json()["error"]["code"] == "Unauthorized"
        assert expected in r.json()["error"]["message"]


def test_notes_2_4_token_expired_on_the_emulated_clock_is_refused(
    platform: Platform, http: requests.Session, control: Control
) -> None:
    url = f"{platform.kv_source.url}/secrets"
    assert http.get(url, params=API).status_code == 200
    control.advance(3600)
    r = http.get(url, params=API)
    assert r.status_code == 401 and "Token validation failed" in r.json()["error"]["message"]


def test_notes_2_4_challenge_tenant_must_match_the_credential(platform: Platform) -> None:
    foreign = WorkloadIdentityCredential(
        tenant_id="22222222-3333-4444-5555-666666666666",
        client_id=os.environ["AZURE_CLIENT_ID"],
        token_file_path=os.environ["AZURE_FEDERATED_TOKEN_FILE"],
    )
    client = SecretClient(platform.kv_target.url, credential=foreign, verify_challenge_resource=False)
    with pytest.raises(ClientAuthenticationError, match="tenant"):
        client.get_secret("anything")


def test_notes_2_4_verify_challenge_resource_default_fails_on_loopback(platform: Platform) -> None:
    client = SecretClient(platform.kv_source.url, credential=azure_credential(os.environ))
    with pytest.raises(ValueError, match="does not match the requested domain"):
        client.get_secret("anything")


def test_notes_2_1_api_version_required_and_known(platform: Platform, http: requests.Session) -> None:
    url = f"{platform.kv_source.url}/secrets"
    missing = http.get(url)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "BadParameter"
    unknown = http.get(url, params={"api-version": "9.9"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"].startswith("The specified version (9.9) is not recognized.")
    for version in ("2026-04-01", "2025-07-01", "7.6", "7.2"):
        assert http.get(url, params={"api-version": version}).status_code == 200


def test_unimplemented_operations_answer_404_or_405(platform: Platform, http: requests.Session) -> None:
    base = platform.kv_source.url
    assert http.post(f"{base}/secrets/x/backup", params=API).status_code == 405
    assert http.post(f"{base}/secrets/restore", params=API, json={}).status_code == 405
    assert http.get(f"{base}/keys", params=API).status_code == 404


# ---- throttling (NOTES §4) -----------------------------------------------------------------------------------


def test_notes_4_throttled_429_with_retry_after_is_retried_by_the_sdk(
    platform: Platform, source: SecretClient, http: requests.Session, control: Control
) -> None:
    source.set_secret("hot", "x")
    control.fault("keyvault_source", "secret.get", status=429, retry_after=1, count=1)
    started = time.monotonic()
    assert source.get_secret("hot").value == "x"
    assert time.monotonic() - started >= 0.9  # the SDK honoured Retry-After
    assert [s for op, _, s in ops(control, "keyvault_source") if op == "secret.get"] == [429, 200]
    control.fault("keyvault_source", "secret.list", status=429, retry_after=7, count=1)
    r = http.get(f"{platform.kv_source.url}/secrets", params=API)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert r.json()["error"]["code"] == "Throttled"


# ---- eventual consistency ------------------------------------------------------------------------------------


def test_delete_window_deleted_entry_not_yet_visible_and_put_is_being_deleted(
    source: SecretClient, control: Control
) -> None:
    control.configure("keyvault_source", delete_delay_seconds=0.6)
    source.set_secret("slow-delete", "x")
    poller = source.begin_delete_secret("slow-delete", _polling_interval=0.1)
    with pytest.raises(ResourceNotFoundError):
        source.get_deleted_secret("slow-delete")
    assert list(source.list_deleted_secrets()) == []
    with pytest.raises(ResourceExistsError) as info:
        source.set_secret("slow-delete", "y")
    assert inner_code(info.value) == "ObjectIsBeingDeleted"
    poller.wait(timeout=10)
    assert poller.done()
    assert source.get_deleted_secret("slow-delete").name == "slow-delete"
    with pytest.raises(ResourceExistsError) as info:
        source.set_secret("slow-delete", "y")
    assert inner_code(info.value) == "ObjectIsDeletedButRecoverable"


def test_recover_window_reads_404_then_writes_409_being_recovered(source: SecretClient, control: Control) -> None:
    control.configure("keyvault_source", recover_read_delay_seconds=0.5, recover_write_delay_seconds=30)
    source.set_secret("slow-recover", "x")
    source.begin_delete_secret("slow-recover", **FAST).wait()
    poller = source.begin_recover_deleted_secret("slow-recover", _polling_interval=0.1)
    with pytest.raises(ResourceNotFoundError):
        source.get_secret("slow-recover")
    assert list(source.list_properties_of_secrets()) == []
    poller.wait(timeout=10)
    assert source.get_secret("slow-recover").value == "x"  # readable again...
    with pytest.raises(ResourceExistsError) as info:  # ...but still refusing writes (terraform #12285)
        source.set_secret("slow-recover", "y")
    assert inner_code(info.value) == "ObjectIsBeingRecovered"
    with pytest.raises(ResourceExistsError):
        source.update_secret_properties("slow-recover", enabled=False)
    control.advance(31)
    assert source.set_secret("slow-recover", "y").value == "y"


def test_consistency_settings_are_validated_and_reset(platform: Platform, control: Control) -> None:
    assert control.configure("keyvault_target", delete_delay_seconds=2)["delete_delay_seconds"] == 2.0
    for bad in ({"delete_delay_seconds": -1}, {"no_such_setting": 1}, {"recover_read_delay_seconds": "1"}):
        r = control.session.post(f"{control.url}/config", json={"service": "keyvault_target", "settings": bad})
        assert r.status_code == 400
    platform.reset()
    assert platform.kv_target.settings["delete_delay_seconds"] == 0.0
    assert platform.kv_source.settings["delete_delay_seconds"] == 0.0


# ---- NOTES §2.2 gotchas --------------------------------------------------------------------------------------


def test_notes_2_2_trailing_slash_get_latest(
    platform: Platform, source: SecretClient, http: requests.Session, control: Control
) -> None:
    source.set_secret("slash", "old")
    latest = source.set_secret("slash", "new")
    control.clear_requests()
    assert source.get_secret("slash").value == "new"
    assert control.requests("keyvault_source")["log"][0]["path"].startswith("/secrets/slash/?")
    for path in ("/secrets/slash/", "/secrets/slash"):
        body = http.get(platform.kv_source.url + path, params=API).json()
        assert body["value"] == "new" and body["id"] == latest.id


def test_notes_2_2_nextlink_absolute_with_old_api_version_ok(
    platform: Platform, source: SecretClient, http: requests.Session, control: Control
) -> None:
    for i in range(3):
        source.set_secret(f"link-{i}", "x")
    first = http.get(f"{platform.kv_source.url}/secrets", params={**API, "maxresults": "1"}).json()
    link = first["nextLink"]
    assert link.startswith(f"{platform.kv_source.url}/secrets?api-version=7.2&$skiptoken=")
    assert link.endswith("&maxresults=1")
    control.clear_requests()
    assert [p.name for p in source.list_properties_of_secrets(max_page_size=1)] == ["link-0", "link-1", "link-2"]
    followed = [e["path"] for e in control.requests("keyvault_source")["log"]][1:]
    assert len(followed) == 2
    assert all("api-version=2026-04-01" in p and "skiptoken=" in p and "maxresults=1" in p for p in followed)


def test_notes_2_2_ids_parse_with_parse_key_vault_id(platform: Platform, client: Callable[..., SecretClient]) -> None:
    for vault in ("source", "target"):
        c = client(vault)
        secret = c.set_secret("parsed", "x")
        ident = KeyVaultSecretIdentifier(secret.id)
        assert ident.vault_url == c.vault_url and ident.name == "parsed" and ident.version == secret.properties.version
        assert secret.id == f"{c.vault_url}/secrets/parsed/{secret.properties.version}"
        listed = next(iter(c.list_properties_of_secrets()))
        assert listed.id == f"{c.vault_url}/secrets/parsed" and listed.version is None
        assert next(iter(c.list_properties_of_secret_versions("parsed"))).id == secret.id
        deleted = c.begin_delete_secret("parsed", **FAST).result()
        assert KeyVaultSecretIdentifier(deleted.recovery_id).vault_url == c.vault_url
        assert deleted.id == secret.id


def test_notes_2_2_begin_delete_poller_polls_deleted_entry_until_visible(
    source: SecretClient, control: Control
) -> None:
    control.configure("keyvault_source", delete_delay_seconds=0.4)
    source.set_secret("polled", "x")
    control.clear_requests()
    poller = source.begin_delete_secret("polled", _polling_interval=0.1)
    assert poller.result().name == "polled"  # result() does not wait
    poller.wait(timeout=10)
    statuses = [s for op, _, s in ops(control, "keyvault_source") if op == "deleted.get"]
    assert statuses[0] == 404 and statuses[-1] == 200 and len(statuses) >= 2


# ---- spec examples replayed ----------------------------------------------------------------------------------


SPEC = json.loads((SPEC_DIR / "secrets.json").read_text())


def _operation(operation_id: str) -> tuple[str, str, dict[str, Any]]:
    for path, methods in SPEC["paths"].items():
        for method, op in methods.items():
            if op.get("operationId") == operation_id:
                return method.upper(), path, op
    raise AssertionError(f"{operation_id} not in secrets.json")


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SPEC["definitions"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _declared_only(schema: dict[str, Any], actual: Any, where: str = "$") -> None:
    """The emulator invents no field: every key it answers is declared in the spec's response schema."""
    schema = _resolve(schema)
    if isinstance(actual, dict) and "properties" in schema:
        for key, value in actual.items():
            assert key in schema["properties"], f"{where}.{key} is not in the spec"
            _declared_only(schema["properties"][key], value, f"{where}.{key}")
    elif isinstance(actual, list) and "items" in schema:
        for i, item in enumerate(actual):
            _declared_only(schema["items"], item, f"{where}[{i}]")


def _seed(source: SecretClient, operation_id: str, name: str) -> str:
    """What the example needs to exist; returns the version to address."""
    if operation_id == "SetSecret":
        return ""
    content_type = "plainText" if operation_id in ("GetSecrets", "GetDeletedSecrets") else None
    names = [name, f"{name}1"] if operation_id in ("GetSecrets", "GetDeletedSecrets") else [name]
    version = ""
    for each in names:
        version = source.set_secret(each, "seeded", content_type=content_type).properties.version or ""
        if operation_id == "GetSecretVersions":
            source.set_secret(each, "seeded-again")
        if "Deleted" in operation_id or operation_id == "RecoverDeletedSecret":
            source.begin_delete_secret(each, **FAST).wait()
    return version


def _same_shape(expected: Any, actual: Any, where: str = "$") -> None:
    """Every field of the example is present with the same JSON type, recursively (values may differ)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            _same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and actual, f"{where}: expected a non-empty array"
        _same_shape(expected[0], actual[0], f"{where}[0]")
    else:
        assert type(actual) is type(expected), f"{where}: {type(expected).__name__} != {type(actual).__name__}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_spec_example_replayed(example: Path, platform: Platform, source: SecretClient, http: requests.Session) -> None:
    data = json.loads(example.read_text())
    params = data["parameters"]
    method, template, operation = _operation(data["operationId"])
    name = params.get("secret-name", "listsecrettest0")
    version = _seed(source, data["operationId"], name)
    path = template.replace("{secret-name}", name).replace("{secret-version}", version)
    # The example's $skiptoken is another vault's opaque token; a fresh first page is what is comparable.
    query = {
        "api-version": params["api-version"],
        **({"maxresults": params["maxresults"]} if "maxresults" in params else {}),
    }
    r = http.request(method, platform.kv_source.url + path, params=query, json=params.get("parameters"))
    ((status, expected),) = data["responses"].items()
    assert r.status_code == int(status), r.text
    if "body" in expected:
        _same_shape(expected["body"], r.json())
        _declared_only(operation["responses"][status]["schema"], r.json())
        assert r.headers["Content-Type"].startswith("application/json")
    else:
        assert r.content == b""


def test_a_rejected_update_changes_nothing(source: SecretClient) -> None:
    source.set_secret("atomic-update", "value-atomic-1", content_type="text/plain", tags={"a": "1"})
    too_many = {f"t{i}": "v" for i in range(16)}  # Key Vault allows at most 15 tags
    with pytest.raises(HttpResponseError) as info:
        source.update_secret_properties("atomic-update", content_type="application/json", tags=too_many)
    assert info.value.status_code == 400
    props = source.get_secret("atomic-update").properties
    assert props.content_type == "text/plain" and props.tags == {"a": "1"}


# ---- data-plane RBAC (rbac.py) ----------------------------------------------------------------------------------


def _principal(platform: Platform) -> str:
    return platform.baseline.principal_id(platform.baseline.jobs_identity)


def test_rbac_secrets_user_reads_and_is_refused_a_write_with_key_vaults_403(
    platform: Platform, source: SecretClient, control: Control
) -> None:
    source.set_secret("guarded", "value-guarded-1")
    control.configure(
        "keyvault_source", role_assignments=[{"principalId": _principal(platform), "role": "Key Vault Secrets User"}]
    )
    assert source.get_secret("guarded").value == "value-guarded-1"
    assert [p.name for p in source.list_properties_of_secrets()] == ["guarded"]
    with pytest.raises(HttpResponseError) as info:
        source.set_secret("guarded", "value-guarded-2")
    assert info.value.status_code == 403 and inner_code(info.value) == "ForbiddenByRbac"
    assert info.value.error is not None and info.value.error.code == "Forbidden"
    body = info.value.response.json()["error"]["message"]  # type: ignore[union-attr]
    lines = body.split("\r\n")
    assert lines[0] == "Caller is not authorized to perform action on resource."
    assert f"oid={_principal(platform)};" in lines[2]
    assert lines[3] == "Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'"
    assert lines[4].endswith("/secrets/guarded'") and lines[5] == "Assignment: (not found)"
    assert [e["status"] for e in control.requests("keyvault_source", "secret.set")["log"]][-1] == 403
    control.configure("keyvault_source", role_assignments=[])
    with pytest.raises(HttpResponseError) as info:
        list(source.list_properties_of_secrets())
    assert "Action: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'" in info.value.response.text()  # type: ignore[union-attr]


def test_rbac_a_secret_scope_assignment_covers_that_secret_only_and_not_the_list(
    platform: Platform, source: SecretClient, control: Control
) -> None:
    source.set_secret("mine", "value-mine-1")
    source.set_secret("other", "value-other-1")
    only = [{"principalId": _principal(platform), "role": "Key Vault Secrets User", "scope": "/secrets/mine"}]
    control.configure("keyvault_source", role_assignments=only)
    assert source.get_secret("mine").value == "value-mine-1"
    for call in (lambda: source.get_secret("other"), lambda: list(source.list_properties_of_secrets())):
        with pytest.raises(HttpResponseError) as info:
            call()
        assert info.value.status_code == 403


def test_rbac_settings_are_validated_and_reset(platform: Platform, control: Control) -> None:
    for bad in (
        [{"principalId": "x", "role": "Owner"}],
        [{"principalId": "x", "role": "Key Vault Reader", "scope": "/keys"}],
        "all",
    ):
        r = control.session.post(
            f"{control.url}/config", json={"service": "keyvault_source", "settings": {"role_assignments": bad}}
        )
        assert r.status_code == 400
    control.configure("keyvault_source", role_assignments=[])
    platform.reset()
    assert [a.role for a in platform.kv_source.role_assignments] == ["Key Vault Secrets Officer"]


# ---- service limits (throttle.py) -------------------------------------------------------------------------------


def test_throttle_create_bucket_answers_429_throttled_with_retry_after(
    http: requests.Session, platform: Platform, control: Control
) -> None:
    control.configure("keyvault_source", create_per_10s=3, other_per_10s=5)
    url = f"{platform.kv_source.url}/secrets"
    statuses = [http.put(f"{url}/burst", params=API, json={"value": f"value-burst-{i}"}).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    r = http.put(f"{url}/burst", params=API, json={"value": "value-burst-x"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json() == {
        "error": {
            "code": "Throttled",
            "message": "Request was not processed because too many requests were received. "
            "Reason: VaultRequestTypeLimitReached",
        }
    }
    reads = [http.get(f"{url}/burst", params=API).status_code for _ in range(6)]
    assert reads == [200] * 5 + [429]  # the other transactions have their own bucket
    control.configure("keyvault_source", time_scale=1000)  # 10 s of refill in 10 ms
    time.sleep(0.05)
    assert http.put(f"{url}/burst", params=API, json={"value": "value-burst-y"}).status_code == 200


def test_throttle_defaults_are_the_documented_limits_and_azure_core_honours_retry_after(
    platform: Platform, control: Control, client: Callable[..., SecretClient]
) -> None:
    settings = control.configure("keyvault_target")
    assert (settings["create_per_10s"], settings["other_per_10s"], settings["throttling"]) == (300, 4000, True)
    control.configure("keyvault_target", create_per_10s=1, time_scale=5)
    target = client("target")  # azure-core's own retry policy, with its default status retries
    started = time.monotonic()
    target.set_secret("paced", "value-paced-1")
    target.set_secret("paced", "value-paced-2")  # 429 Retry-After: 2 (10 s / 5), retried by azure-core
    assert time.monotonic() - started >= 1.5
    assert [e["status"] for e in control.requests("keyvault_target", "secret.set")["log"]] == [200, 429, 200]
