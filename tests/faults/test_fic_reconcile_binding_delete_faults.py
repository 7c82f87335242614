"""fic-reconcile --mode identity-binding's fault matrix for its deletes: the ClusterRoleBinding and ClusterRole of a
client id that left the pool (left_pool.py), and the ARM identity binding DELETE the job never sends. The same
table style as test_fic_reconcile_binding_faults.py, run as the job's own ServiceAccount (the emulator's model of
the chart's RBAC, kube/bootstrap.py), so a 403 is the API server's own authorization answer.

The world before each case: eight workspaces on the binding path of three pool identities; then the pool loses the
third (AZURE_CLIENT_IDS_JSON lists two). A converged run deletes that client id's ClusterRoleBinding, then its
ClusterRole, and moves its namespaces onto the two left (two ClusterRoleBinding updates); its ARM binding stays
(`binding-orphaned`). Each case asserts the exit code, the report's failed actions, what is left on the emulators,
that the kept identities converged anyway, that the next run without the fault converges, and that a third run
writes nothing.

What the faults are, on a real cluster (kubernetes/kubernetes, staging/src/k8s.io/...):
- 404 on DELETE: someone deleted it first. apiserver/pkg/storage/errors/storage.go InterpretDeleteError:
  storage.IsNotFound -> errors.NewNotFound (`<resource>.<group> "<name>" not found`). Done, not a failure.
- 409 on DELETE: someone wrote it since our read; the delete carries our resourceVersion as a precondition.
  apiserver/pkg/storage/interfaces.go Preconditions.Check -> NewInvalidObjError, mapped by InterpretDeleteError to
  errors.NewConflict (`Operation cannot be fulfilled on ...: Precondition failed: ResourceVersion in precondition`).
  Retrying the same precondition cannot succeed: one attempt, and the next run re-reads.
- 500 ServerTimeout with Retry-After: 2: etcd unreachable during the delete. InterpretDeleteError:
  storage.IsUnreachable -> errors.NewServerTimeout(resource, "delete", 2) (apimachinery/pkg/api/errors/errors.go:
  code 500, reason ServerTimeout, `The delete operation against <resource> could not be completed at this time,
  please try again.`); apiserver/pkg/endpoints/handlers/responsewriters/writers.go ErrorNegotiated turns
  details.retryAfterSeconds into the Retry-After header.
- 503 with Retry-After: 1: an API server that is shutting down (apiserver/pkg/server/filters/waitgroup.go:
  NewServiceUnavailable("apiserver is shutting down"), Retry-After "1").
- 403: the job's RBAC without `delete` on clusterrolebindings/clusterroles: the emulator's authorizer answers as
  apiserver/pkg/endpoints/handlers/responsewriters/errors.go forbiddenMessage does (tests/emulators/kube/authz.py).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client as k8s

from lib.clients.kube import api_client
from tests.conftest import Control, run_job
from tests.e2e.test_fic_reconcile_bindings import bindings, create_workspaces, ours_rbac, pool, writes
from tests.emulators.core import Fault
from tests.emulators.kube.bootstrap import BINDINGS_ROLE
from tests.emulators.platform import Platform
from tests.faults.common import Case, Converged, Fails, case, case_env, check_outcome, fault, run_case

pytestmark = pytest.mark.e2e

LIVE = [f"ameide-ws-{c}" for c in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")]
CRB, CR = "/clusterrolebindings/", "/clusterroles/"  # a fault `match`: one kind of object's calls only
RB_GONE, ROLE_GONE = "rolebinding-delete", "role-delete"  # the actions' kinds in the report
SHUTTING_DOWN = {"code": "ServiceUnavailable", "message": "apiserver is shutting down", "retry_after": 1}


def etcd_unreachable(resource: str) -> dict[str, Any]:
    """NewServerTimeout(resource, "delete", 2): 500 ServerTimeout, Retry-After 2."""
    message = f"The delete operation against {resource}.rbac.authorization.k8s.io could not be completed at this time, "
    return {"code": "ServerTimeout", "message": message + "please try again.", "retry_after": 2}


FAILED_OP = '{"status": "Failed", "error": {"code": "InternalOperationError", "message": "binding could not go"}}'


@dataclass(frozen=True)
class Row:
    c: Case
    failed: tuple[str, ...] = ()  # the report's failed actions (their kinds), in order
    left: tuple[str, ...] = ()  # the departed client id's objects still there after the faulted run
    race: str = ""  # "deleted" / "updated": another client's write lands just before the job's DELETE of the CRB
    deny: tuple[str, ...] = ()  # resources whose `delete` the job's RBAC lacks for the faulted run
    attempts: tuple[int, int] | None = None  # (at least, at most) DELETEs of the ClusterRoleBinding
    detail: str = ""  # the ClusterRoleBinding delete's outcome detail, when it says more than "ok"


def row(id: str, expect: Converged | Fails, *faults: Any, within: float | None = None, **kw: Any) -> Row:
    return Row(case(id, expect, *faults, observing=False, within=within), **kw)


def kube_delete(match: str, status: int, **args: Any) -> Any:
    return fault("kube", "rbac.delete", status=status, match=match, **args)


ROWS = [
    # ---- the ClusterRoleBinding's DELETE ----------------------------------------------------------------------
    row(
        "crb-delete-404-someone-deleted-it",
        Converged(),
        race="deleted",
        attempts=(2, 2),  # theirs, then ours
        detail="already gone",
    ),
    row(
        "crb-delete-answer-lost",  # the server deleted it; the connection closed before the answer; the retry: 404
        Converged(),
        fault("kube", "rbac.delete", match=CRB, drop="response"),
        attempts=(2, 2),
        detail="already gone",
    ),
    row(
        "crb-delete-409-precondition",
        Fails((RB_GONE, "409", "Precondition failed: ResourceVersion in precondition")),
        race="updated",
        failed=(RB_GONE,),
        left=("ClusterRoleBinding",),
        attempts=(1, 1),
    ),
    row(
        "crb-delete-500-once",
        Converged(("kube", "rbac.delete")),
        kube_delete(CRB, 500, **etcd_unreachable("clusterrolebindings")),
        attempts=(2, 2),
    ),
    row(
        "crb-delete-500-always",
        Fails((RB_GONE, "500", "could not be completed at this time")),
        kube_delete(CRB, 500, **etcd_unreachable("clusterrolebindings"), count=None),
        failed=(RB_GONE,),
        left=("ClusterRoleBinding",),
        attempts=(2, 4),
    ),
    row(
        "crb-delete-503-retry-after-once",
        Converged(("kube", "rbac.delete"), waited=1.0),
        kube_delete(CRB, 503, **SHUTTING_DOWN),
        attempts=(2, 2),
    ),
    row(
        "crb-delete-503-retry-after-always",
        Fails((RB_GONE, "503", "apiserver is shutting down")),
        kube_delete(CRB, 503, **SHUTTING_DOWN, count=None),
        failed=(RB_GONE,),
        left=("ClusterRoleBinding",),
        attempts=(2, 4),
    ),
    row(
        "crb-delete-503-retry-after-an-hour",  # a server asking for an hour: the run's deadline still holds
        Fails((RB_GONE, "503", "apiserver is shutting down")),
        kube_delete(CRB, 503, **{**SHUTTING_DOWN, "retry_after": 3600}, count=None),
        failed=(RB_GONE,),
        left=("ClusterRoleBinding",),
        attempts=(1, 4),
        within=20,
    ),
    row(
        "crb-and-role-delete-403-no-delete-verb",
        Fails((RB_GONE, "403", 'cannot delete resource "clusterrolebindings" in API group "rbac.authorization')),
        deny=("clusterrolebindings", "clusterroles"),
        failed=(RB_GONE, ROLE_GONE),
        left=("ClusterRoleBinding", "ClusterRole"),
        attempts=(1, 1),
    ),
    # ---- the ClusterRole's DELETE, after its ClusterRoleBinding went -------------------------------------------
    row(
        "role-delete-500-always-after-its-binding-went",
        Fails((ROLE_GONE, "500")),
        kube_delete(CR, 500, **etcd_unreachable("clusterroles"), count=None),
        failed=(ROLE_GONE,),
        left=("ClusterRole",),
        attempts=(1, 1),
    ),
    row(
        "role-delete-403-after-its-binding-went",
        Fails((ROLE_GONE, "403", 'cannot delete resource "clusterroles"')),
        deny=("clusterroles",),
        failed=(ROLE_GONE,),
        left=("ClusterRole",),
        attempts=(1, 1),
    ),
    # ---- the ARM identity binding's DELETE: never sent (docs/identity-bindings.md, "An identity that left the
    # pool"), so neither a sync 500 nor an async operation ending Failed can touch the run ------------------------
    row(
        "arm-binding-delete-500-never-sent",
        Converged(),
        fault("arm", "aks.binding.delete", status=500, count=None),
        attempts=(1, 1),
    ),
    row(
        "arm-binding-delete-operation-failed-never-sent",
        Converged(),
        fault("arm", "aks.operation.get", body=FAILED_OP, count=None),
        attempts=(1, 1),
    ),
]


def _rbac() -> Any:
    return k8s.RbacAuthorizationV1Api(api_client(os.environ))  # the admin kubeconfig: "someone", not the job


def _departed(platform: Platform) -> tuple[list[str], str]:
    clients = [c for _, c in pool(platform)]
    return clients[:2], clients[2]


def _left(departed: str) -> tuple[str, ...]:
    roles, bound = ours_rbac()
    name = f"coder-ws-use-mi-{departed}"
    return tuple(kind for kind, there in (("ClusterRoleBinding", bound), ("ClusterRole", roles)) if name in there)


def _crb_deletes(control: Control) -> int:
    return sum(CRB in e["path"] for e in control.requests("kube", "rbac.delete")["log"])


def _kept_converged(platform: Platform, kept: list[str]) -> None:
    """The identities left hold every workspace, by the two-way shard rule, whatever happened to the deletes."""
    _, bound = ours_rbac()
    for i, client in enumerate(kept):
        subjects = {s.namespace for s in bound[f"coder-ws-use-mi-{client}"].subjects or []}
        assert subjects == {ns for ns in LIVE if zlib.crc32(ns.encode()) % 2 == i}, client


def _race(kind: str, name: str) -> Callable[[], None]:
    def someone_deleted_it() -> None:
        _rbac().delete_cluster_role_binding(name)

    def someone_updated_it() -> None:
        api = _rbac()
        obj = api.read_cluster_role_binding(name)
        obj.metadata.annotations = {"example.com/touched-by": "an SRE"}
        api.replace_cluster_role_binding(name, obj)

    return someone_deleted_it if kind == "deleted" else someone_updated_it


@pytest.fixture
def job_rbac() -> Iterator[Callable[[tuple[str, ...]], None]]:
    """Take `delete` on some resources away from the job's ClusterRole; restored after the case either way."""
    api = _rbac()
    original = api.read_cluster_role(BINDINGS_ROLE)

    def deny(resources: tuple[str, ...]) -> None:
        role = api.read_cluster_role(BINDINGS_ROLE)
        keep = [x for x in ("clusterroles", "clusterrolebindings") if x not in resources]
        delete = k8s.V1PolicyRule(api_groups=["rbac.authorization.k8s.io"], resources=keep, verbs=["delete"])
        role.rules = [r for r in role.rules if "delete" not in r.verbs] + ([delete] if keep else [])
        api.replace_cluster_role(BINDINGS_ROLE, role)

    yield deny
    now = api.read_cluster_role(BINDINGS_ROLE)
    now.rules = original.rules
    api.replace_cluster_role(BINDINGS_ROLE, now)


