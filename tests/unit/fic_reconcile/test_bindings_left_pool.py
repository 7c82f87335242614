"""An identity that left the pool (identity_binding/left_pool.py): our ClusterRole and ClusterRoleBinding for a
client id AZURE_CLIENT_IDS_JSON no longer lists are deleted (the binding before its role, at the resourceVersion
read), their subjects count against the subject guard, the dry-run shows them; objects without our labels, under
another prefix or without a whole client id are left alone; an ARM binding of ours for such an identity is a
`binding-orphaned` warning with the command, never a delete."""

from __future__ import annotations

from dataclasses import replace

from jobs.fic_reconcile.identity_binding.model import BindingView, DeleteRbac, PutRoleBinding
from jobs.fic_reconcile.identity_binding.plan import wanted_rules
from jobs.fic_reconcile.model import Observed
from jobs.fic_reconcile.modes import plan_mode
from lib.clients.arm_types import ObservedBinding
from lib.clients.rbac_types import ObservedRole, ObservedRoleBinding, Subject
from tests.unit.fic_reconcile.test_bindings import CLIENTS, IB, LABELS, binding_fic, identities, in_place, spaces
from tests.unit.fic_reconcile.test_plan import NOW, POLICY

DEPARTED = CLIENTS[2]
CLUSTER_IB = replace(IB, cluster=("rg-aks", "aks-prod-1"))


def converged(n: int) -> Observed:
    """Three identities converged on n namespaces; then the operator drops the third from the pool."""
    full = Observed(spaces(*[f"ws-{i}" for i in range(n)]), True, identities(*[(binding_fic(c),) for c in CLIENTS]))
    full = replace(full, ib=in_place(full))
    return replace(full, identities=full.identities[:2])


def test_our_role_and_role_binding_of_a_departed_client_id_are_deleted_binding_first_and_shown_in_the_diff() -> None:
    observed = converged(10)
    p = plan_mode(observed, POLICY, CLUSTER_IB, NOW)
    assert p.refusal is None
    deletes = [a for a in p.actions if isinstance(a, DeleteRbac)]
    name = IB.role_name(DEPARTED)
    assert [(a.kind, a.name, a.version) for a in deletes] == [
        ("rolebinding-delete", name, "1"),
        ("role-delete", name, "1"),
    ]
    (gone_rb,) = [rb for rb in observed.ib.role_bindings if rb.name == name]
    assert deletes[0].removed == tuple(sorted(s.namespace for s in gone_rb.subjects)) and deletes[0].removed
    assert deletes[0].describe()["identity"] == DEPARTED
    assert deletes[0].reason == f"client id left the pool; subjects -{len(gone_rb.subjects)}"
    # its namespaces are placed on the two identities left, in the same plan
    added = {ns for a in p.actions if isinstance(a, PutRoleBinding) for ns in a.added}
    assert added >= set(deletes[0].removed)  # (the shard rule may move others too)
    (row,) = [r for r in p.sections["rbac_diff"] if r["change"] == "delete"]
    assert row == {"identity": DEPARTED, "clusterrolebinding": name, "change": "delete", "added": [],
                   "removed": list(deletes[0].removed)}  # fmt: skip
    assert [(r["client_id"], r["object"]) for r in p.sections["left_the_pool"]] == [
        (DEPARTED, f"ClusterRoleBinding {name}"),
        (DEPARTED, f"ClusterRole {name}"),
        (DEPARTED, f"identity binding {IB.binding_name(DEPARTED)}"),  # reported, not deleted
    ]
    # the deletes come after every write of the pool's own RBAC
    assert p.actions.index(deletes[0]) > max(p.actions.index(a) for a in p.actions if isinstance(a, PutRoleBinding))


def test_the_departed_binding_subjects_count_against_the_subject_guard() -> None:
    observed = converged(60)  # the third identity's binding names about 20 of 60 subjects: over max(10, 25%)
    p = plan_mode(observed, POLICY, CLUSTER_IB, NOW)
    assert p.refusal is not None and "RBAC subject(s)" in p.refusal and "--max-deletes 15" in p.refusal
    assert plan_mode(observed, replace(POLICY, allow_mass_delete=True), CLUSTER_IB, NOW).refusal is None


