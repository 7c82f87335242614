"""The pure plan of fic-reconcile: examples for each rule, Hypothesis properties for the invariants, and the
capacity math checked against an exact computation and a brute-force CRC-32 simulation."""

from __future__ import annotations

import random
import string
from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.fic_reconcile.capacity import (
    binomial_tail_above,
    overflow_exact,
    overflow_upper_bound,
    pool_size_needed,
    safe_namespace_count,
)
from jobs.fic_reconcile.model import DeleteFic, IdentityState, Observed, PutFic
from jobs.fic_reconcile.plan import AUDIENCE, Policy, plan
from jobs.fic_reconcile.shard import shard_index
from lib.clients.arm_types import FicSpec, ObservedFic

ISSUER = "https://oidc.example.test/tenant/cluster/"
POLICY = Policy(ISSUER, "workspace", "coder-ws-", "ws-", limit=20)


def spec(ns: str, issuer: str = ISSUER) -> FicSpec:
    return FicSpec(issuer, f"system:serviceaccount:{ns}:workspace", (AUDIENCE,))


def ours(ns: str, issuer: str = ISSUER) -> ObservedFic:
    return ObservedFic(f"coder-ws-{ns}", spec(ns, issuer))


def unmanaged(name: str) -> ObservedFic:
    return ObservedFic(name, FicSpec("https://token.actions.githubusercontent.com", f"repo:{name}", (AUDIENCE,)))


def pool(*fics_per_identity: tuple[ObservedFic, ...], complete: bool = True) -> tuple[IdentityState, ...]:
    return tuple(IdentityState(f"id-{i}", f"client-{i}", fics, complete) for i, fics in enumerate(fics_per_identity))


def names_on(shard: int, size: int, count: int, prefix: str = "ws-") -> list[str]:
    """`count` namespace names whose CRC-32 shard in a pool of `size` is `shard`."""
    found, i = [], 0
    while len(found) < count:
        if shard_index(f"{prefix}{i}", size) == shard:
            found.append(f"{prefix}{i}")
        i += 1
    return found


def kinds(p) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(a.kind for a in p.actions)


# ---- examples -------------------------------------------------------------------------------------------


def test_creates_each_namespace_on_its_crc32_shard_with_the_exact_subject() -> None:
    namespaces = tuple(f"ws-{i}" for i in range(25))
    p = plan(Observed(namespaces, True, pool((), (), ())), POLICY)
    assert kinds(p) == {"create": 25}
    for a in p.actions:
        assert isinstance(a, PutFic)
        assert a.identity == f"id-{shard_index(a.namespace, 3)}"
        assert a.spec == FicSpec(
            ISSUER, f"system:serviceaccount:{a.namespace}:workspace", ("api://AzureADTokenExchange",)
        )
        assert a.fic == "coder-ws-" + a.namespace
    assert p.refusal is None and not p.findings


def test_ignores_namespaces_without_the_prefix_and_never_touches_unmanaged_fics() -> None:
    other = unmanaged("github-deploy")
    p = plan(Observed(("kube-system", "default"), True, pool((other,), (), ())), POLICY)
    assert p.actions == () and p.refusal is None


def test_deletes_the_fic_of_a_gone_namespace_and_keeps_the_rest() -> None:
    live = names_on(0, 1, 3)
    p = plan(Observed(tuple(live), True, pool((*map(ours, live), ours("ws-gone"), unmanaged("keep-me")))), POLICY)
    assert [(a.kind, a.fic, a.reason) for a in p.actions] == [("delete", "coder-ws-ws-gone", "stale: namespace gone")]


def test_ownership_follows_arm_names_which_are_case_insensitive() -> None:
    [ns] = names_on(0, 1, 1)
    shouting = ObservedFic(f"Coder-WS-{ns.upper()}", spec(ns))  # the same ARM resource as coder-ws-<ns>
    p = plan(Observed((ns,), True, pool((shouting,))), POLICY)
    assert p.actions == ()  # not a second FIC that ARM would merge into this one
    assert p.sections["capacity"][0]["ours"] == "1"


def test_wrong_issuer_on_the_right_identity_is_updated_in_place() -> None:
    [ns] = names_on(1, 2, 1)
    p = plan(Observed((ns,), True, pool((), (ours(ns, "https://old-issuer.test/"),))), POLICY)
    [a] = p.actions
    assert isinstance(a, PutFic) and a.update and a.kind == "update" and a.identity == "id-1"
    assert a.reason == "wrong issuer" and a.spec == spec(ns)


