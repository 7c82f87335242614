"""The pure plan of the identity-binding modes (identity_binding/plan.py, modes.py), one example per rule: a binding, a
ClusterRole and a ClusterRoleBinding per pool identity; subjects exactly the placed workspace ServiceAccounts;
the FIC slot check; objects without our labels never touched; the migration prune only where the binding path
was observed in place, and no more per run than the delete threshold; the subject guard. Properties (idempotence,
scoping, subjects = placement) are in test_bindings_properties.py."""

from __future__ import annotations

from dataclasses import replace

from jobs.fic_reconcile.identity_binding.model import (
    BindingPolicy,
    BindingView,
    PutBinding,
    PutRole,
    PutRoleBinding,
    bindings_after,
)
from jobs.fic_reconcile.identity_binding.plan import wanted_rules
from jobs.fic_reconcile.model import DeleteFic, IdentityState, Namespace, Observed, PutFic
from jobs.fic_reconcile.modes import MIGRATED, plan_mode
from jobs.fic_reconcile.placement import place_namespaces
from lib.clients.arm_types import FicSpec, ObservedBinding, ObservedFic
from lib.clients.rbac_types import ObservedRole, ObservedRoleBinding, Subject
from lib.model import Outcome
from lib.render import plan_text
from tests.unit.fic_reconcile.test_plan import NOW, POLICY, ours, unmanaged

LABELS = (("app.kubernetes.io/managed-by", "fic-reconcile"), ("app.kubernetes.io/part-of", "coder-wi-jobs"))
SUB = "3e9c4f5d-6a7b-4c8d-9e9f-0a1b2c3d4e5f"
IB = BindingPolicy("identity-binding", SUB, "rg-pool", "coder-ws-")
BOTH = replace(IB, mode="both")
CLIENTS = [
    "5f3c8a1e-2b4d-4c6e-9f7a-1b2c3d4e5f60",
    "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d",
    "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e",
]


def identities(*fics: tuple[ObservedFic, ...]) -> tuple[IdentityState, ...]:
    return tuple(IdentityState(f"id-{i}", CLIENTS[i], f) for i, f in enumerate(fics))


def spaces(*names: str, terminating: bool = False) -> tuple[Namespace, ...]:
    return tuple(Namespace(n, terminating) for n in names)


def binding_fic(client: str) -> ObservedFic:
    return ObservedFic("aks-identity-binding", FicSpec(f"https://ib.oic.prod-aks.azure.com/tenant/{client}", "x", ()))


def targets(observed: Observed) -> dict[str, str]:
    live = [n for n in observed.namespaces if not n.terminating and n.name.startswith("ws-")]
    return place_namespaces(live, observed.identities, "crc32").targets


def in_place(observed: Observed) -> BindingView:
    """Bindings Succeeded, roles right, subjects exactly the placement: the state a converged run leaves."""
    where = targets(observed)
    view = BindingView(
        bindings=tuple(ObservedBinding(IB.binding_name(i.client_id), IB.identity_id(i.name), i.client_id, "Succeeded")
                       for i in observed.identities),
        roles=tuple(ObservedRole(IB.role_name(i.client_id), LABELS, wanted_rules(i.client_id), "1")
                    for i in observed.identities),
        role_bindings=tuple(
            ObservedRoleBinding(IB.role_name(i.client_id), LABELS, "ClusterRole", IB.role_name(i.client_id),
                                tuple(Subject("ServiceAccount", "workspace", ns) for ns in sorted(where)
                                      if where[ns] == i.name), "1")
            for i in observed.identities),
    )  # fmt: skip
    return view


def kinds(p) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(a.kind for a in p.actions)


def test_a_fresh_cluster_gets_one_binding_role_and_role_binding_per_identity_with_exactly_the_placed_subjects() -> None:
    names = [f"ws-{i}" for i in range(10)]
    observed = Observed(spaces(*names), True, identities((), (), ()))
    p = plan_mode(observed, POLICY, IB, NOW)
    assert p.refusal is None and p.findings == ()
    assert kinds(p) == ["binding-create"] * 3 + ["role-create"] * 3 + ["rolebinding-create"] * 3
    where = targets(observed)
    for a in p.actions:
        if isinstance(a, PutBinding):
            assert a.binding == "coderws" + a.client_id.replace("-", "")
            assert a.identity_id.endswith(
                f"/resourceGroups/rg-pool/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{a.identity}"
            )
        if isinstance(a, PutRoleBinding):
            assert {s.namespace for s in a.subjects} == {ns for ns, t in where.items() if t == a.identity}
            assert all(s.kind == "ServiceAccount" and s.name == "workspace" for s in a.subjects)
    # the binding writes come before any FIC write, bindings before roles before role bindings
    assert [a.phase for a in p.actions] == sorted(a.phase for a in p.actions)
    assert p.sections["rbac_diff"][0]["added"] == sorted(ns for ns, t in where.items() if t == "id-0")


