"""Hypothesis properties of fic-reconcile's plan over random pools, namespaces (Terminating or not, with or
without a ServiceAccount annotation, in or outside the pool), FICs of ours, of another cluster and unmanaged,
and relocation records: convergence, prefix and issuer scoping, capacity, order independence, placement."""

from __future__ import annotations

import random
import string
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.fic_reconcile.model import DeleteFic, IdentityState, Namespace, Observed, PutFic, RecordRelocations
from jobs.fic_reconcile.model import Relocation as Moved
from jobs.fic_reconcile.plan import Policy, plan
from lib.clients.arm_types import ObservedFic
from tests.unit.fic_reconcile.test_plan import ISSUER, NOW, OTHER, POLICY, ours, spec, unmanaged

NAMES = st.sampled_from([f"ws-{c}" for c in string.ascii_lowercase[:12]] + ["other", "ws-"])
ISSUERS = st.sampled_from([ISSUER, ISSUER, OTHER])
MOSTLY_TRUE = st.integers(0, 5).map(lambda x: x > 0)
RARELY = st.integers(0, 5).map(lambda x: x == 0)
Case = tuple[Observed, Policy]


@st.composite
def scenarios(draw: st.DrawFn) -> Case:
    size = draw(st.integers(1, 4))
    clients = st.one_of(st.none(), st.none(), st.integers(0, size - 1).map(lambda k: f"client-{k}"),
                        st.just("foreign"))  # fmt: skip
    names = draw(st.lists(NAMES, max_size=12, unique=True))
    namespaces = tuple(Namespace(n, draw(RARELY), draw(clients)) for n in names)
    identities = []
    for i in range(size):
        mine = draw(st.lists(st.tuples(NAMES, ISSUERS), max_size=5, unique_by=lambda t: t[0]))
        foreign = draw(st.lists(st.sampled_from(["gh-a", "gh-b", "tf-c"]), max_size=2, unique=True))
        fics = [*(ours(n, iss) for n, iss in mine), *map(unmanaged, foreign)]
        identities.append(IdentityState(f"id-{i}", f"client-{i}", tuple(fics), draw(MOSTLY_TRUE)))
    record = tuple(
        Moved(n, f"id-{draw(st.integers(0, size - 1))}", NOW - timedelta(minutes=draw(st.integers(-30, 180))))
        for n in draw(st.lists(NAMES, max_size=4, unique=True))
    )
    observed = Observed(namespaces, draw(MOSTLY_TRUE), tuple(identities), relocations=record,
                        accounts_error="" if draw(MOSTLY_TRUE) else "403")  # fmt: skip
    grace = timedelta(minutes=draw(st.sampled_from([0, 30, 60, 120])))
    return observed, replace(POLICY, limit=draw(st.integers(1, 8)), allow_mass_delete=True, relocation_grace=grace)


def apply_to(observed: Observed, actions, limit: int) -> Observed:  # type: ignore[no-untyped-def]
    """What ARM and the record would hold after the actions, asserting the limit at every single write."""
    state = {i.name: {f.name: f for f in i.fics} for i in observed.identities}
    record = observed.relocations
    for a in actions:
        if isinstance(a, RecordRelocations):
            record = a.relocations
            continue
        fics = state[a.identity]
        if isinstance(a, PutFic):
            assert a.update or a.fic not in fics, "a create of a FIC that exists"
            if a.fic not in fics:
                assert len(fics) < limit, f"{a.identity} would exceed {limit}"
            fics[a.fic] = ObservedFic(a.fic, a.spec)
        else:
            del fics[a.fic]
    identities = tuple(replace(i, fics=tuple(state[i.name].values())) for i in observed.identities)
    return replace(observed, identities=identities, relocations=record)