def test_relocation_creates_on_the_new_identity_one_phase_before_deleting_on_the_old() -> None:
    ns = next(n for n in names_on(3, 4, 50) if shard_index(n, 3) == 0)  # shard 0 of 3, shard 3 of 4
    p = plan(Observed((ns,), True, pool((ours(ns),), (), (), ())), POLICY)
    create, delete = p.actions
    assert (create.kind, create.identity, create.phase, create.reason) == (
        "create",
        "id-3",
        0,
        "relocated: shard changed",
    )
    assert (delete.kind, delete.identity, delete.phase) == ("delete", "id-0", 1)
    assert isinstance(delete, DeleteFic) and delete.after_put


def test_a_duplicate_on_the_wrong_shard_is_deleted_at_once_when_the_right_one_is_correct() -> None:
    [ns] = names_on(1, 2, 1)
    p = plan(Observed((ns,), True, pool((ours(ns),), (ours(ns),))), POLICY)
    [a] = p.actions
    assert (a.kind, a.identity, a.phase, a.reason) == ("delete", "id-0", 0, "duplicate: belongs on id-1")


def test_a_duplicate_waits_for_the_update_of_the_right_one() -> None:
    [ns] = names_on(1, 2, 1)
    p = plan(Observed((ns,), True, pool((ours(ns),), (ours(ns, "https://old.test/"),))), POLICY)
    assert [(a.kind, a.identity, a.phase) for a in p.actions] == [("update", "id-1", 0), ("delete", "id-0", 1)]


def test_overflow_reports_the_namespaces_that_do_not_fit_and_plans_the_rest() -> None:
    crowded = names_on(0, 2, 23)
    p = plan(Observed(tuple(crowded), True, pool((unmanaged("terraform"),), ())), POLICY)
    assert kinds(p) == {"create": 19}  # 20 minus the unmanaged one
    unplaceable = sorted(f.subject for f in p.findings if f.rule == "unplaceable")
    assert unplaceable == sorted(crowded)[19:]  # name order decides who waits
    assert all(f.severity == "error" for f in p.findings)


def test_existing_placements_keep_priority_over_earlier_names() -> None:
    crowded = sorted(names_on(0, 1, 4))
    small = replace(POLICY, limit=3)
    p = plan(Observed(tuple(crowded), True, pool((ours(crowded[-1]),))), small)
    assert sorted(a.namespace for a in p.actions) == crowded[:2]
    assert [f.subject for f in p.findings] == [crowded[2]]


def test_deletes_free_capacity_before_creates_on_the_same_identity() -> None:
    live = names_on(0, 1, 3)
    small = replace(POLICY, limit=3)
    gone = [ours(f"ws-gone-{i}") for i in range(3)]
    p = plan(Observed(tuple(live), True, pool(tuple(gone))), small)
    assert [a.kind for a in p.actions] == ["delete"] * 3 + ["create"] * 3
    assert {a.phase for a in p.actions} == {0}


def test_a_full_swap_between_two_full_identities_is_reported_not_forced() -> None:
    a_to_b = [n for n in names_on(1, 2, 40) if shard_index(n, 2) == 1]
    small = replace(POLICY, limit=1)
    # ns now hashes to id-1 but sits on id-0; another hashes to id-0 but sits on id-1; both full.
    to_a = names_on(0, 2, 1)[0]
    p = plan(Observed((a_to_b[0], to_a), True, pool((ours(a_to_b[0]),), (ours(to_a),))), small)
    assert p.actions == ()
    assert sorted(f.subject for f in p.findings) == sorted([a_to_b[0], to_a])


def test_guard_refuses_more_deletes_than_the_threshold_unless_allowed() -> None:
    live = names_on(0, 1, 40)
    fics = tuple(map(ours, live))
    p = plan(Observed(tuple(live[:29]), True, pool(fics)), POLICY)  # 11 deletes > max(10, 40 // 4 = 10)
    assert kinds(p) == {"delete": 11} and p.refusal and "11" in p.refusal
    assert plan(Observed(tuple(live[:30]), True, pool(fics)), POLICY).refusal is None  # exactly 10
    assert plan(Observed(tuple(live[:29]), True, pool(fics)), replace(POLICY, allow_mass_delete=True)).refusal is None
    assert plan(Observed(tuple(live[:39]), True, pool(fics)), replace(POLICY, max_deletes=0)).refusal


def test_guard_refuses_when_zero_namespaces_are_observed_while_ours_exist() -> None:
    p = plan(Observed((), True, pool((ours("ws-a"),))), POLICY)
    assert p.refusal and "zero" in p.refusal


def test_incomplete_namespace_list_creates_but_never_deletes() -> None:
    [new] = names_on(0, 1, 1)
    p = plan(Observed((new,), False, pool((ours("ws-gone"),)), "timeout"), POLICY)
    assert kinds(p) == {"create": 1} and p.refusal is None
    assert {f.rule for f in p.findings} == {"observe-failed", "deletes-suppressed"}