def test_a_converged_cluster_plans_nothing_and_a_gone_or_terminating_namespace_leaves_the_subjects() -> None:
    names = [f"ws-{i}" for i in range(10)]
    observed = Observed(spaces(*names), True, identities(*[(binding_fic(c),) for c in CLIENTS]))
    observed = replace(observed, ib=in_place(observed))
    assert plan_mode(observed, POLICY, IB, NOW).actions == ()
    gone, leaving = "ws-3", "ws-4"
    later = replace(observed, namespaces=(*spaces(*[n for n in names if n not in (gone, leaving)]),
                                          *spaces(leaving, terminating=True)))  # fmt: skip
    p = plan_mode(later, POLICY, IB, NOW)
    assert kinds(p) in (["rolebinding-update"], ["rolebinding-update"] * 2)
    removed = sorted(ns for a in p.actions if isinstance(a, PutRoleBinding) for ns in a.removed)
    assert removed == [gone, leaving]
    assert all(
        s.namespace not in (gone, leaving) for a in p.actions if isinstance(a, PutRoleBinding) for s in a.subjects
    )


def test_an_identity_at_20_fics_without_the_binding_fic_is_a_finding_and_the_others_proceed() -> None:
    full = tuple(unmanaged(f"gh-{i}") for i in range(20))
    observed = Observed(spaces("ws-a"), True, identities(full, (), ()))
    github = replace(POLICY, known_issuers=("https://token.actions.githubusercontent.com",))
    p = plan_mode(observed, github, IB, NOW)
    assert [(f.rule, f.subject, f.severity) for f in p.findings] == [("binding-no-slot", "id-0", "error")]
    assert sorted(a.identity for a in p.actions if isinstance(a, PutBinding)) == ["id-1", "id-2"]
    assert {r["identity"]: r["binding"] for r in p.sections["identity_bindings"]}["id-0"] == "refused: no FIC slot"
    # its binding FIC already there: the binding shares it, no slot needed
    shared = identities((*full[:19], binding_fic(CLIENTS[0])), (), ())
    p = plan_mode(replace(observed, identities=shared), github, IB, NOW)
    assert "binding-no-slot" not in {f.rule for f in p.findings}
    assert "foreign-issuer" not in {f.rule for f in p.findings}  # AKS's own FIC is no backdoor in this mode


def test_a_failed_binding_of_ours_is_put_again_once_there_is_room_and_another_is_reported() -> None:
    full = tuple(unmanaged(f"gh-{i}") for i in range(20))
    github = replace(POLICY, known_issuers=("https://token.actions.githubusercontent.com",))
    failed = ObservedBinding(IB.binding_name(CLIENTS[0]), IB.identity_id("id-0"), CLIENTS[0], "Failed")
    observed = Observed(spaces("ws-a"), True, identities(full), ib=BindingView(bindings=(failed,)))
    p = plan_mode(observed, github, IB, NOW)
    assert not any(isinstance(a, PutBinding) for a in p.actions)
    assert "binding-no-slot" in {f.rule for f in p.findings}
    roomy = replace(observed, identities=identities(full[:19]))
    (put,) = [a for a in plan_mode(roomy, github, IB, NOW).actions if isinstance(a, PutBinding)]
    assert (put.binding, put.reason) == (failed.name, "retry: Failed")
    theirs = replace(roomy, ib=BindingView(bindings=(replace(failed, name="madebyaso"),)))
    p = plan_mode(theirs, github, IB, NOW)
    assert not any(isinstance(a, PutBinding) for a in p.actions)
    assert ("binding-failed", "id-0") in {(f.rule, f.subject) for f in p.findings}


