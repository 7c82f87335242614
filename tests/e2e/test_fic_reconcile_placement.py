"""fic-reconcile follows the truth (issue 13), the console script against the emulated platform: placement from
the workspace ServiceAccount's annotation, Terminating namespaces, an annotation flip waiting out the grace,
two clusters sharing one pool, and bad input. Test names carry the issue's "Done means" point."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client as k8s

from lib.clients.kube import core_api
from tests.conftest import Control, run_job
from tests.e2e.test_fic_reconcile import create_namespaces, fics, namespaces, pool_names, run, shard, writes
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e

ANNOTATION = "azure.workload.identity/client-id"
RECORD = "coder-wi-jobs-fic-relocations"


def service_account(ns: str, client_id: str | None) -> None:
    annotations = {ANNOTATION: client_id} if client_id else None
    meta = k8s.V1ObjectMeta(name="workspace", annotations=annotations)
    core_api(os.environ).create_namespaced_service_account(ns, k8s.V1ServiceAccount(metadata=meta))


def annotate(ns: str, client_id: str) -> None:
    core_api(os.environ).patch_namespaced_service_account(
        "workspace", ns, {"metadata": {"annotations": {ANNOTATION: client_id}}}
    )


def holders(platform: Platform, ns: str, size: int = 3) -> list[int]:
    """The pool indexes whose identity holds this namespace's FIC."""
    return [i for i, identity in enumerate(pool_names(platform, size)) if f"coder-ws-{ns}" in fics(platform, identity)]


def record(platform: Platform) -> dict[str, dict[str, str]]:
    cm = core_api(os.environ).read_namespaced_config_map(RECORD, platform.baseline.jobs_namespace)
    return {ns: json.loads(value) for ns, value in (cm.data or {}).items()}


def at(moment: datetime) -> tuple[str, str]:
    return "--now", moment.isoformat()


# ---- 1: placement ------------------------------------------------------------------------------------------


def test_1_fics_follow_the_service_account_else_the_shard_and_a_foreign_client_id_gets_none(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    pool = platform.baseline.pool_client_ids
    moved, agreeing, foreign, bare, no_annotation = namespaces(5)
    create_namespaces([moved, agreeing, foreign, bare, no_annotation])
    other = (shard(moved, 3) + 1) % 3
    service_account(moved, pool[other].upper())  # GUIDs compare case-insensitively
    service_account(agreeing, pool[shard(agreeing, 3)])
    service_account(foreign, "00000000-0000-4000-8000-00000000f0e1")
    service_account(no_annotation, None)
    code, report, stderr = run(env)
    assert code == 1, stderr  # foreign-client-id is an error finding: the workspace cannot reach Azure through us
    assert holders(platform, moved) == [other]
    assert holders(platform, agreeing) == [shard(agreeing, 3)]
    assert holders(platform, foreign) == []
    assert holders(platform, bare) == [shard(bare, 3)] and holders(platform, no_annotation) == [shard(no_annotation, 3)]
    found = {(f["rule"], f["subject"], f["severity"]) for f in report["findings"]}
    assert found == {("shard-disagrees", moved, "warning"), ("foreign-client-id", foreign, "error")}
    assert report["placement"] == {"annotated": 2, "predicted": 2, "disagreeing": 1, "foreign": 1}
    assert control.count("kube", "serviceaccounts.list_all") == 1  # one cluster-wide list


# ---- 2: a namespace held by a finalizer ---------------------------------------------------------------------


def test_2_a_terminating_namespace_stays_listed_and_loses_its_fic(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    held, kept = namespaces(2)
    api = core_api(os.environ)
    api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=held, finalizers=["example.com/hold"])))
    create_namespaces([kept])
    assert run(env)[0] == 0 and holders(platform, held) == [shard(held, 3)]
    api.delete_namespace(held)
    platform.clock.advance(3600)  # long past the namespace controller's cleanup: only our finalizer holds it
    assert api.read_namespace(held).status.phase == "Terminating"
    control.clear_requests()
    code, report, stderr = run(env)
    assert code == 0, stderr
    assert [(o["kind"], o["namespace"], o["reason"]) for o in report["outcomes"]] == [
        ("delete", held, "stale: namespace terminating")
    ]
    assert holders(platform, held) == [] and holders(platform, kept) == [shard(kept, 3)]


