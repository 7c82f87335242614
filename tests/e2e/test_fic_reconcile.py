"""fic-reconcile end to end: the console script against the emulated platform, through the real SDKs.
Each test names the issue's "Done means" point it proves. Request counts and order come from the
emulators' own log (control API), not from the job's report."""

from __future__ import annotations

import json
import os
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity
from kubernetes import client as k8s

from lib.clients.azure_auth import azure_credential
from lib.clients.kube import core_api
from tests.conftest import Control, run_job
from tests.e2e import pushed_samples
from tests.emulators.platform import Platform
from tests.pushgateway import SUCCESS, Pushgateway
from tests.receivers import receiver

pytestmark = pytest.mark.e2e

AUDIENCE = "api://AzureADTokenExchange"
CONCURRENT = "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"


# ---- helpers: the platform seen through the same SDKs an operator would use -----------------------------


def namespaces(count: int, start: int = 0) -> list[str]:
    return [f"ameide-ws-{i:03d}" for i in range(start, start + count)]


def create_namespaces(names: list[str]) -> None:
    api = core_api(os.environ)
    for name in names:
        api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))


def delete_namespaces(platform: Platform, names: list[str]) -> None:
    """Delete, then let the emulated namespace controller finish: a deleted namespace stays Terminating (and
    listed) until its content is gone, `namespace_cleanup_seconds` of emulated time later."""
    api = core_api(os.environ)
    for name in names:
        api.delete_namespace(name)
    platform.clock.advance(platform.kube.settings["namespace_cleanup_seconds"])


def msi(platform: Platform) -> ManagedServiceIdentityClient:
    return ManagedServiceIdentityClient(
        azure_credential(os.environ), platform.baseline.subscription_id, base_url=platform.arm.url
    )


def pool_names(platform: Platform, size: int | None = None) -> list[str]:
    return [platform.baseline.pool_identity_name(i) for i in range(size or platform.baseline.pool_size)]


def fics(platform: Platform, identity: str) -> dict[str, FederatedIdentityCredential]:
    client = msi(platform)
    return {
        f.name: f for f in client.federated_identity_credentials.list(platform.baseline.pool_resource_group, identity)
    }


def shard(ns: str, size: int) -> int:
    return zlib.crc32(ns.encode()) % size