def test_an_identity_that_could_not_be_listed_gets_no_writes_and_blocks_deletes() -> None:
    on_0, on_1 = names_on(0, 2, 1)[0], names_on(1, 2, 1)[0]
    identities = (*pool((ours("ws-gone"),)), IdentityState("id-1", "client-1", (), complete=False, error="500"))
    p = plan(Observed((on_0, on_1), True, identities), POLICY)
    assert [(a.kind, a.identity) for a in p.actions] == [("create", "id-0")]


def test_capacity_section_counts_ours_unmanaged_and_planned() -> None:
    [ns] = names_on(0, 2, 1)
    p = plan(Observed((ns,), True, pool((unmanaged("x"),), (ours("ws-gone"),))), POLICY)
    rows = {r["identity"]: r for r in p.sections["capacity"]}
    assert rows["id-0"] | {} == {
        "identity": "id-0",
        "client_id": "client-0",
        "ours": "0",
        "unmanaged": "1",
        "limit": "20",
        "planned": "2",
    }
    assert rows["id-1"]["ours"] == "1" and rows["id-1"]["planned"] == "0"
    cap = p.sections["pool_capacity"]
    assert cap["pool_size"] == 2 and cap["namespaces"] == 1
    assert cap["safe_namespaces"] == safe_namespace_count([19, 20])


# ---- properties -----------------------------------------------------------------------------------------

NAMES = st.sampled_from([f"ws-{c}" for c in string.ascii_lowercase[:12]] + ["other", "ws-"])
ISSUERS = st.sampled_from([ISSUER, "https://old.test/"])


MOSTLY_TRUE = st.integers(0, 5).map(lambda x: x > 0)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Observed, Policy]:
    size = draw(st.integers(1, 4))
    namespaces = draw(st.lists(NAMES, max_size=12))
    placed: dict[int, list[ObservedFic]] = {i: [] for i in range(size)}
    if draw(st.booleans()):  # ours as an earlier pool size placed them: the pool grew or shrank since
        old_size = draw(st.integers(1, 4))
        for ns in draw(st.lists(NAMES, max_size=12, unique=True)):
            shard = shard_index(ns, old_size)
            if shard < size:
                placed[shard].append(ours(ns, draw(ISSUERS)))
    identities = []
    for i in range(size):
        mine = draw(st.lists(st.tuples(NAMES, ISSUERS), max_size=5, unique_by=lambda t: t[0]))
        foreign = draw(st.lists(st.sampled_from(["gh-a", "gh-b", "tf-c"]), max_size=2, unique=True))
        fics = {f.name: f for f in [*placed[i], *(ours(n, iss) for n, iss in mine), *map(unmanaged, foreign)]}
        identities.append(IdentityState(f"id-{i}", f"client-{i}", tuple(fics.values()), draw(MOSTLY_TRUE)))
    limit = draw(st.integers(1, 8))
    return Observed(tuple(namespaces), draw(MOSTLY_TRUE), tuple(identities)), replace(
        POLICY, limit=limit, allow_mass_delete=True
    )