def _seed(platform: Platform, control: Control, as_job: dict[str, str]) -> None:
    create_workspaces(LIVE)
    control.configure("arm", binding_lro_seconds=0)
    seeded = run_job("fic-reconcile", "--mode", "identity-binding", env=as_job)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    control.clear_requests()


@pytest.mark.parametrize("r", ROWS, ids=lambda r: r.c.id)
def test_identity_binding_deletes_under_fault(
    r: Row, platform: Platform, control: Control, env: dict[str, str], job_rbac: Callable[[tuple[str, ...]], None]
) -> None:
    b = platform.baseline
    as_job = {**env, "KUBECONFIG": str(platform.service_account_kubeconfig(b.jobs_namespace, b.jobs_service_account))}
    _seed(platform, control, as_job)
    kept, departed = _departed(platform)
    shrunk = case_env(r.c, {**as_job, "AZURE_CLIENT_IDS_JSON": json.dumps(kept)})
    name = f"coder-ws-use-mi-{departed}"
    if r.race:
        platform.faults.add(Fault("kube", "rbac.delete", match=CRB + name, before=_race(r.race, name)))
    if r.deny:
        job_rbac(r.deny)

    proc = run_case("fic-reconcile", r.c, control, shrunk, "--mode", "identity-binding", "--output", "json")
    check_outcome(r.c, proc, control)
    report = json.loads(proc.stdout)
    failed = [o["kind"] for o in report["outcomes"] if o["result"] == "failed"]
    assert failed == list(r.failed), report["outcomes"]
    assert _left(departed) == r.left
    if r.attempts:
        low, high = r.attempts
        assert low <= _crb_deletes(control) <= high, control.requests("kube", "rbac.delete")["log"]
    _kept_converged(platform, kept)  # the other identities converged in the same run
    if r.detail:
        (detail,) = [o["detail"] for o in report["outcomes"] if o["kind"] == RB_GONE]
        assert detail == r.detail
    # the ARM binding stays and is reported; no DELETE, so no operation to poll either (every binding exists)
    orphan = "coderws" + departed.replace("-", "")
    assert orphan in bindings(platform) and "binding-orphaned" in {f["rule"] for f in report["findings"]}
    assert control.count("arm", "aks.binding.delete") == control.count("arm", "aks.operation.get") == 0

    control.clear_faults()
    platform.faults.clear()
    job_rbac(())
    again = run_case("fic-reconcile", case("again", Converged()), control, shrunk, "--mode", "identity-binding")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _left(departed) == ()
    _kept_converged(platform, kept)
    control.clear_requests()
    third = run_case("fic-reconcile", case("third", Converged()), control, shrunk, "--mode", "identity-binding")
    assert third.returncode == 0 and writes(control) == 0, third.stderr[-3000:]
