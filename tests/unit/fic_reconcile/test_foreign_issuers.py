"""FICs on pool identities whose issuer is neither this cluster's nor in --known-issuers (issue 21, point 6).

Such a FIC lets a workload outside the cluster (a GitHub Actions repository, another cluster nobody declared)
act as a pool identity, with every right every workspace has. The plan reports each as a `foreign-issuer`
error finding naming the identity, the FIC, its issuer and subject, lists it in the `foreign_issuer_credentials`
section, and never touches it; the metric counts them per identity."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jobs.fic_reconcile.metrics import fic_gauges
from jobs.fic_reconcile.model import DeleteFic, IdentityState, Observed, PutFic
from jobs.fic_reconcile.placement import foreign_issuer_fics
from jobs.fic_reconcile.plan import AUDIENCE, Policy
from lib.clients.arm_types import FicSpec, ObservedFic
from lib.model import Report
from tests.unit.fic_reconcile.test_plan import ISSUER, OTHER, POLICY, ours, pool, run, spaces

GITHUB = "https://token.actions.githubusercontent.com"


def github(name: str = "gh-deploy", subject: str = "repo:evil/repo:ref:refs/heads/main") -> ObservedFic:
    return ObservedFic(name, FicSpec(GITHUB, subject, (AUDIENCE,)))


def foreign_findings(p) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(f.severity, f.subject, f.message) for f in p.findings if f.rule == "foreign-issuer"]


def test_a_github_fic_on_a_pool_identity_is_an_error_naming_identity_fic_issuer_and_subject() -> None:
    observed = Observed(spaces("ws-a"), True, pool((github(),), ()))
    p = run(observed)
    ((severity, subject, message),) = foreign_findings(p)
    assert severity == "error" and subject == "id-0/gh-deploy"
    assert GITHUB in message and "repo:evil/repo:ref:refs/heads/main" in message and "--known-issuers" in message
    assert p.sections["foreign_issuer_credentials"] == [
        {"identity": "id-0", "fic": "gh-deploy", "issuer": GITHUB, "subject": "repo:evil/repo:ref:refs/heads/main"}
    ]
    assert all(a.fic != "gh-deploy" for a in p.actions if isinstance(a, PutFic | DeleteFic))


def test_a_known_issuer_is_no_finding_and_still_counts_toward_the_limit() -> None:
    observed = Observed(spaces("ws-a"), True, pool((github(),)))
    p = run(observed, replace(POLICY, known_issuers=(GITHUB,), limit=1))
    assert foreign_findings(p) == [] and p.sections["foreign_issuer_credentials"] == []
    assert [f.rule for f in p.findings] == ["unplaceable"]  # the GitHub FIC holds the identity's only slot


def test_another_clusters_fics_are_foreign_until_its_issuer_is_declared() -> None:
    """A prefixed FIC of another issuer was "another cluster's" and only counted; undeclared, it is reported."""
    observed = Observed(spaces("ws-a"), True, pool((ours("ws-b", OTHER),)))
    assert [s for _, s, _ in foreign_findings(run(observed))] == ["id-0/coder-ws-ws-b"]
    assert foreign_findings(run(observed, replace(POLICY, known_issuers=(OTHER,)))) == []


@pytest.mark.parametrize("lookalike", [ISSUER.rstrip("/"), ISSUER.upper(), ISSUER + "x", " " + ISSUER])
def test_issuers_compare_exactly_as_entra_does(lookalike: str) -> None:
    """Entra matches the token's `iss` to the FIC's issuer exactly; a near miss is a different issuer."""
    fic = ObservedFic("coder-ws-ws-a", FicSpec(lookalike, "system:serviceaccount:ws-a:workspace", (AUDIENCE,)))
    assert foreign_issuer_fics(pool((fic,)), ISSUER, ()) == [("id-0", fic)]


def test_an_identity_that_could_not_be_listed_reports_what_was_read() -> None:
    observed = Observed(spaces("ws-a"), True, pool((github(),), complete=False))
    assert [s for _, s, _ in foreign_findings(run(observed))] == ["id-0/gh-deploy"]


def test_the_gauge_counts_per_identity_zeros_included() -> None:
    identities = pool((github("gh-1"), github("gh-2"), ours("ws-a")), (ours("ws-b"),), (ours("ws-c", OTHER),))
    p = run(Observed(spaces("ws-a", "ws-b"), True, identities))
    registry = CollectorRegistry()
    fic_gauges(Report(p, sections={"occupancy_after": p.sections["capacity"]}), registry)
    samples = {
        s.labels["identity"]: s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name == "cwj_fic_foreign_issuer_credentials"
    }
    assert samples == {"id-0": 2.0, "id-1": 0.0, "id-2": 1.0}


ISSUERS = [ISSUER, OTHER, GITHUB, "https://sts.example.test/", ISSUER.rstrip("/")]


@st.composite
def pools(draw: st.DrawFn) -> tuple[IdentityState, ...]:
    fics = st.tuples(st.sampled_from(["coder-ws-ws-a", "coder-ws-ws-b", "gh-x", "tf-y"]), st.sampled_from(ISSUERS))
    per = st.lists(fics, max_size=5, unique_by=lambda t: t[0].lower())
    return tuple(
        IdentityState(
            f"id-{i}", f"client-{i}", tuple(ObservedFic(n, FicSpec(iss, f"sub-{n}", (AUDIENCE,))) for n, iss in fs)
        )
        for i, fs in enumerate(draw(st.lists(per, min_size=1, max_size=4)))
    )


@settings(max_examples=300, deadline=None)
@given(
    identities=pools(),
    known=st.lists(st.sampled_from(ISSUERS), unique=True),
    names=st.sets(st.sampled_from(["ws-a", "ws-b", "ws-c"])),
)
def test_exactly_the_fics_of_undeclared_issuers_are_reported_and_none_of_them_is_written(
    identities: tuple[IdentityState, ...], known: list[str], names: set[str]
) -> None:
    policy = replace(POLICY, known_issuers=tuple(known), allow_mass_delete=True)
    p = run(Observed(spaces(*sorted(names)), True, identities), policy)
    expected = {f"{i.name}/{f.name}" for i in identities for f in i.fics if f.spec.issuer not in {ISSUER, *known}}
    reported = [s for _, s, _ in foreign_findings(p)]
    assert sorted(reported) == sorted(expected) and len(reported) == len(set(reported))
    written = {f"{a.identity}/{a.fic}".lower() for a in p.actions if isinstance(a, PutFic | DeleteFic)}
    assert not written & {e.lower() for e in expected}
    assert all(
        isinstance(a, PutFic) or a.fic.lower().startswith("coder-ws-") for a in p.actions if isinstance(a, DeleteFic)
    )


def test_the_policy_default_knows_no_other_issuer() -> None:
    assert Policy(ISSUER, "workspace", "coder-ws-", "ws-", limit=20).known_issuers == ()