def test_both_mode_keeps_a_slot_free_for_the_binding_fic_it_creates() -> None:
    crowded = tuple(unmanaged(f"gh-{i}") for i in range(19))
    names = [f"ws-{i}" for i in range(40)]
    observed = Observed(spaces(*names), True, identities(crowded, (), ()))
    policy = replace(POLICY, known_issuers=("https://token.actions.githubusercontent.com",))
    p = plan_mode(observed, policy, BOTH, NOW)
    assert any(isinstance(a, PutBinding) and a.identity == "id-0" for a in p.actions)
    assert not any(isinstance(a, PutFic) and a.identity == "id-0" for a in p.actions)  # the 20th slot is the binding's
    assert "unplaceable" in {f.rule for f in p.findings}
    assert any(isinstance(a, PutFic) for a in p.actions)  # FIC mode's work goes on in `both`
    assert "foreign-issuer" not in {f.rule for f in p.findings}  # the reserved slot is no FIC of a foreign issuer


def test_objects_without_our_labels_are_findings_and_never_written() -> None:
    observed = Observed(spaces("ws-a"), True, identities((), ()))
    name = IB.role_name(CLIENTS[0])
    theirs = ObservedRole(name, (("team", "platform"),), wanted_rules(CLIENTS[0]), "7")
    p = plan_mode(replace(observed, ib=BindingView(roles=(theirs,))), POLICY, IB, NOW)
    assert ("rbac-not-ours", "id-0") in {(f.rule, f.subject) for f in p.findings}
    assert not any(isinstance(a, PutRole | PutRoleBinding) and a.identity == "id-0" for a in p.actions)
    assert any(isinstance(a, PutRoleBinding) and a.identity == "id-1" for a in p.actions)


def test_another_binding_of_the_identity_is_used_as_it_is() -> None:
    observed = Observed(spaces("ws-a"), True, identities((binding_fic(CLIENTS[0]),)))
    aso = ObservedBinding("made-by-aso", IB.identity_id("id-0").upper(), "", "Succeeded")
    p = plan_mode(replace(observed, ib=BindingView(bindings=(aso,))), POLICY, IB, NOW)
    assert not any(isinstance(a, PutBinding) for a in p.actions)


def test_the_migration_prunes_a_fic_only_where_the_binding_path_was_observed_in_place() -> None:
    names = [f"ws-{i}" for i in range(6)]
    base = Observed(spaces(*names), True, identities((), (), ()))
    where = targets(base)
    fics = {i.name: tuple(ours(ns) for ns in names if where[ns] == i.name) for i in base.identities}
    with_fics = replace(base, identities=tuple(replace(i, fics=(*fics[i.name], binding_fic(i.client_id)))
                                               for i in base.identities))  # fmt: skip
    # nothing in place yet: RBAC and bindings are created, no FIC is deleted
    p = plan_mode(with_fics, POLICY, IB, NOW)
    assert not any(isinstance(a, DeleteFic) for a in p.actions)
    assert p.sections["fic_migration"]["waiting_for_binding_or_rbac"] == len(names)
    # in place for all but id-0's binding (still Creating): only the others' FICs go
    view = in_place(with_fics)
    creating = replace(view.bindings[0], state="Creating")
    p = plan_mode(replace(with_fics, ib=replace(view, bindings=(creating, *view.bindings[1:]))), POLICY, IB, NOW)
    deleted = {a.namespace for a in p.actions if isinstance(a, DeleteFic)}
    assert deleted == {ns for ns in names if where[ns] != "id-0"}
    assert all(a.reason == MIGRATED for a in p.actions if isinstance(a, DeleteFic))
    # an incomplete observation withholds every delete
    blind = replace(with_fics, ib=view, namespaces_complete=False)
    assert not any(isinstance(a, DeleteFic) for a in plan_mode(blind, POLICY, IB, NOW).actions)


def test_the_migration_prune_takes_at_most_the_delete_threshold_per_run_and_never_refuses() -> None:
    names = [f"ws-{i:02d}" for i in range(60)]
    base = Observed(spaces(*names), True, identities((), (), ()))
    where = targets(base)
    fics = {i.name: tuple(ours(ns) for ns in names if where[ns] == i.name) for i in base.identities}
    observed = replace(base, identities=tuple(replace(i, fics=fics[i.name]) for i in base.identities))
    observed = replace(observed, ib=in_place(observed))
    p = plan_mode(observed, POLICY, IB, NOW)
    assert p.refusal is None
    assert sum(isinstance(a, DeleteFic) for a in p.actions) == 15  # max(10, 60 // 4)
    assert p.sections["fic_migration"]["waiting_for_next_run"] == 45


