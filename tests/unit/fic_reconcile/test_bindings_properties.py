"""Hypothesis properties of the identity-binding modes over random pools (FICs of ours, unmanaged, full
identities, binding FICs), namespaces (Terminating, annotated, foreign), existing bindings and RBAC objects (ours,
stale, without our labels): applying the plan converges and the plan on the applied state is empty
(idempotence); no action ever names an object that is not ours (prefix and label scoping); and once converged,
each ClusterRoleBinding's subjects are exactly the placement's namespaces."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from jobs.fic_reconcile.identity_binding.model import BindingView, PutBinding, PutRole, PutRoleBinding
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
    observed = Observed(spaces, True, tuple(identities),
                        ib=BindingView(tuple(bindings), tuple(roles), tuple(role_bindings)))  # fmt: skip
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
    for _ in range(4):
        p = plan_mode(observed, policy(), ib, NOW)
        if not p.actions:
            return observed
        observed = apply_to(observed, p.actions)
    raise AssertionError(f"no fixed point after 4 runs: {[a.describe() for a in p.actions]}")


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