def run(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    proc = run_job("fic-reconcile", "--output", "json", *args, env=env)
    document = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, document, proc.stderr


def writes(control: Control) -> int:
    return sum(control.count("arm", op) for op in ("fic.put", "fic.delete", "identity.put", "identity.delete"))


def converged(platform: Platform, names: list[str], size: int | None = None) -> None:
    size = size or platform.baseline.pool_size
    pool = pool_names(platform, size)
    held = {identity: fics(platform, identity) for identity in pool}
    for ns in names:
        fic = held[pool[shard(ns, size)]].get(f"coder-ws-{ns}")
        assert fic is not None, ns
        assert (fic.issuer, fic.subject, fic.audiences) == (
            platform.baseline.oidc_issuer,
            f"system:serviceaccount:{ns}:workspace",
            [AUDIENCE],
        )
        for other in pool:
            if other != pool[shard(ns, size)]:
                assert f"coder-ws-{ns}" not in held[other], (ns, other)


# ---- 1, 2: create on the right shard; idempotent; Entra accepts exactly the shard -------------------------


def test_1_first_run_creates_25_fics_on_their_shards_and_a_second_run_writes_nothing(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(25)
    create_namespaces(names)
    code, report, stderr = run(env)
    assert code == 0, stderr
    assert control.count("arm", "fic.put") == 25 and control.count("arm", "fic.delete") == 0
    assert [e for e in control.requests("arm")["log"] if e["status"] == 409] == []  # one writer per identity
    converged(platform, names)
    assert report["counts"]["outcomes"] == {"create.ok": 25}
    # no credential leaks into what the job prints
    secrets = [platform.kube.token, Path(env["AZURE_FEDERATED_TOKEN_FILE"]).read_text().strip()]
    assert not any(s in stderr or s in json.dumps(report) for s in secrets)

    control.clear_requests()
    code, report, _ = run(env)
    assert code == 0
    assert control.count("arm", "fic.put") == 0 and control.count("arm", "fic.delete") == 0
    assert report["outcomes"] == []


def test_2_entra_grants_a_token_only_to_the_namespace_shard(platform: Platform, env: dict[str, str]) -> None:
    names = namespaces(25)
    create_namespaces(names)
    assert run(env)[0] == 0
    pool = platform.baseline.pool_client_ids
    # [doc] Entra needs time before a new FIC matches (AADSTS70021 meanwhile; tests/emulators/entra/emulator.py)
    first = names[0]
    fresh = ClientAssertionCredential(
        platform.baseline.tenant_id,
        pool[shard(first, len(pool))],
        func=lambda: platform.service_account_jwt(first, "workspace"),
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):
        fresh.get_token("https://management.azure.com/.default")
    platform.clock.advance(platform.entra.settings["fic_propagation_seconds"])
    for ns in names:
        assertion = platform.service_account_jwt(ns, "workspace")
        for index, client_id in enumerate(pool):
            credential = ClientAssertionCredential(platform.baseline.tenant_id, client_id, func=lambda a=assertion: a)
            if index == shard(ns, len(pool)):
                assert credential.get_token("https://management.azure.com/.default").token
            else:
                with pytest.raises(ClientAuthenticationError, match="AADSTS700213"):
                    credential.get_token("https://management.azure.com/.default")


# ---- 3: deleted namespaces; unmanaged FICs stay ------------------------------------------------------------


def test_3_deleting_5_namespaces_deletes_exactly_their_fics_and_keeps_unmanaged(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(25)
    create_namespaces(names)
    rg, first = platform.baseline.pool_resource_group, pool_names(platform)[0]
    unmanaged = FederatedIdentityCredential(
        issuer="https://token.actions.githubusercontent.com",
        subject="repo:org/infra:ref:refs/heads/main",
        audiences=[AUDIENCE],
    )
    msi(platform).federated_identity_credentials.create_or_update(rg, first, "github-infra-deploy", unmanaged)
    env = {**env, "CWJ_KNOWN_ISSUERS": "https://token.actions.githubusercontent.com"}  # declared: no finding
    assert run(env)[0] == 0
    gone = names[3:8]
    delete_namespaces(platform, gone)
    control.clear_requests()
    code, _report, stderr = run(env)
    assert code == 0, stderr
    deleted = sorted(e["path"].rsplit("/", 1)[-1].split("?")[0] for e in control.requests("arm", "fic.delete")["log"])
    assert deleted == sorted(f"coder-ws-{ns}" for ns in gone)
    assert control.count("arm", "fic.put") == 0
    assert "github-infra-deploy" in fics(platform, first)
    converged(platform, [n for n in names if n not in gone])


# ---- issue 21: a FIC of a foreign issuer on a pool identity is reported, counted and never touched -------------

GITHUB = "https://token.actions.githubusercontent.com"


def test_a_github_fic_on_a_pool_identity_is_an_error_finding_and_a_metric_and_is_never_touched(
    platform: Platform, env: dict[str, str], control: Control
) -> None:

    names = namespaces(6)
    create_namespaces(names)
    rg, target = platform.baseline.pool_resource_group, pool_names(platform)[1]
    subject = "repo:someone-else/tooling:ref:refs/heads/main"
    backdoor = FederatedIdentityCredential(issuer=GITHUB, subject=subject, audiences=[AUDIENCE])
    msi(platform).federated_identity_credentials.create_or_update(rg, target, "ci-deploy", backdoor)
    control.clear_requests()
    with receiver() as rec:
        code, report, stderr = run(env, "--pushgateway-url", rec.url, "--allow-insecure-http")
    assert code == 1, stderr  # an error finding fails the run, though everything else was applied
    [finding] = [f for f in report["findings"] if f["rule"] == "foreign-issuer"]
    assert finding["severity"] == "error" and finding["subject"] == f"{target}/ci-deploy"
    assert GITHUB in finding["message"] and subject in finding["message"]
    assert report["foreign_issuer_credentials"] == [
        {"identity": target, "fic": "ci-deploy", "issuer": GITHUB, "subject": subject}
    ]
    assert [(o["kind"], o["result"]) for o in report["outcomes"]] == [("create", "ok")] * len(names)
    converged(platform, names)
    samples = pushed_samples(rec.requests[0].body.decode())
    counts = {i: samples[("cwj_fic_foreign_issuer_credentials", (("identity", i),))] for i in pool_names(platform)}
    assert counts == {i: (1 if i == target else 0) for i in pool_names(platform)}
    assert samples[("cwj_findings", (("rule", "foreign-issuer"), ("severity", "error")))] == 1
    assert ("cwj_last_success_timestamp_seconds", ()) not in samples
    kept = fics(platform, target)["ci-deploy"]
    assert (kept.issuer, kept.subject, kept.audiences) == (GITHUB, subject, [AUDIENCE])
    touched = [e for op in ("fic.put", "fic.delete") for e in control.requests("arm", op)["log"]]
    assert not [e for e in touched if "ci-deploy" in e["path"]]

    # Declared (the team that owns it says so): no finding, the gauge drops to 0, still untouched.
    control.clear_requests()
    with receiver() as rec:
        code, report, stderr = run(
            env, "--known-issuers", GITHUB, "--pushgateway-url", rec.url, "--allow-insecure-http"
        )
    assert code == 0, stderr
    assert not [f for f in report["findings"] if f["rule"] == "foreign-issuer"] and writes(control) == 0
    samples = pushed_samples(rec.requests[0].body.decode())
    assert samples[("cwj_fic_foreign_issuer_credentials", (("identity", target),))] == 0
    assert "ci-deploy" in fics(platform, target)


# ---- 4: grow the pool; create, wait out the grace, then delete, in the request log ---------------------------


def test_4_growing_the_pool_creates_first_and_deletes_the_old_copies_after_the_grace(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(25)
    create_namespaces(names)
    assert run(env)[0] == 0
    rg = platform.baseline.pool_resource_group
    new = msi(platform).user_assigned_identities.create_or_update(
        rg, platform.baseline.pool_identity_name(3), Identity(location=platform.baseline.location)
    )
    grown = {**env, "AZURE_CLIENT_IDS_JSON": json.dumps([*platform.baseline.pool_client_ids, new.client_id])}
    moved = [ns for ns in names if shard(ns, 3) != shard(ns, 4)]
    assert len(moved) > 10  # modulo sharding moves most namespaces: more than the delete guard's 10

    control.clear_requests()
    t0 = datetime.now(UTC)
    code, _report, stderr = run(grown, "--now", t0.isoformat())
    assert code == 0, stderr  # creates only: no delete, so no guard to trip
    assert control.count("arm", "fic.put") == len(moved) and control.count("arm", "fic.delete") == 0
    assert run(grown, "--now", (t0 + timedelta(minutes=59)).isoformat())[0] == 0
    assert control.count("arm", "fic.delete") == 0  # within the grace: the old copies stay

    code, report, stderr = run(grown, "--now", (t0 + timedelta(minutes=61)).isoformat())
    assert code == 0 and report.get("refusal") is None, stderr  # relocation deletes do not count toward the guard
    converged(platform, names, size=4)
    log = control.requests("arm")["log"]
    pool = pool_names(platform, 4)
    for ns in moved:
        fic = f"coder-ws-{ns}"
        put = [
            e["seq"]
            for e in log
            if e["op"] == "fic.put" and f"/{pool[shard(ns, 4)]}/" in e["path"] and fic in e["path"]
        ]
        delete = [
            e["seq"]
            for e in log
            if e["op"] == "fic.delete" and f"/{pool[shard(ns, 3)]}/" in e["path"] and fic in e["path"]
        ]
        assert len(put) == 1 and len(delete) == 1 and put[0] < delete[0], ns
    assert control.count("arm", "fic.delete") == len(moved)

    control.clear_requests()
    assert run(grown, "--now", (t0 + timedelta(minutes=62)).isoformat())[0] == 0 and writes(control) == 0


# ---- 5: overflow -----------------------------------------------------------------------------------------


def test_5_more_than_20_on_one_identity_reports_the_overflow_by_name_and_applies_the_rest(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    crowded = [n for n in namespaces(120) if shard(n, 3) == 0][:23]
    others = [n for n in namespaces(120) if shard(n, 3) != 0][:5]
    create_namespaces(crowded + others)
    code, report, _ = run(env)
    assert code == 1
    unplaceable = sorted(f["subject"] for f in report["findings"] if f["rule"] == "unplaceable")
    assert unplaceable == sorted(crowded)[20:]
    assert control.count("arm", "fic.put") == 25
    converged(platform, sorted(crowded)[:20] + others)
    first = next(r for r in report["capacity"] if r["identity"] == pool_names(platform)[0])
    assert first["planned"] == 20


# ---- 6: faults ---------------------------------------------------------------------------------------------


def test_6_concurrent_write_409_and_429_with_retry_after_converge(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(12)
    create_namespaces(names)
    control.fault("arm", "fic.put", status=409, code=CONCURRENT, message="Concurrent writes", count=3)
    control.fault("arm", "fic.put", status=429, retry_after=1, code="TooManyRequests", count=2)
    code, _report, stderr = run(env)
    assert code == 0, stderr
    assert control.count("arm", "fic.put") == 12 + 5
    retries = [json.loads(line) for line in stderr.splitlines() if '"event": "retry"' in line]
    assert [r["client"] for r in retries] == ["arm"] * 5  # the one retry shape every client logs
    assert sorted(r["status"] for r in retries) == [409, 409, 409, 429, 429]
    assert all(r["call"].startswith("put FIC ") for r in retries)
    converged(platform, names)


def test_6_a_500_on_one_identity_leaves_the_others_converged_and_fails_the_run(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(15)
    create_namespaces(names)
    broken = pool_names(platform)[1]
    control.fault("arm", "fic.put", status=500, count=None, match=f"/{broken}/")
    code, report, _ = run(env)
    assert code == 1
    failed = [o for o in report["outcomes"] if o["result"] == "failed"]
    on_broken = [n for n in names if shard(n, 3) == 1]
    assert sorted(o["namespace"] for o in failed) == on_broken and all(o["identity"] == broken for o in failed)
    assert all("500" in o["detail"] for o in failed)
    converged(platform, [n for n in names if shard(n, 3) != 1])


def test_6_a_failing_namespace_list_deletes_nothing(platform: Platform, env: dict[str, str], control: Control) -> None:
    names = namespaces(10)
    create_namespaces(names)
    assert run(env)[0] == 0
    delete_namespaces(platform, names[:2])
    control.fault("kube", "namespaces.list", status=500, count=None)
    control.clear_requests()
    code, report, _ = run(env)
    assert code == 1
    assert control.count("arm", "fic.delete") == 0
    assert {f["rule"] for f in report["findings"]} >= {"observe-failed"}


def test_drift_after_a_write_that_did_not_stick_is_reported(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    create_namespaces(namespaces(3))
    control.fault("arm", "fic.put", status=200, count=1)  # a 200 whose body is not the FIC: nothing stored
    code, report, _ = run(env)
    assert code == 1
    assert [f["rule"] for f in report["findings"]] == ["drift"]


# ---- 7: the delete guard ---------------------------------------------------------------------------------


def test_7_over_the_delete_threshold_refuses_with_zero_writes_unless_allowed(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(25)
    create_namespaces(names)
    assert run(env)[0] == 0
    delete_namespaces(platform, names[:11])  # 11 > max(10, 25 // 4)
    control.clear_requests()
    code, plan, _ = run(env)
    assert code == 3 and writes(control) == 0
    assert plan["kind"] == "plan" and "more than --max-deletes 10" in plan["refusal"]
    code, _report, _ = run(env, "--allow-mass-delete")
    assert code == 0 and control.count("arm", "fic.delete") == 11


def test_7_zero_namespaces_while_ours_exist_is_refused(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(3)
    create_namespaces(names)
    assert run(env)[0] == 0
    delete_namespaces(platform, names)
    control.clear_requests()
    code, plan, _ = run(env)
    assert code == 3 and writes(control) == 0 and "zero" in plan["refusal"]


# ---- 8: bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"AZURE_CLIENT_IDS_JSON": "[not json"}, "--client-ids-json (AZURE_CLIENT_IDS_JSON)"),
        ({"AZURE_CLIENT_IDS_JSON": "[]"}, "--client-ids-json (AZURE_CLIENT_IDS_JSON)"),
        ({"AZURE_CLIENT_IDS_JSON": "dup"}, "--client-ids-json (AZURE_CLIENT_IDS_JSON)"),
        ({"AZURE_CLIENT_IDS_JSON": "unknown"}, "--client-ids-json (AZURE_CLIENT_IDS_JSON)"),
        ({"CWJ_OIDC_ISSUER": "http://oidc.example.test/"}, "--issuer (CWJ_OIDC_ISSUER)"),
        ({"CWJ_FIC_PREFIX": "coder ws "}, "--fic-prefix (CWJ_FIC_PREFIX)"),
        ({"CWJ_FIC_PREFIX": "p" * 60}, "--fic-prefix (CWJ_FIC_PREFIX)"),
        ({"CWJ_IDENTITY_RESOURCE_GROUP": "rg-typo"}, "--resource-group (CWJ_IDENTITY_RESOURCE_GROUP)"),
    ],
)
def test_8_bad_input_exits_2_naming_the_setting_with_zero_writes(
    platform: Platform, env: dict[str, str], control: Control, override: dict[str, str], setting: str
) -> None:
    create_namespaces(namespaces(3))
    pool = platform.baseline.pool_client_ids
    value = override.get("AZURE_CLIENT_IDS_JSON")
    if value == "dup":
        override = {"AZURE_CLIENT_IDS_JSON": json.dumps([pool[0], pool[1], pool[0]])}
    elif value == "unknown":
        override = {"AZURE_CLIENT_IDS_JSON": json.dumps([*pool, "00000000-0000-4000-8000-000000000000"])}
    proc = run_job("fic-reconcile", env={**env, **override})
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("fic-reconcile: configuration error: ")]
    assert len(lines) == 1 and setting in lines[0], proc.stderr
    assert writes(control) == 0 and proc.stdout == ""


# ---- 10: dry-run ---------------------------------------------------------------------------------------------


def test_10_dry_run_prints_the_plan_and_writes_nothing(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    create_namespaces(namespaces(6))
    code, plan, _ = run(env, "--dry-run")
    assert code == 0 and plan["kind"] == "plan"
    assert len(plan["actions"]) == 6 and {a["kind"] for a in plan["actions"]} == {"create"}
    assert set(plan["actions"][0]) == {"kind", "target", "reason", "changes", "phase", "identity", "fic", "namespace"}
    assert writes(control) == 0
    text = run_job("fic-reconcile", "--dry-run", env=env).stdout
    assert "IDENTITY" in text and "coder-ws-ameide-ws-000" in text and "pool_capacity" in text
    assert writes(control) == 0


# ---- metrics -------------------------------------------------------------------------------------------------


def test_metrics_push_actions_occupancy_and_last_success(
    platform: Platform, env: dict[str, str], pushgateway: Pushgateway
) -> None:
    names = namespaces(7)
    create_namespaces(names)
    assert run({**env, **pushgateway.env}, "--pushgateway-url", pushgateway.url)[0] == 0
    assert pushgateway.groups("fic-reconcile") == {
        ("default", ""),
        ("default", "success"),
    }  # the run, then (it succeeded) the success
    samples = pushgateway.samples("fic-reconcile")  # the run group, read back from the real Pushgateway
    assert samples[("cwj_actions", (("kind", "create"), ("result", "ok")))] == 7
    for i, identity in enumerate(pool_names(platform)):
        expected = sum(1 for n in names if shard(n, 3) == i)
        assert samples[("cwj_fic_identity_fics", (("identity", identity), ("owner", "ours")))] == expected
        assert samples[("cwj_fic_identity_limit", (("identity", identity),))] == 20
    assert samples[("cwj_last_run_exit_code", ())] == 0 and samples[("cwj_last_run_duration_seconds", ())] > 0
    assert list(pushgateway.samples("fic-reconcile", group=SUCCESS)) == [("cwj_last_success_timestamp_seconds", ())]
