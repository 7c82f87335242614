"""The ARM Microsoft.ManagedIdentity emulator through the real azure-mgmt-msi SDK (and raw requests where the
SDK hides the wire). Test names starting with test_notes_ name the NOTES.md gotcha they pin down."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import datetime
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
from azure.mgmt.msi import ManagedServiceIdentityClient

from lib.clients.azure_auth import azure_credential
from tests.emulators.platform import Platform
from tests.specs import API_SPECS

API = "api-version=2024-11-30"
EXAMPLES = API_SPECS / "azure/msi/2024-11-30/examples"
CONCURRENT = "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"


def client(**kwargs: Any) -> ManagedServiceIdentityClient:
    return ManagedServiceIdentityClient(
        azure_credential(os.environ),
        os.environ["AZURE_SUBSCRIPTION_ID"],
        base_url=os.environ["CWJ_ARM_ENDPOINT"],
        **kwargs,
    )


def fic(subject: str, issuer: str | None = None) -> dict[str, Any]:
    issuer = issuer or os.environ["CWJ_OIDC_ISSUER"]
    return {"properties": {"issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"]}}


def sa(namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:default"


def status_of(pipeline_response: Any, deserialized: Any, headers: Any) -> tuple[int, Any]:
    return pipeline_response.http_response.status_code, deserialized


@pytest.fixture
def msi(platform: Platform) -> ManagedServiceIdentityClient:
    return client()


@pytest.fixture
def pool(platform: Platform) -> tuple[str, str]:
    return platform.baseline.pool_resource_group, platform.baseline.pool_identity_name(0)


@pytest.fixture
def raw(platform: Platform) -> requests.Session:
    """requests with a valid ARM token (REQUESTS_CA_BUNDLE from the env file makes TLS verify)."""
    session = requests.Session()
    token = azure_credential(os.environ).get_token("https://management.azure.com/.default").token
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def identity_url(platform: Platform, rg: str, name: str) -> str:
    sub = platform.baseline.subscription_id
    return (
        f"{platform.arm.url}/subscriptions/{sub}/resourceGroups/{rg}"
        f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )


def fic_url(platform: Platform, rg: str, name: str, fic_name: str = "") -> str:
    return identity_url(platform, rg, name) + "/federatedIdentityCredentials" + (f"/{fic_name}" if fic_name else "")


def fill(msi: ManagedServiceIdentityClient, rg: str, name: str, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        msi.federated_identity_credentials.create_or_update(rg, name, f"fic-{i:02d}", fic(sa(f"ns-{i:02d}")))


# ---- identities ----------------------------------------------------------------------------------------


def test_identities_list_by_resource_group_has_the_pool_with_deterministic_client_ids(msi, platform):
    b = platform.baseline
    got = {i.name: i.client_id for i in msi.user_assigned_identities.list_by_resource_group(b.pool_resource_group)}
    assert got == {b.pool_identity_name(i): b.pool_client_ids[i] for i in range(b.pool_size)}


def test_identities_list_by_subscription_includes_the_jobs_identity_and_pages(msi, platform, control):
    control.configure("arm", identity_page_size=2)
    b = platform.baseline
    got = {i.name: i.client_id for i in msi.user_assigned_identities.list_by_subscription()}
    assert got[b.jobs_identity] == b.jobs_client_id
    assert len(got) == b.pool_size + 1
    assert control.count("arm", "identity.list_by_subscription") == 2  # 4 identities, 2 per page


def test_identity_get_has_the_example_shape_and_ids(msi, platform, pool):
    got = msi.user_assigned_identities.get(*pool)
    b = platform.baseline
    assert got.id == (
        f"/subscriptions/{b.subscription_id}/resourcegroups/{pool[0]}"
        f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{pool[1]}"
    )
    assert (got.type, got.location, got.tenant_id) == (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        b.location,
        b.tenant_id,
    )
    assert (got.client_id, got.principal_id) == (b.client_id(pool[1]), b.principal_id(pool[1]))
    assert got.isolation_scope == "None"


def test_identity_create_grows_the_pool_with_a_fresh_client_id_and_update_keeps_it(msi, platform):
    rg, name = platform.baseline.pool_resource_group, platform.baseline.pool_identity_name(3)
    body = {"location": "westeurope", "tags": {"team": "sre"}}
    status, created = msi.user_assigned_identities.create_or_update(rg, name, body, cls=status_of)
    assert status == 201 and created.client_id not in platform.baseline.pool_client_ids
    uuid.UUID(created.client_id)
    status, updated = msi.user_assigned_identities.create_or_update(rg, name, {**body, "tags": {}}, cls=status_of)
    assert (status, updated.client_id, updated.tags) == (200, created.client_id, {})
    assert len(list(msi.user_assigned_identities.list_by_resource_group(rg))) == 4
    assert platform.arm.identity_by_client_id(created.client_id)["name"] == name


def test_identity_delete_then_get_is_resource_not_found_and_second_delete_204(msi, platform, pool):
    assert msi.user_assigned_identities.delete(*pool, cls=status_of)[0] == 200
    with pytest.raises(ResourceNotFoundError) as exc:
        msi.user_assigned_identities.get(*pool)
    assert exc.value.error.code == "ResourceNotFound"
    assert f"userAssignedIdentities/{pool[1]}' under resource group '{pool[0]}' was not found" in exc.value.message
    assert msi.user_assigned_identities.delete(*pool, cls=status_of)[0] == 204
    assert platform.arm.identity_by_client_id(platform.baseline.client_id(pool[1])) is None


def test_identity_create_without_location_is_location_required(raw, platform):
    r = raw.put(f"{identity_url(platform, platform.baseline.pool_resource_group, 'id-x')}?{API}", json={"tags": {}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "LocationRequired"


def test_unknown_resource_group_and_subscription_are_arm_404s(msi, raw, platform):
    with pytest.raises(ResourceNotFoundError) as exc:
        list(msi.user_assigned_identities.list_by_resource_group("rg-missing"))
    assert exc.value.error.code == "ResourceGroupNotFound"
    other = str(uuid.uuid4())
    r = raw.get(
        f"{platform.arm.url}/subscriptions/{other}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?{API}"
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "SubscriptionNotFound"


# ---- federated identity credentials --------------------------------------------------------------------


def test_fic_create_get_list_delete_round_trip(msi, platform, pool):
    ops = msi.federated_identity_credentials
    made = ops.create_or_update(*pool, "coder-ws-alice", fic(sa("alice")))
    assert (made.name, made.subject, made.audiences) == ("coder-ws-alice", sa("alice"), ["api://AzureADTokenExchange"])
    assert made.type == "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
    assert made.id.endswith(f"/userAssignedIdentities/{pool[1]}/federatedIdentityCredentials/coder-ws-alice")
    assert ops.get(*pool, "coder-ws-alice").issuer == platform.baseline.oidc_issuer
    assert [f.name for f in ops.list(*pool)] == ["coder-ws-alice"]
    assert ops.delete(*pool, "coder-ws-alice", cls=status_of)[0] == 200
    assert list(ops.list(*pool)) == []
    assert platform.arm.federated_credentials_of(platform.baseline.client_id(pool[1])) == []


def test_fic_get_missing_is_404_not_found(msi, pool):
    with pytest.raises(ResourceNotFoundError) as exc:
        msi.federated_identity_credentials.get(*pool, "coder-ws-nobody")
    assert exc.value.error.code == "NotFound"
    assert "coder-ws-nobody" in exc.value.message


def test_fic_list_pages_by_top_and_by_default_page_size(msi, control, pool):
    control.configure("arm", fic_write_delay_s=0)
    fill(msi, *pool, 12)
    control.clear_requests()
    names = [f.name for f in msi.federated_identity_credentials.list(*pool, top=5)]
    assert names == [f"fic-{i:02d}" for i in range(12)]
    log = control.requests("arm", "fic.list")["log"]
    assert len(log) == 3 and all("%24top=5" in e["path"] or "$top=5" in e["path"] for e in log)
    control.clear_requests()
    assert len(list(msi.federated_identity_credentials.list(*pool))) == 12
    assert control.count("arm", "fic.list") == 2  # default page of 10


def test_fic_list_rejects_bad_top_and_skiptoken(raw, platform, pool):
    for query in ("$top=0", "$top=x", "$skiptoken=garbage!"):
        r = raw.get(f"{fic_url(platform, *pool)}?{API}&{query}")
        assert r.status_code == 400, query
        assert set(r.json()["error"]) == {"code", "message"}


def test_fic_update_changes_subject_and_keeps_the_name(msi, pool, platform):
    ops = msi.federated_identity_credentials
    ops.create_or_update(*pool, "coder-ws-bob", fic(sa("bob")))
    status, updated = ops.create_or_update(*pool, "coder-ws-bob", fic(sa("bobby")), cls=status_of)
    assert (status, updated.subject) == (200, sa("bobby"))
    held = platform.arm.federated_credentials_of(platform.baseline.client_id(pool[1]))
    assert [(f["name"], f["subject"]) for f in held] == [("coder-ws-bob", sa("bobby"))]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"properties": {}}, "has empty properties"),
        ({}, "has empty properties"),
        ({"properties": {"issuer": "https://i.test/", "audiences": ["api://AzureADTokenExchange"]}}, "must specify"),
        ({"properties": {"issuer": "https://i.test/", "subject": "s"}}, "must specify"),
        (
            {"properties": {"issuer": "https://i.test/", "subject": "s", "audiences": ["a", "b"]}},
            "exactly one audience",
        ),
        (
            {"properties": {"issuer": "http://i.test/", "subject": "s", "audiences": ["api://AzureADTokenExchange"]}},
            "https",
        ),
        (
            {"properties": {"issuer": "https://i.test/", "subject": "s" * 601, "audiences": ["a"]}},
            "600",
        ),
    ],
    ids=["empty-properties", "no-properties", "no-subject", "no-audiences", "two-audiences", "http-issuer", "long"],
)
def test_fic_body_validation_is_400_with_the_real_message(raw, platform, pool, body, fragment):
    r = raw.put(f"{fic_url(platform, *pool, 'coder-ws-x')}?{API}", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadRequest" and fragment in r.json()["error"]["message"]
    assert platform.arm.federated_credentials_of(platform.baseline.client_id(pool[1])) == []


def test_fic_body_that_is_not_json_is_invalid_request_content(raw, platform, pool):
    r = raw.put(
        f"{fic_url(platform, *pool, 'coder-ws-x')}?{API}",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidRequestContent"


def test_fic_on_a_missing_identity_is_404_parent(msi, platform):
    rg = platform.baseline.pool_resource_group
    for call in (
        lambda: list(msi.federated_identity_credentials.list(rg, "id-missing")),
        lambda: msi.federated_identity_credentials.create_or_update(rg, "id-missing", "coder-ws-a", fic(sa("a"))),
        lambda: msi.federated_identity_credentials.delete(rg, "id-missing", "coder-ws-a"),
    ):
        with pytest.raises(ResourceNotFoundError) as exc:
            call()
        assert exc.value.error.message == "The parent user-assigned identity doesn't exist."


# ---- auth and api-version ------------------------------------------------------------------------------


def _assert_arm_401(r: requests.Response, code: str) -> None:
    assert r.status_code == 401
    assert r.json()["error"]["code"] == code
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer authorization_uri=") and 'error="invalid_token"' in challenge


def test_missing_token_is_401_authentication_failed(platform, pool):
    r = requests.get(f"{fic_url(platform, *pool)}?{API}")
    _assert_arm_401(r, "AuthenticationFailed")
    assert "missing 'Authorization' header" in r.headers["WWW-Authenticate"]


def test_garbage_token_is_401_invalid_authentication_token(platform, pool):
    r = requests.get(f"{fic_url(platform, *pool)}?{API}", headers={"Authorization": "Bearer not.a.jwt"})
    _assert_arm_401(r, "InvalidAuthenticationToken")


def test_token_for_another_audience_is_401_invalid_audience(platform, pool):
    token = azure_credential(os.environ).get_token("https://vault.azure.net/.default").token
    r = requests.get(f"{fic_url(platform, *pool)}?{API}", headers={"Authorization": f"Bearer {token}"})
    _assert_arm_401(r, "InvalidAuthenticationTokenAudience")
    assert "'https://vault.azure.net'" in r.json()["error"]["message"]


def test_token_for_the_classic_management_audience_is_accepted(platform, pool):
    token = azure_credential(os.environ).get_token("https://management.core.windows.net/.default").token
    r = requests.get(f"{fic_url(platform, *pool)}?{API}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_expired_token_is_401_expired_and_the_sdk_raises_client_authentication_error(raw, msi, platform, control, pool):
    list(msi.federated_identity_credentials.list(*pool))  # the SDK now holds a token
    control.advance(2 * 3600)
    _assert_arm_401(raw.get(f"{fic_url(platform, *pool)}?{API}"), "ExpiredAuthenticationToken")
    with pytest.raises(ClientAuthenticationError) as exc:
        list(msi.federated_identity_credentials.list(*pool))
    assert exc.value.error.code == "ExpiredAuthenticationToken"


def test_unauthenticated_requests_change_nothing(platform, pool):
    r = requests.put(f"{fic_url(platform, *pool, 'coder-ws-x')}?{API}", json=fic(sa("x")))
    assert r.status_code == 401
    assert platform.arm.federated_credentials_of(platform.baseline.client_id(pool[1])) == []


# ---- concurrency and throttling ------------------------------------------------------------------------


def _race(jobs: list[Any]) -> list[BaseException | None]:
    """Run callables at the same instant on their own threads; return each one's exception (or None)."""
    barrier, results = threading.Barrier(len(jobs)), [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait()
        try:
            jobs[i]()
        except BaseException as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results  # type: ignore[return-value]


def _warm_clients(count: int, rg: str, name: str) -> list[ManagedServiceIdentityClient]:
    clients = [client(retry_total=0) for _ in range(count)]
    for c in clients:  # token and TLS connection ready, so the writes below really start together
        list(c.federated_identity_credentials.list(rg, name))
    return clients


def test_concurrent_writes_to_one_identity_get_409_concurrent_writes(control, platform, pool):
    control.configure("arm", fic_write_delay_s=0.3)
    clients = _warm_clients(4, *pool)
    jobs = [
        lambda c=c, i=i: c.federated_identity_credentials.create_or_update(*pool, f"coder-ws-{i}", fic(sa(f"n{i}")))
        for i, c in enumerate(clients)
    ]
    errors = _race(jobs)
    conflicts = [e for e in errors if e is not None]
    assert conflicts and all(isinstance(e, ResourceExistsError) for e in conflicts)
    assert {e.error.code for e in conflicts} == {CONCURRENT}  # type: ignore[union-attr]
    assert all("Retry-After" not in e.response.headers for e in conflicts)  # type: ignore[union-attr]
    held = platform.arm.federated_credentials_of(platform.baseline.client_id(pool[1]))
    assert len(held) == errors.count(None) >= 1  # the winners' writes, and only those, landed


def test_overlapping_delete_and_put_on_one_identity_conflict(msi, control, pool):
    msi.federated_identity_credentials.create_or_update(*pool, "coder-ws-old", fic(sa("old")))
    control.configure("arm", fic_write_delay_s=0.3)
    a, b = _warm_clients(2, *pool)
    errors = _race(
        [
            lambda: a.federated_identity_credentials.delete(*pool, "coder-ws-old"),
            lambda: b.federated_identity_credentials.create_or_update(*pool, "coder-ws-new", fic(sa("new"))),
        ]
    )
    assert sum(isinstance(e, ResourceExistsError) for e in errors) == 1


def test_sequential_writes_to_one_identity_never_conflict(msi, control, pool):
    fill(msi, *pool, 8)
    for i in range(8):
        msi.federated_identity_credentials.delete(*pool, f"fic-{i:02d}")
    statuses = [e["status"] for e in control.requests("arm")["log"] if e["op"] in ("fic.put", "fic.delete")]
    assert statuses == [201] * 8 + [200] * 8


def test_parallel_writes_to_different_identities_never_conflict(control, platform):
    control.configure("arm", fic_write_delay_s=0.2)
    rg = platform.baseline.pool_resource_group
    names = [platform.baseline.pool_identity_name(i) for i in range(platform.baseline.pool_size)]
    clients = [_warm_clients(1, rg, n)[0] for n in names]
    jobs = [
        lambda c=c, n=n: c.federated_identity_credentials.create_or_update(rg, n, "coder-ws-same", fic(sa("same")))
        for c, n in zip(clients, names, strict=True)
    ]
    assert _race(jobs) == [None] * len(names)


def test_injected_429_with_retry_after_is_retried_by_the_sdk_after_the_header_delay(msi, control, pool):
    control.fault("arm", "fic.put", status=429, retry_after=1, count=1)
    made = msi.federated_identity_credentials.create_or_update(*pool, "coder-ws-t", fic(sa("t")))
    assert made.name == "coder-ws-t"
    log = control.requests("arm", "fic.put")["log"]
    assert [e["status"] for e in log] == [429, 201]
    gap = datetime.fromisoformat(log[1]["time"]) - datetime.fromisoformat(log[0]["time"])
    assert gap.total_seconds() >= 1.0


def test_injected_429_uses_the_arm_error_envelope_and_retry_after(raw, control, platform, pool):
    control.fault("arm", "fic.list", status=429, retry_after=7, code="SubscriptionRequestsThrottled")
    r = raw.get(f"{fic_url(platform, *pool)}?{API}")
    assert (r.status_code, r.headers["Retry-After"]) == (429, "7")
    assert r.json()["error"]["code"] == "SubscriptionRequestsThrottled" and "message" in r.json()["error"]


# ---- throttling (tests/emulators/arm/throttle.py cites the documents) ------------------------------------
# [doc] learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling: token buckets
# per subscription, principal and operation type (reads 250 / 25 s-1, writes 200 / 10 s-1, deletes 200 / 10 s-1),
# global limits 15x across principals, 429 + Retry-After, x-ms-ratelimit-remaining-subscription-* headers.


def _remaining(r: requests.Response, kind: str) -> tuple[int, int]:
    h = r.headers
    return int(h[f"x-ms-ratelimit-remaining-subscription-{kind}"]), int(
        h[f"x-ms-ratelimit-remaining-subscription-global-{kind}"]
    )


def test_doc_arm_throttling_defaults_are_the_documented_token_buckets(platform):
    s = platform.arm.settings
    assert s["throttling"] is True and s["time_scale"] == 1.0 and s["msi_throttling"] is False
    assert (s["read_bucket"], s["read_refill_per_s"]) == (250, 25)
    assert (s["write_bucket"], s["write_refill_per_s"]) == (200, 10)
    assert (s["delete_bucket"], s["delete_refill_per_s"]) == (200, 10)


def test_doc_arm_remaining_headers_on_every_response_count_down_per_operation_type(raw, control, platform, pool):
    # documented bucket sizes; refill slowed so the count-down does not depend on how fast this test runs
    control.configure("arm", read_refill_per_s=0.001, write_refill_per_s=0.001, delete_refill_per_s=0.001)
    url = fic_url(platform, *pool)
    first = raw.get(f"{url}?{API}")
    assert _remaining(first, "reads") == (249, 3749)  # [field] 249 / 3749 on a first read: 250-1, 15*250-1
    assert _remaining(raw.get(f"{url}/missing-fic?{API}"), "reads") == (248, 3748)  # a 404 is a request too
    put = raw.put(f"{url}/coder-ws-a?{API}", json=fic(sa("a")))
    assert put.status_code == 201 and _remaining(put, "writes") == (199, 2999)
    assert "x-ms-ratelimit-remaining-subscription-reads" not in put.headers
    gone = raw.delete(f"{url}/coder-ws-a?{API}")
    assert gone.status_code == 200 and _remaining(gone, "deletes") == (199, 2999)
    assert _remaining(raw.get(f"{url}?{API}"), "reads") == (247, 3747)  # reads untouched by the write and delete


def test_doc_arm_burst_beyond_the_read_bucket_is_429_with_retry_after_and_the_throttled_body(
    raw, control, platform, pool
):
    control.configure("arm", read_bucket=5, read_refill_per_s=0.5)
    url = f"{fic_url(platform, *pool)}?{API}"
    seen = [raw.get(url) for _ in range(6)]
    assert [r.status_code for r in seen] == [200] * 5 + [429]
    assert [_remaining(r, "reads")[0] for r in seen] == [4, 3, 2, 1, 0, 0]
    assert _remaining(seen[-1], "reads")[1] == 75 - 5  # the refused request took no token, global ones neither
    refused = seen[-1]
    assert refused.headers["Retry-After"] == "2"  # 1 token at 0.5 per second, rounded up to whole seconds
    error = refused.json()["error"]
    assert error["code"] == "SubscriptionRequestsThrottled"  # [field] velero-io/velero#9171
    assert error["message"].startswith(
        f"Number of 'read' requests for subscription '{platform.baseline.subscription_id}'"
    )
    assert "Please try again after '2' seconds" in error["message"]
    assert raw.put(f"{fic_url(platform, *pool, 'coder-ws-b')}?{API}", json=fic(sa("b"))).status_code == 201  # writes


def test_doc_arm_waiting_retry_after_lets_the_next_request_through(raw, control, platform, pool):
    control.configure("arm", write_bucket=1, write_refill_per_s=1)
    url = f"{fic_url(platform, *pool, 'coder-ws-c')}?{API}"
    assert raw.put(url, json=fic(sa("c"))).status_code == 201
    refused = raw.put(url, json=fic(sa("c")))
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")
    time.sleep(float(refused.headers["Retry-After"]))
    again = raw.put(url, json=fic(sa("c")))
    assert again.status_code == 200 and _remaining(again, "writes")[0] == 0


def test_arm_time_scale_makes_the_buckets_refill_that_many_times_faster(raw, control, platform, pool):
    url = f"{fic_url(platform, *pool)}?{API}"
    control.configure("arm", read_bucket=1, read_refill_per_s=1)
    assert [raw.get(url).status_code for _ in range(2)] == [200, 429]
    time.sleep(0.1)  # a tenth of the 1 s refill: still refused at time_scale 1
    assert raw.get(url).status_code == 429
    control.configure("arm", time_scale=50)  # 0.1 s real = 5 s of bucket time from here on
    time.sleep(0.1)
    assert raw.get(url).status_code == 200
    assert raw.get(url).headers["Retry-After"] == "1"  # real seconds to wait, whole, at least 1 (ARM's format)


def test_arm_throttle_429_reaches_the_job_style_sdk_client_and_the_default_sdk_retries_it(control, pool):
    control.configure("arm", write_bucket=1, write_refill_per_s=1)
    job_style = client(retry_status=0)  # lib/clients/arm_msi.py: every status retry is the job's own
    job_style.federated_identity_credentials.create_or_update(*pool, "coder-ws-d", fic(sa("d")))
    with pytest.raises(HttpResponseError) as err:
        job_style.federated_identity_credentials.create_or_update(*pool, "coder-ws-d", fic(sa("d")))
    assert err.value.status_code == 429 and err.value.error.code == "SubscriptionRequestsThrottled"
    # azure-core's default RetryPolicy sleeps Retry-After (NOTES §4) and the call then goes through
    status, _ = client().federated_identity_credentials.create_or_update(
        *pool, "coder-ws-d", fic(sa("d")), cls=status_of
    )
    assert status == 200


def test_arm_throttling_off_sends_no_headers_and_never_429s(raw, control, platform, pool):
    control.configure("arm", throttling=False, read_bucket=1)
    seen = [raw.get(f"{fic_url(platform, *pool)}?{API}") for _ in range(5)]
    assert {r.status_code for r in seen} == {200}
    assert not any(k.lower().startswith("x-ms-ratelimit") for r in seen for k in r.headers)


def test_doc_msi_per_resource_write_limit_when_on_refuses_a_second_put_on_one_identity(raw, control, platform):
    control.configure("arm", msi_throttling=True)  # create or update: 0.25 per second per resource
    b = platform.baseline
    first, second = (b.pool_resource_group, b.pool_identity_name(0)), (b.pool_resource_group, b.pool_identity_name(1))
    assert raw.put(f"{fic_url(platform, *first, 'coder-ws-e')}?{API}", json=fic(sa("e"))).status_code == 201
    refused = raw.put(f"{fic_url(platform, *first, 'coder-ws-f')}?{API}", json=fic(sa("f")))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "4"
    assert refused.json()["error"]["code"] == "TooManyRequests"
    assert _remaining(refused, "writes")[0] == 198  # ARM let it through to the provider: its token is spent
    assert raw.put(f"{fic_url(platform, *second, 'coder-ws-f')}?{API}", json=fic(sa("f"))).status_code == 201
    assert raw.put(f"{fic_url(platform, *second, 'coder-ws-g')}?{API}", json=fic(sa("g"))).status_code == 429
    time.sleep(0.5)  # that was the per-subscription limit (2 per second): half a second gives one token back
    control.configure("arm", msi_resource="fic")  # "resource" read as each FIC: another name is another bucket
    assert raw.put(f"{fic_url(platform, *first, 'coder-ws-g')}?{API}", json=fic(sa("g"))).status_code == 201


def test_configure_rejects_unknown_and_bad_settings(control):
    with pytest.raises(requests.HTTPError):
        control.configure("arm", no_such_setting=1)
    with pytest.raises(requests.HTTPError):
        control.configure("arm", fic_page_size=0)
    for bad in ({"time_scale": 0}, {"throttling": "yes"}, {"read_bucket": 0}, {"msi_resource": "tenant"}):
        with pytest.raises(requests.HTTPError):
            control.configure("arm", **bad)
    assert control.configure("arm", fic_limit=5)["fic_limit"] == 5


def test_reset_restores_settings_and_the_seeded_jobs_fic(control, platform, msi):
    control.configure("arm", fic_limit=1, throttling=False, time_scale=10)
    b = platform.baseline
    msi.federated_identity_credentials.delete(b.jobs_resource_group, b.jobs_identity, b.jobs_service_account)
    platform.reset()
    assert platform.arm.settings["fic_limit"] == 20
    assert platform.arm.settings["throttling"] is True and platform.arm.bucket_clock.scale == 1.0
    [seeded] = platform.arm.federated_credentials_of(b.jobs_client_id)
    assert seeded["issuer"] == b.oidc_issuer
    assert seeded["subject"] == f"system:serviceaccount:{b.jobs_namespace}:{b.jobs_service_account}"


# ---- example replay ------------------------------------------------------------------------------------

_EXAMPLE_CALLS = {  # file -> (method, which url, statuses in the order a replay produces them)
    "FederatedIdentityCredentialCreate.json": ("PUT", "fic", ["201", "200"]),
    "FederatedIdentityCredentialDelete.json": ("DELETE", "fic", ["200", "204"]),
    "FederatedIdentityCredentialGet.json": ("GET", "fic", ["200"]),
    "FederatedIdentityCredentialList.json": ("GET", "fics", ["200"]),
    "IdentityGet.json": ("GET", "identity", ["200"]),
    "IdentityListByResourceGroup.json": ("GET", "identities", ["200"]),
}
_OPTIONAL = {"nextLink"}  # spec: list results require only `value`


def assert_same_shape(ours: Any, theirs: Any, where: str = "$") -> None:
    """Field names and JSON value types match, recursively; list items compare with the example's first."""
    assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} != {type(theirs).__name__}"
    if isinstance(theirs, dict):
        missing = set(theirs) - set(ours) - _OPTIONAL
        assert not missing and set(ours) <= set(theirs), f"{where}: keys {sorted(ours)} vs {sorted(theirs)}"
        for key in set(ours) & set(theirs):
            assert_same_shape(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list) and theirs:
        assert ours, f"{where}: empty list, the example has items"
        for i, item in enumerate(ours):
            assert_same_shape(item, theirs[0], f"{where}[{i}]")