# ---- 3: an annotation flips to another pool identity ----------------------------------------------------------


def test_3_an_annotation_flip_creates_at_once_and_deletes_the_old_fic_only_after_the_grace(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    pool = platform.baseline.pool_client_ids
    [ns] = namespaces(1)
    create_namespaces([ns])
    first = shard(ns, 3)
    service_account(ns, pool[first])
    t0 = datetime.now(UTC).replace(microsecond=0)
    assert run(env, *at(t0))[0] == 0 and holders(platform, ns) == [first]
    second = (first + 1) % 3
    annotate(ns, pool[second])
    control.clear_requests()
    code, _, stderr = run(env, *at(t0 + timedelta(minutes=5)))
    assert code == 0, stderr
    assert holders(platform, ns) == sorted([first, second])  # never a moment without the one the SA names
    assert control.count("arm", "fic.delete") == 0
    since = record(platform)[ns]
    assert since == {
        "identity": pool_names(platform)[second],
        "since": (t0 + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert run(env, *at(t0 + timedelta(minutes=64)))[0] == 0 and holders(platform, ns) == sorted([first, second])
    code, report, _ = run(env, *at(t0 + timedelta(minutes=65)))
    assert code == 0 and holders(platform, ns) == [second]
    delete, done = report["outcomes"]  # the old FIC, then the record without this finished relocation
    assert done["kind"] == "record" and done["result"] == "ok"
    assert delete["kind"] == "delete" and delete["reason"].startswith(f"relocated: on {pool_names(platform)[second]}")
    assert run(env, *at(t0 + timedelta(minutes=66)))[0] == 0 and record(platform) == {}


def test_3_a_conflicting_record_write_fails_the_run_and_the_next_one_converges(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    [ns] = namespaces(1)
    create_namespaces([ns])
    service_account(ns, platform.baseline.pool_client_ids[(shard(ns, 3) + 1) % 3])
    assert run(env)[0] == 0
    annotate(ns, platform.baseline.pool_client_ids[(shard(ns, 3) + 2) % 3])
    control.fault("kube", "configmaps.create", status=409, count=1)
    code, report, _ = run(env)
    assert code == 1 and [o["result"] for o in report["outcomes"] if o["kind"] == "record"] == ["failed"]
    assert run(env)[0] == 0 and ns in record(platform)


# ---- 7: two clusters, one pool ------------------------------------------------------------------------------


def test_7_two_clusters_sharing_a_pool_each_converge_and_never_touch_the_other(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    api = core_api(os.environ)
    a_only, b_only, both = namespaces(6)[:2], namespaces(6)[2:4], namespaces(6)[4:]
    for names, labels in ((a_only, {"a": "y"}), (b_only, {"b": "y"}), (both, {"a": "y", "b": "y"})):
        for name in names:
            api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels=labels)))
    issuer_a, issuer_b = env["CWJ_OIDC_ISSUER"], "https://oidc.example.test/tenant/other-cluster/"
    # each cluster declares the other's issuer (--known-issuers): its FICs are then no foreign-issuer finding
    cluster_a = {
        **env,
        "CWJ_NAMESPACE_SELECTOR": "a=y",
        "CWJ_STATE_CONFIGMAP": "record-a",
        "CWJ_KNOWN_ISSUERS": issuer_b,
    }
    cluster_b = {**env, "CWJ_NAMESPACE_SELECTOR": "b=y", "CWJ_STATE_CONFIGMAP": "record-b",
                 "CWJ_OIDC_ISSUER": issuer_b, "CWJ_KNOWN_ISSUERS": issuer_a}  # fmt: skip
    assert run(cluster_a)[0] == 0
    code, report, _ = run(cluster_b)
    assert code == 1  # the shared namespace names collide under one prefix
    assert {f["rule"] for f in report["findings"]} == {"name-collision"}
    collisions = [f for f in report["findings"] if f["rule"] == "name-collision"]
    assert sorted(f["subject"] for f in collisions) == sorted(both)
    assert all(issuer_b in f["message"] and env["CWJ_OIDC_ISSUER"] in f["message"] for f in collisions)
    for ns in a_only + b_only + both:
        [holder] = holders(platform, ns)
        assert holder == shard(ns, 3)
    issuers = {ns: next(iter(fics(platform, pool_names(platform)[shard(ns, 3)]).values())).issuer for ns in a_only}
    assert set(issuers.values()) == {env["CWJ_OIDC_ISSUER"]}
    control.clear_requests()
    assert run(cluster_a)[0] == 0 and run(cluster_b)[0] == 1 and writes(control) == 0  # neither rewrites nor deletes
    rows = {r["identity"]: r for r in run(cluster_a, "--dry-run")[1]["capacity"]}
    assert sum(int(r["unmanaged"]) for r in rows.values()) == len(b_only)  # B's FICs count toward the limit


# ---- 8: bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"CWJ_SHARD_HASH": "md5"}, "--shard-hash (CWJ_SHARD_HASH)"),
        ({"CWJ_RELOCATION_GRACE": "-5m"}, "--relocation-grace (CWJ_RELOCATION_GRACE)"),
        ({"CWJ_STATE_NAMESPACE": "Not_A_Namespace"}, "--state-namespace (CWJ_STATE_NAMESPACE)"),
    ],
)
def test_8_bad_input_exits_2_naming_the_setting_with_zero_requests(
    platform: Platform, env: dict[str, str], control: Control, override: dict[str, str], setting: str
) -> None:
    control.clear_requests()
    proc = run_job("fic-reconcile", env={**env, **override})
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("fic-reconcile: configuration error: ")]
    assert setting in line
    assert all(control.count(service) == 0 for service in ("arm", "kube", "entra"))