def fic_on(observed: Observed, identity: str, name: str) -> ObservedFic | None:
    there = next(i for i in observed.identities if i.name == identity)
    return next((f for f in there.fics if f.name.lower() == name.lower()), None)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_runs_a_grace_apart_converge_and_then_plan_nothing(case: Case) -> None:
    observed, policy = case
    identities = tuple(replace(i, complete=True) for i in observed.identities)
    observed = replace(observed, namespaces_complete=True, accounts_error="", identities=identities)
    now = NOW
    for _ in range(4):  # a chain of relocations waiting on each other's capacity moves one step a run
        observed = apply_to(observed, plan(observed, policy, now).actions, policy.limit)
        now += policy.relocation_grace + timedelta(seconds=1)
    assert plan(observed, policy, now).actions == ()


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_writes_touch_only_our_prefix_and_our_issuer(case: Case) -> None:
    observed, policy = case
    for a in plan(observed, policy, NOW).actions:
        if isinstance(a, RecordRelocations):
            continue
        assert a.fic == policy.fic_prefix + a.namespace
        before = fic_on(observed, a.identity, a.fic)
        if isinstance(a, DeleteFic) or (isinstance(a, PutFic) and a.update):
            assert before is not None and before.spec.issuer == policy.issuer


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_identity_exceeds_its_limit_unless_it_already_did(case: Case) -> None:
    observed, policy = case
    p = plan(observed, policy, NOW)
    after = apply_to(observed, p.actions, policy.limit)  # also checks every intermediate step
    for before, now in zip(observed.identities, after.identities, strict=True):
        assert len(now.fics) <= max(policy.limit, len(before.fics))


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_the_plan_is_independent_of_input_order(case: Case, rnd: random.Random) -> None:
    observed, policy = case
    shuffled = replace(
        observed,
        namespaces=tuple(rnd.sample(observed.namespaces, len(observed.namespaces))),
        identities=tuple(replace(i, fics=tuple(rnd.sample(i.fics, len(i.fics)))) for i in observed.identities),
        relocations=tuple(rnd.sample(observed.relocations, len(observed.relocations))),
    )
    assert plan(shuffled, policy, NOW) == plan(observed, policy, NOW)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_placement_follows_the_annotation_whenever_it_names_a_pool_member(case: Case) -> None:
    observed, policy = case
    named = {ns.name: ns.client_id for ns in observed.namespaces}
    for a in plan(observed, policy, NOW).actions:
        if isinstance(a, PutFic) and (named.get(a.namespace) or "").startswith("client-"):
            assert a.client_id == named[a.namespace]


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_delete_of_a_fic_whose_service_account_still_names_its_identity(case: Case) -> None:
    observed, policy = case
    live = {ns.name: ns for ns in observed.namespaces if not ns.terminating and ns.name.startswith("ws-")}
    for a in plan(observed, policy, NOW).actions:  # (a namespace outside the prefix is no workspace: pruned)
        if isinstance(a, DeleteFic) and a.namespace in live:
            assert live[a.namespace].client_id != a.client_id


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_fic_is_created_for_a_terminating_namespace(case: Case) -> None:
    observed, policy = case
    leaving = {ns.name for ns in observed.namespaces if ns.terminating}
    assert not [a for a in plan(observed, policy, NOW).actions if isinstance(a, PutFic) and a.namespace in leaving]


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_a_relocation_delete_only_follows_a_replacement_that_already_existed(case: Case) -> None:
    observed, policy = case
    live = {ns.name for ns in observed.namespaces if not ns.terminating and ns.name.startswith("ws-")}
    for a in plan(observed, policy, NOW).actions:
        if isinstance(a, DeleteFic) and a.namespace in live:
            elsewhere = [fic_on(observed, i.name, a.fic) for i in observed.identities if i.name != a.identity]
            assert ObservedFic(a.fic, spec(a.namespace)) in elsewhere, "no replacement observed before this run"


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_incomplete_observation_never_deletes(case: Case) -> None:
    observed, policy = case
    for broken in (
        replace(observed, namespaces_complete=False),
        replace(observed, accounts_error="500"),
        replace(observed, state_error="403"),
    ):
        assert all(a.kind != "delete" for a in plan(broken, policy, NOW).actions)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_tiers_put_urgent_creates_first_deletes_before_creates_and_the_record_last(case: Case) -> None:
    observed, policy = case
    actions = plan(observed, policy, NOW).actions
    assert [a.phase for a in actions] == sorted(a.phase for a in actions)
    assert "record" not in [a.kind for a in actions][:-1]
    for tier in {a.phase for a in actions}:
        for identity in {a.identity for a in actions}:
            lane = [a.kind for a in actions if a.phase == tier and a.identity == identity]
            assert lane == sorted(lane, key=lambda k: k != "delete")
    missing = [a.phase for a in actions if isinstance(a, PutFic) and a.reason == "missing"]
    prunes = [a.phase for a in actions if isinstance(a, DeleteFic)]
    assert all(m == 0 for m in missing) and all(p >= 0 for p in prunes)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_a_run_stopped_after_any_tier_keeps_every_identity_within_its_limit(case: Case) -> None:
    observed, policy = case
    actions = plan(observed, policy, NOW).actions
    for tier in sorted({a.phase for a in actions}):
        apply_to(observed, [a for a in actions if a.phase <= tier], policy.limit)  # asserts at every write
