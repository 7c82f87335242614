"""The pure plan of fic-reconcile, one example per rule: placement (the ServiceAccount's annotation, else the
shard rule), Terminating namespaces, relocation with a grace period, several clusters sharing a pool,
capacity and the guards. The invariants are Hypothesis properties in test_plan_properties.py."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from jobs.fic_reconcile.capacity import safe_namespace_count
from jobs.fic_reconcile.model import IdentityState, Namespace, Observed, PutFic, RecordRelocations, Relocation
from jobs.fic_reconcile.plan import AUDIENCE, Policy, plan
from jobs.fic_reconcile.shard import shard_index
from lib.clients.arm_types import FicSpec, ObservedFic

ISSUER = "https://oidc.example.test/tenant/cluster/"
OTHER = "https://oidc.example.test/tenant/other-cluster/"
POLICY = Policy(ISSUER, "workspace", "coder-ws-", "ws-", limit=20)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def spec(ns: str, issuer: str = ISSUER) -> FicSpec:
    return FicSpec(issuer, f"system:serviceaccount:{ns}:workspace", (AUDIENCE,))


def ours(ns: str, issuer: str = ISSUER) -> ObservedFic:
    return ObservedFic(f"coder-ws-{ns}", spec(ns, issuer))


def unmanaged(name: str) -> ObservedFic:
    return ObservedFic(name, FicSpec("https://token.actions.githubusercontent.com", f"repo:{name}", (AUDIENCE,)))


def pool(*fics_per_identity: tuple[ObservedFic, ...], complete: bool = True) -> tuple[IdentityState, ...]:
    return tuple(IdentityState(f"id-{i}", f"client-{i}", fics, complete) for i, fics in enumerate(fics_per_identity))


def spaces(*names: str, terminating: bool = False, client_id: str | None = None) -> tuple[Namespace, ...]:
    return tuple(Namespace(n, terminating, client_id) for n in names)


def names_on(shard: int, size: int, count: int, prefix: str = "ws-") -> list[str]:
    """`count` namespace names whose CRC-32 shard in a pool of `size` is `shard`."""
    found, i = [], 0
    while len(found) < count:
        if shard_index(f"{prefix}{i}", size) == shard:
            found.append(f"{prefix}{i}")
        i += 1
    return found


def run(observed: Observed, policy: Policy = POLICY, now: datetime = NOW):  # type: ignore[no-untyped-def]
    return plan(observed, policy, now)


def kinds(p) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(a.kind for a in p.actions)


def fic_actions(p) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(a.kind, a.identity, a.namespace) for a in p.actions if not isinstance(a, RecordRelocations)]


# ---- placement ------------------------------------------------------------------------------------------


def test_without_a_service_account_the_crc32_shard_predicts_with_the_exact_subject() -> None:
    names = names_on(0, 3, 2) + names_on(2, 3, 1)
    p = run(Observed(spaces(*names), True, pool((), (), ())))
    assert sorted(fic_actions(p)) == sorted([("create", "id-0", names[0]), ("create", "id-0", names[1]),
                                             ("create", "id-2", names[2])])  # fmt: skip
    put = p.actions[0]
    assert isinstance(put, PutFic) and put.spec == spec(put.namespace) and put.fic == "coder-ws-" + put.namespace
    assert put.spec.subject == f"system:serviceaccount:{put.namespace}:workspace"
    assert p.sections["placement"] == {"annotated": 0, "predicted": 3, "disagreeing": 0, "foreign": 0}


def test_the_sha1_rule_predicts_what_a_terraform_template_computes() -> None:
    ns = next(n for n in names_on(0, 4, 100) if shard_index(n, 4, "sha1") != 0)
    p = run(Observed(spaces(ns), True, pool((), (), (), ())), replace(POLICY, shard_rule="sha1"))
    assert fic_actions(p) == [("create", f"id-{shard_index(ns, 4, 'sha1')}", ns)]


def test_the_service_account_annotation_wins_over_the_shard_and_the_disagreement_is_a_warning() -> None:
    [ns] = names_on(0, 3, 1)
    p = run(Observed(spaces(ns, client_id="CLIENT-2"), True, pool((), (), ())))  # client ids compare as GUIDs do
    assert fic_actions(p) == [("create", "id-2", ns)]
    [finding] = p.findings
    assert (finding.severity, finding.rule, finding.subject) == ("warning", "shard-disagrees", ns)
    assert "id-2" in finding.message and "id-0" in finding.message
    assert p.sections["placement"]["disagreeing"] == 1


def test_an_annotation_naming_the_shard_identity_is_no_finding() -> None:
    [ns] = names_on(1, 2, 1)
    p = run(Observed(spaces(ns, client_id="client-1"), True, pool((), ())))
    assert fic_actions(p) == [("create", "id-1", ns)] and p.findings == ()


def test_a_foreign_client_id_gets_no_fic_an_error_and_keeps_what_exists() -> None:
    [ns] = names_on(0, 2, 1)
    p = run(Observed(spaces(ns, client_id="not-in-the-pool"), True, pool((ours(ns),), ())))
    assert p.actions == ()
    [finding] = p.findings
    assert (finding.severity, finding.rule, finding.subject) == ("error", "foreign-client-id", ns)
    assert "not-in-the-pool" in finding.message


# ---- Terminating and gone namespaces --------------------------------------------------------------------


def test_a_terminating_namespace_gets_no_fic_and_loses_its_own() -> None:
    [kept, leaving, never] = names_on(0, 1, 3)
    observed = Observed((*spaces(kept), *spaces(leaving, never, terminating=True)), True, pool((ours(leaving),)))
    p = run(observed)
    assert sorted(fic_actions(p)) == [("create", "id-0", kept), ("delete", "id-0", leaving)]
    assert next(a for a in p.actions if a.kind == "delete").reason == "stale: namespace terminating"


def test_deletes_the_fic_of_a_gone_namespace_and_keeps_the_rest() -> None:
    [ns] = names_on(0, 1, 1)
    p = run(Observed(spaces(ns), True, pool((ours(ns), ours("ws-gone"), unmanaged("terraform")))))
    assert fic_actions(p) == [("delete", "id-0", "ws-gone")]
    assert p.actions[0].reason == "stale: namespace gone"


def test_ignores_namespaces_without_the_prefix_and_never_touches_unmanaged_fics() -> None:
    p = run(Observed(spaces("kube-system", "default"), True, pool((unmanaged("gh"),))))
    assert p.actions == () and p.refusal is None


def test_ownership_follows_arm_names_which_are_case_insensitive() -> None:
    [ns] = names_on(0, 1, 1)
    upper = ObservedFic(f"Coder-WS-{ns}", spec(ns))
    assert run(Observed(spaces(ns), True, pool((upper,)))).actions == ()


# ---- relocation -----------------------------------------------------------------------------------------


def test_a_relocation_creates_first_records_when_and_keeps_the_old_fic() -> None:
    ns = next(n for n in names_on(3, 4, 50) if shard_index(n, 3) == 0)  # shard 0 of 3, shard 3 of 4
    p = run(Observed(spaces(ns), True, pool((ours(ns),), (), (), ())))
    create, record = p.actions
    assert (create.kind, create.identity, create.reason) == ("create", "id-3", "relocated: placement changed")
    assert isinstance(record, RecordRelocations) and record.relocations == (Relocation(ns, "id-3", NOW),)
    assert record.phase > create.phase
    [waiting] = p.sections["relocations_waiting"]
    assert waiting["from"] == "id-0" and waiting["to"] == "id-3" and waiting["new_fic"] == "created by this run"


def test_the_old_fic_goes_only_after_the_grace_and_only_when_the_new_one_exists() -> None:
    ns = next(n for n in names_on(3, 4, 50) if shard_index(n, 3) == 0)
    record = (Relocation(ns, "id-3", NOW - HOUR + timedelta(seconds=1)),)
    both = Observed(spaces(ns), True, pool((ours(ns),), (), (), (ours(ns),)), relocations=record)
    assert run(both).actions == ()  # 1 s short of the grace
    [delete, record_after] = run(both, now=NOW + timedelta(seconds=1)).actions
    assert (delete.kind, delete.identity, delete.namespace) == ("delete", "id-0", ns)
    assert isinstance(record_after, RecordRelocations) and record_after.relocations == ()
    assert record_after.finishing == record  # put back by the apply if the delete fails
    done = replace(both, identities=pool((), (), (), (ours(ns),)), relocations=())
    assert run(done, now=NOW + timedelta(seconds=2)).actions == ()
    withheld = run(replace(both, namespaces_complete=False), now=NOW + timedelta(seconds=1))
    assert withheld.actions == ()  # the delete is withheld, and so the entry stays: nothing to write
    unrecorded = replace(both, relocations=())  # the record was lost: the clock starts now, nothing is deleted
    [restart] = run(unrecorded, now=NOW + 10 * HOUR).actions
    assert isinstance(restart, RecordRelocations) and restart.relocations == (Relocation(ns, "id-3", NOW + 10 * HOUR),)


def test_an_annotation_flip_keeps_the_old_fic_until_the_grace_is_over() -> None:
    [ns] = names_on(0, 2, 1)
    first = Observed(spaces(ns, client_id="client-1"), True, pool((ours(ns),), ()))
    assert fic_actions(run(first)) == [("create", "id-1", ns)]
    second = Observed(spaces(ns, client_id="client-1"), True, pool((ours(ns),), (ours(ns),)),
                      relocations=(Relocation(ns, "id-1", NOW),))  # fmt: skip
    assert fic_actions(run(second, now=NOW + HOUR - timedelta(seconds=1))) == []
    assert fic_actions(run(second, now=NOW + HOUR)) == [("delete", "id-0", ns)]
    assert [a.kind for a in run(second, now=NOW + HOUR).actions] == ["delete", "record"]


def test_a_fic_on_the_identity_the_service_account_names_is_never_deleted() -> None:
    [ns] = names_on(1, 2, 1)  # the shard says id-1, the SA says id-0: id-1's copy is the one that goes
    observed = Observed(spaces(ns, client_id="client-0"), True, pool((ours(ns),), (ours(ns),)),
                        relocations=(Relocation(ns, "id-0", NOW - 2 * HOUR),))  # fmt: skip
    assert fic_actions(run(observed)) == [("delete", "id-1", ns)]


def test_a_grown_pool_creates_only_in_its_first_run_and_trips_no_guard() -> None:
    old = [f"ws-{i}" for i in range(60)]
    by_shard = {i: tuple(ours(n) for n in old if shard_index(n, 3) == i) for i in range(3)}
    p = run(Observed(spaces(*old), True, pool(by_shard[0], by_shard[1], by_shard[2], ())),
            replace(POLICY, limit=40))  # fmt: skip
    assert set(kinds(p)) == {"create", "record"} and p.refusal is None


def test_a_record_from_the_future_restarts_the_clock() -> None:
    [ns] = names_on(1, 2, 1)
    observed = Observed(spaces(ns), True, pool((ours(ns),), (ours(ns),)),
                        relocations=(Relocation(ns, "id-1", NOW + 24 * HOUR),))  # fmt: skip
    [record] = run(observed).actions
    assert isinstance(record, RecordRelocations) and record.relocations == (Relocation(ns, "id-1", NOW),)


# ---- several clusters on one pool -----------------------------------------------------------------------


def test_another_clusters_fics_are_never_touched_but_count_toward_the_limit() -> None:
    [ns] = names_on(0, 1, 1)
    theirs = tuple(ours(f"ws-theirs-{i}", OTHER) for i in range(19))
    p = run(Observed(spaces(ns, "ws-other"), True, pool(theirs)))  # "ws-theirs-*" are not our namespaces
    assert fic_actions(p) == [("create", "id-0", ns)]  # 19 + 1 = 20: ws-other does not fit
    assert [f.subject for f in p.findings if f.rule == "unplaceable"] == ["ws-other"]
    assert p.sections["capacity"][0]["unmanaged"] == 19


def test_a_name_collision_with_another_cluster_is_reported_not_written() -> None:
    [ns] = names_on(0, 1, 1)
    p = run(Observed(spaces(ns), True, pool((ours(ns, OTHER),))), replace(POLICY, known_issuers=(OTHER,)))
    assert p.actions == ()
    [finding] = p.findings  # OTHER is declared: a collision, not also a foreign issuer
    assert finding.rule == "name-collision" and OTHER in finding.message and ISSUER in finding.message
    assert "--fic-prefix" in finding.message


# ---- capacity and guards --------------------------------------------------------------------------------


def test_overflow_reports_the_namespaces_that_do_not_fit_and_plans_the_rest() -> None:
    crowded = names_on(0, 2, 23)
    p = run(Observed(spaces(*crowded), True, pool((unmanaged("terraform"),), ())))
    assert kinds(p) == {"create": 19}  # 20 minus the unmanaged one
    unplaceable = sorted(f.subject for f in p.findings if f.rule == "unplaceable")
    assert unplaceable == sorted(crowded)[19:]  # name order decides who waits
    assert all(f.severity == "error" for f in p.findings)


def test_existing_placements_keep_priority_over_earlier_names() -> None:
    crowded = sorted(names_on(0, 1, 4))
    p = run(Observed(spaces(*crowded), True, pool((ours(crowded[-1]),))), replace(POLICY, limit=3))
    assert sorted(a.namespace for a in p.actions) == crowded[:2]
    assert [f.subject for f in p.findings] == [crowded[2]]


def test_deletes_free_capacity_before_creates_on_the_same_identity() -> None:
    live = names_on(0, 1, 3)
    gone = [ours(f"ws-gone-{i}") for i in range(3)]
    p = run(Observed(spaces(*live), True, pool(tuple(gone))), replace(POLICY, limit=3))
    assert [a.kind for a in p.actions] == ["delete"] * 3 + ["create"] * 3


def test_a_full_swap_between_two_full_identities_is_reported_not_forced() -> None:
    to_b = names_on(1, 2, 1)[0]  # hashes to id-1, sits on id-0; the other way round for to_a; both full
    to_a = names_on(0, 2, 1)[0]
    p = run(Observed(spaces(to_b, to_a), True, pool((ours(to_b),), (ours(to_a),))), replace(POLICY, limit=1))
    assert p.actions == ()
    assert sorted(f.subject for f in p.findings) == sorted([to_b, to_a])


def test_guard_refuses_more_deletes_than_the_threshold_unless_allowed() -> None:
    live = names_on(0, 1, 40)
    fics = tuple(map(ours, live))
    p = run(Observed(spaces(*live[:29]), True, pool(fics)))  # 11 deletes > max(10, 40 // 4 = 10)
    assert kinds(p) == {"delete": 11} and p.refusal and "11" in p.refusal
    assert run(Observed(spaces(*live[:30]), True, pool(fics))).refusal is None  # exactly 10
    allowed = replace(POLICY, allow_mass_delete=True)
    assert run(Observed(spaces(*live[:29]), True, pool(fics)), allowed).refusal is None
    assert run(Observed(spaces(*live[:39]), True, pool(fics)), replace(POLICY, max_deletes=0)).refusal


def test_guard_refuses_when_zero_namespaces_are_observed_while_ours_exist() -> None:
    p = run(Observed((), True, pool((ours("ws-a"),))))
    assert p.refusal and "zero" in p.refusal


def test_incomplete_namespace_list_creates_but_never_deletes() -> None:
    [new] = names_on(0, 1, 1)
    p = run(Observed(spaces(new), False, pool((ours("ws-gone"),)), "timeout"))
    assert kinds(p) == {"create": 1} and p.refusal is None
    assert {f.rule for f in p.findings} == {"observe-failed", "deletes-suppressed"}


def test_an_unreadable_service_account_list_writes_nothing() -> None:
    [new] = names_on(0, 1, 1)
    p = run(Observed(spaces(new), True, pool((ours("ws-gone"),)), accounts_error="403 Forbidden"))
    assert p.actions == ()
    assert {(f.rule, f.subject) for f in p.findings} >= {("observe-failed", "serviceaccounts")}


def test_an_unreadable_record_blocks_deletes_and_is_not_overwritten() -> None:
    [ns] = names_on(1, 2, 1)
    observed = Observed(spaces(ns), True, pool((ours(ns),), ()), state_error="ConfigMap: 403 Forbidden")
    p = run(observed)
    assert fic_actions(p) == [("create", "id-1", ns)] and not any(a.kind == "record" for a in p.actions)
    assert ("observe-failed", "relocation-record") in {(f.rule, f.subject) for f in p.findings}


def test_an_identity_that_could_not_be_listed_gets_no_writes_and_blocks_deletes() -> None:
    on_0, on_1 = names_on(0, 2, 1)[0], names_on(1, 2, 1)[0]
    identities = (*pool((ours("ws-gone"),)), IdentityState("id-1", "client-1", (), complete=False, error="500"))
    p = run(Observed(spaces(on_0, on_1), True, identities))
    assert fic_actions(p) == [("create", "id-0", on_0)]


def test_wrong_subject_on_the_right_identity_is_updated_in_place() -> None:
    [ns] = names_on(1, 2, 1)
    wrong = ObservedFic(f"coder-ws-{ns}", FicSpec(ISSUER, "system:serviceaccount:x:y", (AUDIENCE,)))
    [a] = run(Observed(spaces(ns), True, pool((), (wrong,)))).actions
    assert isinstance(a, PutFic) and a.update and a.identity == "id-1" and a.reason == "wrong subject"


def test_capacity_section_counts_ours_unmanaged_and_planned() -> None:
    [ns] = names_on(0, 2, 1)
    p = run(Observed(spaces(ns), True, pool((unmanaged("x"),), (ours("ws-gone"),))))
    rows = {r["identity"]: r for r in p.sections["capacity"]}
    assert rows["id-0"] == {"identity": "id-0", "client_id": "client-0", "ours": 0, "unmanaged": 1,
                            "limit": 20, "planned": 2}  # fmt: skip
    assert rows["id-1"]["ours"] == 1 and rows["id-1"]["planned"] == 0
    cap = p.sections["pool_capacity"]
    assert cap["pool_size"] == 2 and cap["namespaces"] == 1
    assert cap["safe_namespaces"] == safe_namespace_count([19, 20])


def test_relocation_deletes_after_the_grace_do_not_count_toward_the_guard() -> None:
    old = [f"ws-{i}" for i in range(60)]
    moved = [n for n in old if shard_index(n, 4) == 3]
    by_shard = {i: tuple(ours(n) for n in old if shard_index(n, 3) == i) for i in range(3)}
    record = tuple(Relocation(n, "id-3", NOW - 2 * HOUR) for n in moved)
    there = tuple(ours(n) for n in moved)
    observed = Observed(spaces(*old), True, pool(by_shard[0], by_shard[1], by_shard[2], there), relocations=record)
    p = run(observed, replace(POLICY, limit=40))
    assert kinds(p)["delete"] == len(moved) > 10 and p.refusal is None


# ---- urgency tiers ----------------------------------------------------------------------------------------


def test_creates_for_namespaces_without_a_credential_come_before_relocations_and_prunes() -> None:
    new = names_on(0, 2, 1)[0]
    moving = next(n for n in names_on(1, 2, 50) if n != new)
    p = run(Observed(spaces(new, moving), True, pool((ours(moving), ours("ws-gone")), ())))
    tiers = {(a.kind, a.namespace): a.phase for a in p.actions if not isinstance(a, RecordRelocations)}
    assert tiers == {("create", new): 0, ("create", moving): 1, ("delete", "ws-gone"): 2}
    assert [a.kind for a in p.actions][-1] == "record"


def test_a_delete_that_makes_room_for_an_urgent_create_moves_up_with_it() -> None:
    live = names_on(0, 1, 2)
    p = run(Observed(spaces(*live), True, pool((ours("ws-gone-1"), ours("ws-gone-2"), ours(live[0])))),
            replace(POLICY, limit=3))  # fmt: skip
    assert [(a.kind, a.namespace, a.phase) for a in p.actions] == [
        ("delete", "ws-gone-1", 0), ("create", live[1], 0), ("delete", "ws-gone-2", 2)
    ]  # fmt: skip