def test_8_off_cluster_without_a_state_namespace_is_a_configuration_error(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    control.clear_requests()
    bare = {k: v for k, v in env.items() if k != "CWJ_STATE_NAMESPACE"}
    proc = run_job("fic-reconcile", env=bare)
    assert proc.returncode == 2 and "--state-namespace (CWJ_STATE_NAMESPACE)" in proc.stderr
    assert all(control.count(service) == 0 for service in ("arm", "kube", "entra"))


# ---- 4: a grown pool leaves a namespace whose ServiceAccount still names the old identity alone -----------


def test_4_after_a_pool_grows_a_service_account_naming_the_old_identity_keeps_its_fic(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    from azure.mgmt.msi.models import Identity

    from tests.e2e.test_fic_reconcile import msi

    names = [n for n in namespaces(40) if shard(n, 3) != shard(n, 4)][:6]
    create_namespaces(names)
    pinned, free = names[:3], names[3:]
    for ns in pinned:
        service_account(ns, platform.baseline.pool_client_ids[shard(ns, 3)])
    assert run(env)[0] == 0
    new = msi(platform).user_assigned_identities.create_or_update(
        platform.baseline.pool_resource_group, platform.baseline.pool_identity_name(3),
        Identity(location=platform.baseline.location),
    )  # fmt: skip
    grown = {**env, "AZURE_CLIENT_IDS_JSON": json.dumps([*platform.baseline.pool_client_ids, new.client_id])}
    t0 = datetime.now(UTC)
    code, report, _ = run(grown, *at(t0))
    assert code == 0 and {o["namespace"] for o in report["outcomes"] if o["kind"] == "create"} == set(free)
    assert {f["subject"] for f in report["findings"] if f["rule"] == "shard-disagrees"} == set(pinned)
    assert run(grown, *at(t0 + timedelta(hours=2)))[0] == 0
    for ns in pinned:
        assert holders(platform, ns, 4) == [shard(ns, 3)]
    for ns in free:
        assert holders(platform, ns, 4) == [shard(ns, 4)]