def apply_to(observed: Observed, actions, limit: int) -> Observed:  # type: ignore[no-untyped-def]
    """What ARM would hold after the actions, asserting the limit at every single write."""
    state = {i.name: {f.name: f for f in i.fics} for i in observed.identities}
    for a in actions:
        fics = state[a.identity]
        if isinstance(a, PutFic):
            assert a.update or a.fic not in fics, "a create of a FIC that exists"
            if a.fic not in fics:
                assert len(fics) < limit, f"{a.identity} would exceed {limit}"
            fics[a.fic] = ObservedFic(a.fic, a.spec)
        else:
            del fics[a.fic]
    identities = tuple(replace(i, fics=tuple(state[i.name].values())) for i in observed.identities)
    return replace(observed, identities=identities)


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_applying_the_plan_then_planning_again_yields_nothing(case: tuple[Observed, Policy]) -> None:
    observed, policy = case
    after = apply_to(observed, plan(observed, policy).actions, policy.limit)
    assert plan(after, policy).actions == ()


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_no_action_touches_a_fic_without_our_prefix(case: tuple[Observed, Policy]) -> None:
    observed, policy = case
    for a in plan(observed, policy).actions:
        assert a.fic.startswith(policy.fic_prefix)
        assert a.fic == policy.fic_prefix + a.namespace


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_no_identity_exceeds_its_limit_unless_it_already_did(case: tuple[Observed, Policy]) -> None:
    observed, policy = case
    p = plan(observed, policy)
    after = apply_to(observed, p.actions, policy.limit)  # also checks every intermediate step
    for before, now in zip(observed.identities, after.identities, strict=True):
        assert len(now.fics) <= max(policy.limit, len(before.fics))
    assert all(
        int(r["planned"]) <= max(policy.limit, int(r["ours"]) + int(r["unmanaged"])) for r in p.sections["capacity"]
    )


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_the_plan_is_independent_of_input_order(case: tuple[Observed, Policy], rnd: random.Random) -> None:
    observed, policy = case
    namespaces = list(observed.namespaces)
    rnd.shuffle(namespaces)
    shuffled = replace(
        observed,
        namespaces=tuple(namespaces),
        identities=tuple(replace(i, fics=tuple(rnd.sample(i.fics, len(i.fics)))) for i in observed.identities),
    )
    assert plan(shuffled, policy) == plan(observed, policy)


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_a_namespace_is_never_left_without_a_credential_by_a_relocation(case: tuple[Observed, Policy]) -> None:
    observed, policy = case
    p = plan(observed, policy)
    for i, a in enumerate(p.actions):
        if isinstance(a, DeleteFic) and a.namespace in observed.namespaces and a.namespace.startswith("ws-"):
            target = f"id-{shard_index(a.namespace, len(observed.identities))}"
            written = any(isinstance(b, PutFic) and b.namespace == a.namespace for b in p.actions[:i])
            if written:
                assert (
                    next(b for b in p.actions if isinstance(b, PutFic) and b.namespace == a.namespace).phase < a.phase
                )
            else:
                there = next(x for x in observed.identities if x.name == target)
                assert ours(a.namespace) in there.fics


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_incomplete_observation_never_deletes(case: tuple[Observed, Policy]) -> None:
    observed, policy = case
    if observed.namespaces_complete and all(i.complete for i in observed.identities):
        observed = replace(observed, namespaces_complete=False)
    assert all(a.kind != "delete" for a in plan(observed, policy).actions)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_on_each_identity_deletes_come_before_creates_within_a_phase(case: tuple[Observed, Policy]) -> None:
    observed, policy = case
    actions = plan(observed, policy).actions
    assert [a.phase for a in actions] == sorted(a.phase for a in actions)
    for phase in {a.phase for a in actions}:
        for identity in {a.identity for a in actions}:
            lane = [a.kind for a in actions if a.phase == phase and a.identity == identity]
            assert lane == sorted(lane, key=lambda k: k != "delete")


# ---- capacity math --------------------------------------------------------------------------------------


def test_binomial_tail_matches_the_exact_sum() -> None:
    from fractions import Fraction
    from math import comb

    for n, k, c in [(10, 3, 4), (60, 3, 20), (45, 2, 20), (5, 1, 4), (100, 7, 20)]:
        p = Fraction(1, k)
        exact = sum(comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(c + 1, n + 1))
        assert abs(binomial_tail_above(n, 1 / k, c) - float(exact)) < 1e-12


def simulated_overflow(n: int, caps: list[int], trials: int, seed: int) -> float:
    """Draw n random namespace-like names, shard them with the real CRC-32, count overflowing trials."""
    rnd = random.Random(seed)
    alphabet = string.ascii_lowercase + string.digits
    overflows = 0
    for _ in range(trials):
        load = Counter(shard_index("ameide-ws-" + "".join(rnd.choices(alphabet, k=8)), len(caps)) for _ in range(n))
        overflows += any(load[i] > cap for i, cap in enumerate(caps))
    return overflows / trials


def test_exact_overflow_probability_matches_a_brute_force_crc32_simulation() -> None:
    for n, caps in [(40, [20, 20, 20]), (30, [12, 12, 10]), (12, [5, 5])]:
        exact = overflow_exact(n, caps)
        trials = 8000
        simulated = simulated_overflow(n, caps, trials, seed=20240611)
        sigma = (max(exact * (1 - exact), 1e-4) / trials) ** 0.5
        assert abs(simulated - exact) < 4 * sigma + 1e-3, (n, caps, exact, simulated)


def test_the_union_bound_is_an_upper_bound_and_tight_near_one_percent() -> None:
    for n, caps in [(37, [20, 20, 20]), (40, [20, 20, 20]), (30, [12, 12, 10]), (60, [20] * 5)]:
        exact, bound = overflow_exact(n, caps), overflow_upper_bound(n, caps)
        assert bound >= exact - 1e-12
        if exact < 0.05:
            assert bound - exact < 0.1 * exact + 1e-9


def test_safe_count_is_the_largest_count_within_one_percent() -> None:
    caps = [20, 20, 20]
    safe = safe_namespace_count(caps)
    assert overflow_upper_bound(safe, caps) <= 0.01 < overflow_upper_bound(safe + 1, caps)
    assert overflow_exact(safe, caps) <= 0.01
    assert 30 < safe < 60  # sanity: well below the naive 3 x 20


def test_pool_size_needed_is_the_smallest_safe_pool() -> None:
    caps = [20, 20, 20]
    size = pool_size_needed(50, caps, 20)
    assert size is not None
    assert overflow_upper_bound(50, [20] * size) <= 0.01 < overflow_upper_bound(50, [20] * (size - 1))
    assert pool_size_needed(0, caps, 20) == 1
