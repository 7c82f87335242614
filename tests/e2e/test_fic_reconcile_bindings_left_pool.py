"""fic-reconcile --mode identity-binding when an identity leaves the pool (AZURE_CLIENT_IDS_JSON loses it), end to
end as the job's own ServiceAccount (the emulator's model of the chart's RBAC, with `delete`): our ClusterRole and
ClusterRoleBinding for that client id are deleted, so no workspace keeps the use of the removed identity, while its
namespaces move onto the identities left and still exchange; the ARM binding stays (a `binding-orphaned` warning
with the command: its FIC is never garbage-collected and a person may still use it)."""

from __future__ import annotations

import json
import zlib

import pytest

from tests.conftest import Control
from tests.e2e.test_fic_reconcile_bindings import (
    bindings,
    create_workspaces,
    namespaces,
    ours_rbac,
    pool,
    run,
    writes,
)
from tests.e2e.workload_exchange import exchange
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e


def test_an_identity_that_left_the_pool_loses_its_rbac_keeps_its_binding_and_its_workspaces_move(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    b = platform.baseline
    as_job = {**env, "KUBECONFIG": str(platform.service_account_kubeconfig(b.jobs_namespace, b.jobs_service_account))}
    names = namespaces(12)
    create_workspaces(names)
    control.configure("arm", binding_lro_seconds=0)
    code, _, stderr = run(as_job, "--mode", "identity-binding")
    assert code == 0, stderr
    platform.clock.advance(platform.entra.settings["fic_propagation_seconds"])
    clients = [c for _, c in pool(platform)]
    kept, departed = clients[:2], clients[2]
    was_there = [ns for ns in names if zlib.crc32(ns.encode()) % 3 == 2]
    assert was_there and all(exchange(platform, ns, departed, via="identity-binding").granted for ns in was_there)

    shrunk = {**as_job, "AZURE_CLIENT_IDS_JSON": json.dumps(kept)}
    control.clear_requests()
    code, report, stderr = run(shrunk, "--mode", "identity-binding")
    assert code == 0, stderr  # a warning: the run did all it should
    name = f"coder-ws-use-mi-{departed}"
    done = {(o["kind"], o["object"], o["result"]) for o in report["outcomes"] if o["kind"].endswith("-delete")}
    assert done == {("rolebinding-delete", name, "ok"), ("role-delete", name, "ok")}
    roles, bound = ours_rbac()
    assert sorted(roles) == sorted(bound) == sorted(f"coder-ws-use-mi-{c}" for c in kept)
    assert control.count("kube", "rbac.delete") == 2
    (row,) = [r for r in report["rbac_diff"] if r["change"] == "delete"]
    assert sorted(row["removed"]) == sorted(was_there)
    # the ARM binding stays, reported with the command to delete it
    orphan = "coderws" + departed.replace("-", "")
    assert orphan in bindings(platform) and control.count("arm", "aks.binding.delete") == 0
    (finding,) = [f for f in report["findings"] if f["rule"] == "binding-orphaned"]
    assert finding["severity"] == "warning" and finding["subject"] == orphan
    rg, cluster = b.cluster_resource_group, b.cluster_name
    assert f"az aks identity-binding delete -g {rg} --cluster-name {cluster} -n {orphan}" in finding["message"]

    # nobody may use the removed identity any more; every workspace exchanges through the two left
    assert not any(exchange(platform, ns, departed, via="identity-binding").granted for ns in was_there)
    for ns in names:
        assert exchange(platform, ns, kept[zlib.crc32(ns.encode()) % 2], via="identity-binding").granted, ns

    control.clear_requests()
    code, report, _ = run(shrunk, "--mode", "identity-binding")
    assert code == 0 and writes(control) == 0
    assert [f["rule"] for f in report["findings"] if f["severity"] != "info"] == ["binding-orphaned"]
