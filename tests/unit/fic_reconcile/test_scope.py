"""What a dry-run must not pass as green (issue 22, point 3), in the pure plan: a namespace scope that matches
nothing, and an issuer nobody could check, are warnings in the plan, not a silent 0 actions."""

from __future__ import annotations

from jobs.fic_reconcile.model import Observed
from tests.unit.fic_reconcile.test_plan import names_on, ours, pool, run, spaces


def scope(p) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(f.rule, f.message) for f in p.findings if f.rule in ("no-workspace-namespaces", "issuer-unverified")]


def test_a_prefix_that_matches_nothing_on_an_empty_pool_is_a_warning() -> None:
    p = run(Observed(spaces("default", "kube-system", "ameide-ws-a"), True, pool((), (), ())))
    assert p.actions == ()
    ((rule, message),) = scope(p)
    assert rule == "no-workspace-namespaces" and "'ws-'" in message and "FIC(s) of ours" not in message


def test_a_prefix_that_matches_nothing_with_fics_of_ours_says_they_would_all_go() -> None:
    held = names_on(0, 2, 2)
    p = run(Observed(spaces("other-a"), True, pool(tuple(ours(n) for n in held), ())))
    ((_, message),) = scope(p)
    assert "2 FIC(s) of ours exist" in message
    assert sorted(a.namespace for a in p.actions if a.kind == "delete") == sorted(held)


def test_no_warning_when_a_workspace_exists_or_the_list_failed() -> None:
    (ns,) = names_on(0, 2, 1)
    assert scope(run(Observed(spaces(ns), True, pool((), ())))) == []
    assert scope(run(Observed((), False, pool((), ()), namespaces_error="boom"))) == []  # observe-failed says it


def test_an_unreadable_issuer_document_is_a_warning_naming_why() -> None:
    (ns,) = names_on(0, 2, 1)
    p = run(Observed(spaces(ns), True, pool((), ()), issuer_problem="could not read https://x/: refused"))
    assert scope(p) == [("issuer-unverified", "--issuer not checked against its discovery document: could not read "
                         "https://x/: refused")]  # fmt: skip
    assert len(p.actions) == 1  # the run still does right by a correct setting