def test_only_ours_is_deleted_labels_prefix_and_a_whole_client_id() -> None:
    observed = converged(6)
    other = "9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"
    extra_roles = (
        ObservedRole(f"coder-ws-use-mi-{other}", (("team", "platform"),), wanted_rules(other), "3"),  # no labels
        ObservedRole(f"coder-wx-use-mi-{other}", LABELS, wanted_rules(other), "3"),  # another install's prefix
        ObservedRole("coder-ws-use-mi-legacy", LABELS, (), "3"),  # not a client id
        ObservedRole(f"coder-ws-use-mi-{other}x", LABELS, (), "3"),
    )
    extra_rbs = (ObservedRoleBinding(f"coder-wx-use-mi-{other}", LABELS, "ClusterRole", f"coder-wx-use-mi-{other}",
                                     (Subject("ServiceAccount", "workspace", "ws-1"),), "3"),)  # fmt: skip
    ib = replace(
        observed.ib, roles=(*observed.ib.roles, *extra_roles), role_bindings=(*observed.ib.role_bindings, *extra_rbs)
    )
    p = plan_mode(replace(observed, ib=ib), POLICY, CLUSTER_IB, NOW)
    assert {a.name for a in p.actions if isinstance(a, DeleteRbac)} == {IB.role_name(DEPARTED)}


def test_a_failed_rbac_read_deletes_nothing() -> None:
    observed = converged(10)
    blind = replace(observed, ib=replace(observed.ib, rbac_error="KubeError: 503"))
    p = plan_mode(blind, POLICY, CLUSTER_IB, NOW)
    assert not [a for a in p.actions if isinstance(a, DeleteRbac)]
    assert [r["object"] for r in p.sections["left_the_pool"]] == [f"identity binding {IB.binding_name(DEPARTED)}"]


def test_an_arm_binding_of_ours_for_a_departed_identity_is_a_warning_with_the_command_never_a_delete() -> None:
    observed = converged(10)
    ours = IB.binding_name(DEPARTED)
    theirs = ObservedBinding("asobinding", IB.identity_id("id-x"), "0e1f2a3b-4c5d-4e6f-8a7b-8c9d0e1f2a3b", "Succeeded")
    p = plan_mode(replace(observed, ib=replace(observed.ib, bindings=(*observed.ib.bindings, theirs))), POLICY,
                  CLUSTER_IB, NOW)  # fmt: skip
    (finding,) = [f for f in p.findings if f.rule == "binding-orphaned"]
    assert finding.severity == "warning" and finding.subject == ours
    assert f"az aks identity-binding delete -g rg-aks --cluster-name aks-prod-1 -n {ours}" in finding.message
    assert "never garbage-collected" in finding.message
    assert not any(getattr(a, "binding", None) == ours for a in p.actions)
    assert {r["object"] for r in p.sections["left_the_pool"]} >= {f"identity binding {ours}"}
    # a pool identity's binding under someone else's name is no orphan; nor is one whose list failed
    blind = replace(observed, ib=replace(observed.ib, bindings_error="HttpResponseError: 500"))
    assert "binding-orphaned" not in {f.rule for f in plan_mode(blind, POLICY, CLUSTER_IB, NOW).findings}


def test_a_binding_of_a_pool_identity_is_never_orphaned_whatever_its_name() -> None:
    observed = converged(4)
    renamed = tuple(replace(b, name=f"aso{b.client_id.replace('-', '')[:20]}") for b in observed.ib.bindings[:2])
    view = BindingView(renamed, observed.ib.roles, observed.ib.role_bindings)
    p = plan_mode(replace(observed, ib=view), POLICY, CLUSTER_IB, NOW)
    assert "binding-orphaned" not in {f.rule for f in p.findings}