def _seed_for_example(platform: Platform, example: dict[str, Any]) -> tuple[str, str, str]:
    params = example["parameters"]
    identity_body = next(iter(example["responses"].values())).get("body", {})
    identity_body = identity_body.get("value", [identity_body])[0]
    rg, name = params["resourceGroupName"], params.get("resourceName") or identity_body["name"]
    tags = identity_body.get("tags") if "location" in identity_body else None
    platform.arm.seed_identity(rg, name, location=identity_body.get("location"), tags=tags)
    fic_name = params.get("federatedIdentityCredentialResourceName", "")
    if fic_name and "parameters" not in params:  # get/delete/list need one to exist
        platform.arm.seed_fic(rg, name, fic_name, "https://oidc.prod-aks.azure.com/TenantGUID/IssuerGUID", "s")
    if "top" in params:
        platform.arm.seed_fic(rg, name, "ficResourceName", "https://oidc.prod-aks.azure.com/TenantGUID/IssuerGUID", "s")
    return rg, name, fic_name


@pytest.mark.parametrize("example_file", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_example_replays_with_the_example_status_and_shape(example_file, raw, platform):
    assert example_file in _EXAMPLE_CALLS, f"new example {example_file}: add it to the replay table"
    example = json.loads((EXAMPLES / example_file).read_text())
    method, target, statuses = _EXAMPLE_CALLS[example_file]
    assert sorted(statuses) == sorted(example["responses"])
    rg, name, fic_name = _seed_for_example(platform, example)
    params = example["parameters"]
    url = {
        "fic": fic_url(platform, rg, name, fic_name),
        "fics": fic_url(platform, rg, name),
        "identity": identity_url(platform, rg, name),
        "identities": identity_url(platform, rg, "").rstrip("/"),
    }[target]
    query = {"api-version": params["api-version"], **({"$top": params["top"]} if "top" in params else {})}
    for status in statuses:
        r = raw.request(method, url, params=query, json=params.get("parameters"))
        assert r.status_code == int(status), r.text
        expected = example["responses"][status].get("body")
        if expected is None:
            assert r.content == b""
        else:
            assert_same_shape(r.json(), expected)
    if "nextLink" in (example["responses"]["200"].get("body") or {}):
        _replay_with_a_next_page(raw, platform, rg, name, url, example["responses"]["200"]["body"])


def _replay_with_a_next_page(raw, platform, rg, name, url, expected) -> None:
    """The example shows a nextLink; with $top=1 and two items ours has one too, absolute and to this host."""
    if "federatedIdentityCredentials" in url:
        platform.arm.seed_fic(rg, name, "ficOther", "https://oidc.example.test/", "other")
    else:
        platform.arm.seed_identity(rg, "identityOther")
        platform.arm.configure({"identity_page_size": 1})
    r = raw.get(url, params={"api-version": "2024-11-30", "$top": "1"})
    assert_same_shape(r.json(), expected)
    assert r.json()["nextLink"].startswith(platform.arm.url + "/subscriptions/")


# ---- NOTES.md gotchas ----------------------------------------------------------------------------------


def test_notes_1_1_put_returns_201_created_then_200_updated(msi, pool):
    ops = msi.federated_identity_credentials
    assert ops.create_or_update(*pool, "coder-ws-c", fic(sa("c")), cls=status_of)[0] == 201
    assert ops.create_or_update(*pool, "coder-ws-c", fic(sa("c")), cls=status_of)[0] == 200


def test_notes_1_1_delete_missing_fic_returns_204_and_the_sdk_returns_none(msi, control, pool):
    assert msi.federated_identity_credentials.delete(*pool, "coder-ws-never") is None
    assert [e["status"] for e in control.requests("arm", "fic.delete")["log"]] == [204]


@pytest.mark.parametrize("name", ["a", "ab", "-abc", "_abc", "a" * 121, "bad.name", "bad/name", "bäd-name"])
def test_notes_1_1_no_client_side_name_validation_reaches_400(msi, control, pool, name):
    with pytest.raises(HttpResponseError) as exc:
        msi.federated_identity_credentials.create_or_update(*pool, name, fic(sa("n")))
    assert exc.value.status_code == 400
    assert exc.value.error.message == f"Federated Identity Credential name '{name}' is invalid."
    assert control.count("arm", "fic.put") == 1  # it reached the server


@pytest.mark.parametrize("name", ["abc", "a" * 120, "A0-_", "0-0"])
def test_notes_1_3_fic_name_pattern_boundaries_are_accepted(msi, pool, name):
    assert msi.federated_identity_credentials.create_or_update(*pool, name, fic(sa(name.lower()))).name == name


def test_notes_1_1_case_insensitive_path_segments(raw, platform, pool):
    sub = platform.baseline.subscription_id.upper()
    url = (
        f"{platform.arm.url}/SUBSCRIPTIONS/{sub}/resourcegroups/{pool[0].upper()}/PROVIDERS/"
        f"microsoft.managedidentity/USERASSIGNEDIDENTITIES/{pool[1].upper()}"
    )
    r = raw.get(f"{url}?{API}")
    assert r.status_code == 200 and r.json()["name"] == pool[1]
    assert raw.put(f"{url}/FEDERATEDIDENTITYCREDENTIALS/coder-ws-k?{API}", json=fic(sa("k"))).status_code == 201
    assert raw.get(f"{fic_url(platform, *pool, 'CODER-WS-K')}?{API}").json()["name"] == "coder-ws-k"


def test_notes_1_1_response_ids_use_lower_case_resourcegroups(msi, pool):
    made = msi.federated_identity_credentials.create_or_update(*pool, "coder-ws-id", fic(sa("id")))
    assert "/resourcegroups/" in made.id and "/resourceGroups/" not in made.id


def test_notes_1_1_fic_writes_are_synchronous_without_lro_headers(raw, platform, pool):
    for r in (
        raw.put(f"{fic_url(platform, *pool, 'coder-ws-s')}?{API}", json=fic(sa("s"))),
        raw.delete(f"{fic_url(platform, *pool, 'coder-ws-s')}?{API}"),
    ):
        assert r.status_code in (200, 201)
        assert not {"Azure-AsyncOperation", "Location"} & set(r.headers)


def test_notes_1_3_errors_surface_as_error_code_and_message(msi, pool):
    with pytest.raises(HttpResponseError) as exc:
        msi.federated_identity_credentials.create_or_update(*pool, "coder-ws-e", {"properties": {}})
    assert (exc.value.error.code, exc.value.error.message) == (
        "BadRequest",
        "Federated Identity Credential from HTTP body has empty properties",
    )


def test_notes_1_4_twenty_fics_per_identity(msi, control, pool):
    control.configure("arm", fic_write_delay_s=0)
    fill(msi, *pool, 20)
    with pytest.raises(HttpResponseError) as exc:
        fill(msi, *pool, 1, start=20)
    assert exc.value.status_code == 400 and exc.value.error.code == "BadRequest"
    status, _ = msi.federated_identity_credentials.create_or_update(*pool, "fic-19", fic(sa("x")), cls=status_of)
    assert status == 200  # updating at the cap is not adding
    assert len(list(msi.federated_identity_credentials.list(*pool))) == 20


def test_notes_1_4_issuer_and_subject_unique_per_identity(msi, platform, pool):
    ops = msi.federated_identity_credentials
    ops.create_or_update(*pool, "coder-ws-u1", fic(sa("u")))
    with pytest.raises(HttpResponseError) as exc:
        ops.create_or_update(*pool, "coder-ws-u2", fic(sa("u")))
    assert exc.value.status_code == 400
    assert exc.value.error.message == "Issuer and subject combination already exists for this Managed Identity."
    assert ops.create_or_update(*pool, "coder-ws-u1", fic(sa("u")), cls=status_of)[0] == 200  # same name: update
    ops.create_or_update(*pool, "coder-ws-u2", fic(sa("U")))  # matching is exact: other case is another pair
    other = platform.baseline.pool_identity_name(1)
    ops.create_or_update(pool[0], other, "coder-ws-u2", fic(sa("u")))  # another identity may hold the pair


def test_notes_1_4_duplicate_error_code_is_configurable(msi, control, pool):
    control.configure("arm", duplicate_error_code="Conflict")
    msi.federated_identity_credentials.create_or_update(*pool, "coder-ws-d1", fic(sa("d")))
    with pytest.raises(HttpResponseError) as exc:
        msi.federated_identity_credentials.create_or_update(*pool, "coder-ws-d2", fic(sa("d")))
    assert (exc.value.status_code, exc.value.error.code) == (400, "Conflict")


def test_notes_1_4_concurrent_write_409_names_the_identity_lower_cased(control, platform, pool):
    control.configure("arm", fic_write_delay_s=0.3)
    a, b = _warm_clients(2, *pool)
    errors = _race(
        [
            lambda: a.federated_identity_credentials.create_or_update(*pool, "coder-ws-a", fic(sa("a"))),
            lambda: b.federated_identity_credentials.create_or_update(*pool, "coder-ws-b", fic(sa("b"))),
        ]
    )
    [conflict] = [e for e in errors if e is not None]
    sub = platform.baseline.subscription_id
    expected_id = (
        f"/subscriptions/{sub}/resourcegroups/{pool[0]}"
        f"/providers/microsoft.managedidentity/userassignedidentities/{pool[1]}"
    )
    assert f"for the managed identity '{expected_id}'" in conflict.error.message  # type: ignore[attr-defined]


def test_notes_1_4_a_409_with_retry_after_is_silently_retried_by_azure_core(control, pool):
    """Why the emulator's 409 carries no Retry-After by default: with one, the SDK retries and the job's
    own conflict handling is never exercised."""
    control.configure("arm", fic_write_delay_s=0.3, conflict_retry_after=1)
    a, b = (client(retry_total=3) for _ in range(2))
    for c in (a, b):
        list(c.federated_identity_credentials.list(*pool))
    errors = _race(
        [
            lambda: a.federated_identity_credentials.create_or_update(*pool, "coder-ws-a", fic(sa("a"))),
            lambda: b.federated_identity_credentials.create_or_update(*pool, "coder-ws-b", fic(sa("b"))),
        ]
    )
    assert errors == [None, None]
    assert 409 in [e["status"] for e in control.requests("arm", "fic.put")["log"]]


def test_notes_1_5_next_link_is_absolute_and_points_back_at_the_emulator(raw, msi, control, platform, pool):
    control.configure("arm", fic_write_delay_s=0)
    fill(msi, *pool, 3)
    page = raw.get(f"{fic_url(platform, *pool)}?{API}&$top=2").json()
    assert page["nextLink"].startswith(f"{platform.arm.url}/subscriptions/") and "$skiptoken=" in page["nextLink"]
    last = raw.get(page["nextLink"]).json()
    assert [f["name"] for f in page["value"] + last["value"]] == ["fic-00", "fic-01", "fic-02"]
    assert "nextLink" not in last  # paging ends when nextLink is absent


def test_notes_1_5_skiptoken_query_names_are_case_insensitive(raw, msi, control, platform, pool):
    control.configure("arm", fic_write_delay_s=0)
    fill(msi, *pool, 3)
    token = raw.get(f"{fic_url(platform, *pool)}?{API}&$top=2").json()["nextLink"].split("$skiptoken=")[1]
    rest = raw.get(f"{fic_url(platform, *pool)}?{API}&$TOP=2&$skipToken={token}").json()
    assert [f["name"] for f in rest["value"]] == ["fic-02"]


def test_notes_5_api_version_is_required_and_checked(raw, platform, pool):
    r = raw.get(fic_url(platform, *pool))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "MissingApiVersionParameter")
    assert (
        r.json()["error"]["message"] == "The api-version query parameter (?api-version=) is required for all requests."
    )
    r = raw.get(f"{fic_url(platform, *pool)}?api-version=2018-11-30")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidApiVersionParameter")
    assert "'2018-11-30' is invalid" in r.json()["error"]["message"]


def test_notes_3_jobs_identity_token_from_the_env_file_reaches_arm(platform):
    """The seeded jobs FIC lets the jobs' own WorkloadIdentityCredential (env only) call ARM."""
    msi = ManagedServiceIdentityClient(
        WorkloadIdentityCredential(), platform.baseline.subscription_id, base_url=os.environ["CWJ_ARM_ENDPOINT"]
    )
    b = platform.baseline
    assert msi.user_assigned_identities.get(b.jobs_resource_group, b.jobs_identity).client_id == b.jobs_client_id


def test_unimplemented_methods_are_405_not_a_guess(raw, platform, pool):
    r = raw.patch(f"{identity_url(platform, *pool)}?{API}", json={"tags": {}})
    assert r.status_code == 405
    assert raw.get(f"{identity_url(platform, *pool)}/somethingElse?{API}").status_code == 404