def test_removing_more_subjects_than_the_threshold_is_refused() -> None:
    names = [f"ws-{i:02d}" for i in range(40)]
    observed = Observed(spaces(*names), True, identities(*[(binding_fic(c),) for c in CLIENTS]))
    observed = replace(observed, ib=in_place(observed))
    few = replace(observed, namespaces=spaces(*names[:20]))
    assert "RBAC subject" in (plan_mode(few, POLICY, IB, NOW).refusal or "")
    none = replace(observed, namespaces=())
    assert "zero workspace namespaces" in (plan_mode(none, POLICY, IB, NOW).refusal or "")
    assert plan_mode(few, replace(POLICY, allow_mass_delete=True), IB, NOW).refusal is None


def test_failed_reads_write_nothing_on_their_side() -> None:
    observed = Observed(
        spaces("ws-a"), True, identities((), ()), ib=BindingView(bindings_error="ARM 500", rbac_error="403")
    )
    p = plan_mode(observed, POLICY, IB, NOW)
    assert p.actions == ()
    assert sorted(f.subject for f in p.findings if f.rule == "observe-failed") == ["identity-bindings", "rbac"]
    gone_fic = replace(observed, identities=identities((ours("ws-gone"),), ()), ib=BindingView(rbac_error="403"))
    p = plan_mode(gone_fic, POLICY, IB, NOW)  # even a stale FIC waits: any failed read, no delete
    assert not any(isinstance(a, DeleteFic) for a in p.actions) and "deletes-suppressed" in {f.rule for f in p.findings}
    unknown = replace(observed, ib=BindingView(), accounts_error="403")
    assert not any(isinstance(a, PutRoleBinding) for a in plan_mode(unknown, POLICY, IB, NOW).actions)


def test_the_text_plan_names_each_tier_in_the_order_apply_runs_them() -> None:
    """The PHASE column of a change ticket says what runs first in words (binding, role, subjects, uncovered, ...),
    not as the -3..3 the JSON sorts by; an identity with no subjects shows `(none)`, not `-` (absent)."""
    observed = Observed(spaces("ws-0", "ws-1"), True, identities((), (), ()))
    text = plan_text("fic-reconcile", plan_mode(observed, POLICY, BOTH, NOW))
    rows = text.split("\n\n")[0].splitlines()[2:]
    phases = [row.split()[0] for row in rows]
    assert list(dict.fromkeys(phases)) == ["binding", "role", "subjects", "uncovered"]
    empty = [c for c in CLIENTS if c not in {a.client_id for a in plan_mode(observed, POLICY, BOTH, NOW).actions
                                              if isinstance(a, PutFic)}]  # fmt: skip
    assert empty and all(f"{IB.role_name(c)}: subjects: - -> (none)" in text for c in empty)


def test_the_state_after_the_run_comes_from_each_writes_result_not_the_plans_view() -> None:
    """bindings_after: a binding created now is Succeeded, a failed one says failed, an untouched one keeps what
    was observed; the subjects are the written ClusterRoleBinding's when that write succeeded."""
    observed = Observed(spaces(*(f"ws-{i}" for i in range(6))), True, identities((), (), ()))
    p = plan_mode(observed, POLICY, IB, NOW)
    results = {"id-0": "ok", "id-1": "failed"}  # id-2's writes were deferred
    outcomes = [Outcome(a, results.get(a.identity, "deferred")) for a in p.actions]
    after = {r["identity"]: r for r in bindings_after(p.sections["identity_bindings"], outcomes)}
    placed = {r["identity"]: r["placed_namespaces"] for r in p.sections["identity_bindings"]}
    assert {i: (r["binding"], r["rbac"]) for i, r in after.items()} == {
        "id-0": ("Succeeded", "ok"), "id-1": ("failed", "failed"), "id-2": ("deferred", "deferred")
    }  # fmt: skip
    assert after["id-0"]["subjects"] == placed["id-0"] and after["id-1"]["subjects"] == 0
    # ARM answered the PUT but the binding is still provisioning: not ready yet, whatever the write's result
    slow = [Outcome(o.action, o.result, "provisioning Creating" if isinstance(o.action, PutBinding) else "")
            for o in outcomes]  # fmt: skip
    assert bindings_after(p.sections["identity_bindings"], slow)[0]["binding"] == "Creating"
    assert bindings_after(p.sections["identity_bindings"], []) == [
        {**{k: v for k, v in r.items() if k != "observed_subjects"}, "subjects": r["observed_subjects"]}
        for r in p.sections["identity_bindings"]
    ]
