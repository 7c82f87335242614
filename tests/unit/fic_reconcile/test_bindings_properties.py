"""Hypothesis properties of the identity-binding modes over random pools (FICs of ours, unmanaged, full
identities, binding FICs), namespaces (Terminating, annotated, foreign), existing bindings and RBAC objects (ours,
stale, without our labels, of client ids that left the pool under our prefix or another): applying the plan
converges and the plan on the applied state is empty (idempotence); no action ever names an object that is not
ours (prefix and label scoping), a delete only ours of a client id outside the pool; once converged, each
ClusterRoleBinding's subjects are exactly the placement's namespaces, no RBAC of ours for a departed client id
is left, and no ARM binding was deleted."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from jobs.fic_reconcile.identity_binding.model import BindingView, DeleteRbac, PutBinding, PutRole, PutRoleBinding
from jobs.fic_reconcile.identity_binding.plan import wanted_rules
from jobs.fic_reconcile.model import DeleteFic, IdentityState, Namespace, Observed, PutFic, RecordRelocations
from jobs.fic_reconcile.modes import plan_mode
from jobs.fic_reconcile.placement import is_ours
from lib.clients.arm_types import ObservedBinding, ObservedFic
from lib.clients.rbac_types import ObservedRole, ObservedRoleBinding, Subject, carries
from tests.unit.fic_reconcile.test_bindings import BOTH, CLIENTS, IB, LABELS, binding_fic, targets
from tests.unit.fic_reconcile.test_plan import ISSUER, NOW, OTHER, POLICY, ours, unmanaged

NAMES = st.sampled_from([f"ws-{c}" for c in "abcdefghijkl"] + ["other"])
GITHUB = "https://token.actions.githubusercontent.com"
THEIRS = (("team", "platform"),)
GONE = "8c9d0e1f-2a3b-4c4d-8e5f-6a7b8c9d0e1f"  # a client id no scenario's pool holds


def departed(
    draw: st.DrawFn, clients: list[str]
) -> tuple[list[ObservedRole], list[ObservedRoleBinding], list[ObservedBinding]]:
    """RBAC and ARM bindings for client ids outside the pool: ours, without our labels, under another prefix."""
    roles, role_bindings, bindings = [], [], []
    for client in clients:
        prefix = draw(st.sampled_from(["coder-ws-", "coder-ws-", "coder-wx-"]))
        labels = draw(st.sampled_from([LABELS, LABELS, THEIRS]))
        name = f"{prefix}use-mi-{client}"
        if draw(st.booleans()):
            roles.append(ObservedRole(name, labels, wanted_rules(client), "7"))
        if draw(st.booleans()):
            subjects = tuple(
                Subject("ServiceAccount", "workspace", n) for n in draw(st.lists(NAMES, max_size=3, unique=True))
            )
            role_bindings.append(ObservedRoleBinding(name, labels, "ClusterRole", name, subjects, "8"))
        if draw(st.booleans()):
            bindings.append(
                ObservedBinding(IB.binding_name(client), IB.identity_id(f"gone-{client[:4]}"), client, "Succeeded")
            )
    return roles, role_bindings, bindings


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Observed, str]:
    size = draw(st.integers(1, 3))
    clients = st.one_of(st.none(), st.none(), st.sampled_from(CLIENTS[:size]), st.just("foreign"))
    names = draw(st.lists(NAMES, max_size=12, unique=True))
    spaces = tuple(Namespace(n, draw(st.integers(0, 5)) == 0, draw(clients)) for n in names)
    identities = []
    for i in range(size):
        mine = [
            ours(n, draw(st.sampled_from([ISSUER, ISSUER, OTHER])))
            for n in draw(st.lists(NAMES, max_size=4, unique=True))
        ]
        filler = [unmanaged(f"gh-{k}") for k in range(draw(st.sampled_from([0, 0, 3, 16, 20])))]
        extra = [binding_fic(CLIENTS[i])] if draw(st.booleans()) else []
        identities.append(IdentityState(f"id-{i}", CLIENTS[i], tuple([*extra, *mine, *filler][:20])))
    roles, role_bindings, bindings = [], [], []
    for i in range(size):
        name = IB.role_name(CLIENTS[i])
        kind = draw(st.sampled_from(["none", "none", "ours", "stale", "theirs"]))
        if kind != "none":
            labels = THEIRS if kind == "theirs" else LABELS
            rules = wanted_rules(CLIENTS[i]) if kind == "ours" else ()
            roles.append(ObservedRole(name, labels, rules, "1"))
            subjects = tuple(
                Subject("ServiceAccount", "workspace", n) for n in draw(st.lists(NAMES, max_size=4, unique=True))
            )
            role_bindings.append(
                ObservedRoleBinding(name, labels, "ClusterRole", name, (*subjects, Subject("User", "eve")), "1")
            )
        if draw(st.booleans()):
            bindings.append(
                ObservedBinding(IB.binding_name(CLIENTS[i]), IB.identity_id(f"id-{i}"), CLIENTS[i], "Succeeded")
            )
    gone_roles, gone_role_bindings, gone_bindings = departed(draw, [*CLIENTS[size:], GONE])
    view = BindingView(tuple(bindings + gone_bindings), tuple(roles + gone_roles),
                       tuple(role_bindings + gone_role_bindings))  # fmt: skip
    observed = Observed(spaces, True, tuple(identities), ib=view)
    return observed, draw(st.sampled_from(["identity-binding", "both"]))


def policy():  # type: ignore[no-untyped-def]
    return replace(POLICY, allow_mass_delete=True, known_issuers=(GITHUB, OTHER))


def apply_to(observed: Observed, actions) -> Observed:  # type: ignore[no-untyped-def]
    fics = {i.name: {f.name: f for f in i.fics} for i in observed.identities}
    bindings = {b.name: b for b in observed.ib.bindings}
    roles = {r.name: r for r in observed.ib.roles}
    role_bindings = {r.name: r for r in observed.ib.role_bindings}
    client = {i.name: i.client_id for i in observed.identities}
    record = observed.relocations
    for a in actions:
        if isinstance(a, PutBinding):
            bindings[a.binding] = ObservedBinding(a.binding, a.identity_id, a.client_id, "Succeeded")
            fics[a.identity]["aks-identity-binding"] = binding_fic(client[a.identity])
            assert len(fics[a.identity]) <= POLICY.limit
        elif isinstance(a, PutRole):
            roles[a.role] = ObservedRole(a.role, LABELS, wanted_rules(a.client_id), "2")
        elif isinstance(a, PutRoleBinding):
            role_bindings[a.name] = ObservedRoleBinding(a.name, LABELS, "ClusterRole", a.name, a.subjects, "2")
        elif isinstance(a, DeleteRbac):
            del (role_bindings if a.resource == "ClusterRoleBinding" else roles)[a.name]
        elif isinstance(a, PutFic):
            fics[a.identity][a.fic] = ObservedFic(a.fic, a.spec)
            assert len(fics[a.identity]) <= POLICY.limit
        elif isinstance(a, DeleteFic):
            del fics[a.identity][a.fic]
        else:
            assert isinstance(a, RecordRelocations)
            record = a.relocations
    ib = BindingView(tuple(bindings.values()), tuple(roles.values()), tuple(role_bindings.values()))
    identities = tuple(replace(i, fics=tuple(fics[i.name].values())) for i in observed.identities)
    return replace(observed, identities=identities, ib=ib, relocations=record)


def converge(observed: Observed, mode: str) -> Observed:
    ib = IB if mode == "identity-binding" else BOTH
    # the longest chain is 4 runs with writes: a full identity's binding refused, a misplaced FIC of ours pruned
    # (its namespace's path is in place on another identity), the slot it freed bound, the rest pruned
    for _ in range(5):
        p = plan_mode(observed, policy(), ib, NOW)
        if not p.actions:
            return observed
        observed = apply_to(observed, p.actions)
    raise AssertionError(f"no fixed point after 5 runs: {[a.describe() for a in p.actions]}")


@given(scenarios())
def test_applying_the_plan_converges_and_the_plan_on_the_applied_state_is_empty(case: tuple[Observed, str]) -> None:
    observed, mode = case
    done = converge(observed, mode)
    again = plan_mode(done, policy(), IB if mode == "identity-binding" else BOTH, NOW)
    assert again.actions == ()


@given(scenarios())
def test_no_action_names_an_object_that_is_not_ours(case: tuple[Observed, str]) -> None:
    observed, mode = case
    p = plan_mode(observed, policy(), IB if mode == "identity-binding" else BOTH, NOW)
    foreign_rbac = {
        o.name for o in (*observed.ib.roles, *observed.ib.role_bindings) if not carries(o.labels, dict(LABELS))
    }
    fics = {(i.name, f.name): f for i in observed.identities for f in i.fics}
    for a in p.actions:
        if isinstance(a, PutBinding):
            assert a.binding == IB.binding_name(a.client_id)
            assert a.binding not in {b.name for b in observed.ib.bindings}  # never over an existing binding
        elif isinstance(a, PutRole | PutRoleBinding):
            name = a.role if isinstance(a, PutRole) else a.name
            assert name.startswith("coder-ws-use-mi-") and name not in foreign_rbac
        elif isinstance(a, DeleteFic):
            assert is_ours(fics[(a.identity, a.fic)], POLICY.fic_prefix, POLICY.issuer)
        elif isinstance(a, DeleteRbac):
            seen = {
                o.name: o
                for o in (observed.ib.role_bindings if a.resource == "ClusterRoleBinding" else observed.ib.roles)
            }
            assert carries(seen[a.name].labels, dict(LABELS)) and a.version == seen[a.name].version
            assert a.name == IB.role_name(a.client_id) and a.client_id not in {i.client_id for i in observed.identities}
        elif isinstance(a, PutFic):
            assert mode == "both" and a.fic.startswith(POLICY.fic_prefix)


@given(scenarios())
def test_once_converged_the_subjects_are_exactly_the_placement(case: tuple[Observed, str]) -> None:
    observed, mode = case
    done = converge(observed, mode)
    where = targets(done)
    theirs = {o.name for o in observed.ib.roles if not carries(o.labels, dict(LABELS))}
    for identity in done.identities:
        name = IB.role_name(identity.client_id)
        if name in theirs:
            continue
        held = {rb.name: rb for rb in done.ib.role_bindings}[name]
        assert held.subjects == tuple(
            Subject("ServiceAccount", "workspace", ns) for ns in sorted(where) if where[ns] == identity.name
        )
    if mode == "identity-binding":  # and every FIC of ours whose path is in place is gone
        bound = {b.identity_id.lower() for b in done.ib.bindings}
        client = {i.name: i.client_id for i in done.identities}
        ready = {ns for ns, target in where.items() if IB.identity_id(target).lower() in bound
                 and IB.role_name(client[target]) not in theirs}  # fmt: skip
        left = {f.name.removeprefix("coder-ws-") for i in done.identities for f in i.fics
                if is_ours(f, POLICY.fic_prefix, POLICY.issuer)}  # fmt: skip
        assert not ready & left


@given(scenarios())
def test_once_converged_no_rbac_of_ours_is_left_for_a_departed_client_id_and_no_arm_binding_was_deleted(
    case: tuple[Observed, str],
) -> None:
    observed, mode = case
    done = converge(observed, mode)
    pool = {i.client_id for i in done.identities}
    for o in (*done.ib.roles, *done.ib.role_bindings):
        if carries(o.labels, dict(LABELS)) and o.name.startswith("coder-ws-use-mi-"):
            assert o.name.removeprefix("coder-ws-use-mi-") in pool
    kept = {(o.name, o.labels) for o in (*done.ib.roles, *done.ib.role_bindings)}
    for o in (*observed.ib.roles, *observed.ib.role_bindings):  # theirs and another prefix's: untouched
        if not carries(o.labels, dict(LABELS)) or not o.name.startswith("coder-ws-"):
            assert (o.name, o.labels) in kept
    assert {b.name for b in observed.ib.bindings} <= {b.name for b in done.ib.bindings}
    orphaned = {f.subject for f in plan_mode(done, policy(), IB, NOW).findings if f.rule == "binding-orphaned"}
    assert orphaned == {b.name for b in done.ib.bindings if b.client_id not in pool}
