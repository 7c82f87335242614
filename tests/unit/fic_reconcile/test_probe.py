"""The readiness probe's pure part (jobs/fic_reconcile/probe.py): which namespaces it tries, when, and what its
results say. The rounds themselves run against the emulators in tests/e2e/test_fic_reconcile_probe.py."""

from __future__ import annotations

import itertools

import pytest
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from hypothesis import given
from hypothesis import strategies as st

from jobs.fic_reconcile.probe import (
    CAP_S,
    FLOOR_S,
    FRACTION,
    Attempt,
    Created,
    Probed,
    ProbeResult,
    attempt_offsets,
    choose,
    entra_refusal,
    next_offset,
    spread,
)

REFUSED = "AADSTS70021: No matching federated identity record found for presented assertion."


def created(ns: str, written_at: float = 100.0, ttc: float | None = 3.0) -> Created:
    return Created(ns, "id-pool-0", "client-0", written_at, ttc)


# ---- when ------------------------------------------------------------------------------------------------------


def test_the_first_attempts_are_two_seconds_apart_then_a_fifth_of_the_time_elapsed_then_fifteen() -> None:
    assert attempt_offsets(5) == (0.0, 2.0, 4.0, 5.0)  # the last at the bound itself
    assert attempt_offsets(13)[:8] == (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 13.0)
    long = attempt_offsets(300)
    assert long[7:9] == (14.4, 17.28) and long[-2:] == (299.162, 300.0)
    assert {round(b - a, 3) for a, b in itertools.pairwise(long) if a >= 75} <= {15.0, 0.838}
    assert len(attempt_offsets(120)) == 21 and len(long) == 33  # Entra requests per namespace, at most


def test_no_time_means_no_attempt_and_a_sliver_means_one_now_and_one_at_the_end() -> None:
    assert attempt_offsets(0) == () and attempt_offsets(-3) == ()
    assert attempt_offsets(0.5) == (0.0, 0.5)
    assert attempt_offsets(2.0001) == (0.0, 2.0)  # never the same moment twice


@given(st.floats(min_value=0.001, max_value=3600, allow_nan=False))
def test_offsets_start_now_end_at_the_bound_and_see_a_grant_at_most_a_fifth_or_two_seconds_late(window: float) -> None:
    offsets = attempt_offsets(window)
    assert offsets[0] == 0.0 and offsets[-1] == round(window, 3)
    assert all(a < b for a, b in itertools.pairwise(offsets))
    for a, b in itertools.pairwise(offsets):
        assert b - a <= min(CAP_S, max(FLOOR_S, FRACTION * a)) + 0.002
    # Entra starts granting at any moment x within the window: the next attempt comes at most this late
    for x in (offsets[-1] * f for f in (0.01, 0.3, 0.77, 1.0)):
        after = next_offset(offsets, x - 1e-9)
        assert after is not None and after - x <= min(CAP_S, max(FLOOR_S, FRACTION * x)) + 0.002


def test_a_round_that_ran_long_skips_what_it_overran() -> None:
    offsets = attempt_offsets(13)
    assert next_offset(offsets, -1) == 0.0 and next_offset(offsets, 0.05) == 2.0
    assert next_offset(offsets, 4.1) == 6.0 and next_offset(offsets, 13.0) is None


# ---- which ------------------------------------------------------------------------------------------------------


@given(st.sets(st.text("abcdef", min_size=1, max_size=4)), st.integers(min_value=1, max_value=10))
def test_the_sample_is_the_first_by_name_whatever_the_order_of_the_creates(names: set[str], limit: int) -> None:
    made = [created(n) for n in names]
    chosen, left_out = choose(made, limit)
    assert [c.namespace for c in chosen] == sorted(names)[:limit]
    assert len(chosen) + left_out == len(names)
    assert choose(list(reversed(made)), limit) == (chosen, left_out)


# ---- what it says -------------------------------------------------------------------------------------------------


def test_a_grant_after_refusals_reports_both_bounds_and_time_to_usable() -> None:
    probed = Probed(
        created("ws-a", written_at=100.0, ttc=3.0),
        (Attempt(101.0, refusal=REFUSED), Attempt(103.0, refusal=REFUSED), Attempt(105.5, granted=True)),
    )
    assert (probed.refused_until_s, probed.usable_after_s, probed.time_to_usable_s) == (3.0, 5.5, 8.5)
    result = ProbeResult((probed,), left_out=4, window=60.0)
    assert result.rows() == [
        {"namespace": "ws-a", "identity": "id-pool-0", "result": "usable", "attempts": 3, "refused_until_s": 3.0,
         "usable_after_s": 5.5, "time_to_usable_s": 8.5, "last_refusal": REFUSED}
    ]  # fmt: skip
    assert result.summary() == {
        "probed": 1, "usable": 1, "not_usable": 0, "not_probed": 4, "window_s": 60.0,
        "p50_s": 8.5, "p99_s": 8.5, "max_s": 8.5,
    }  # fmt: skip
    assert result.findings() == []


def test_not_usable_within_the_bound_is_one_warning_per_namespace_naming_the_last_refusal() -> None:
    refused = Probed(created("ws-b"), (Attempt(101.0, refusal="x"), Attempt(102.0, refusal=REFUSED)))
    granted = Probed(created("ws-c", ttc=None), (Attempt(104.0, granted=True),))
    result = ProbeResult((refused, granted), left_out=0, window=30.0)
    [finding] = result.findings()
    assert (finding.severity, finding.rule, finding.subject) == ("warning", "not-usable", "ws-b")
    assert finding.message == f"id-pool-0: no token within 30 s of probing (2 attempt(s)); last: {REFUSED}"
    assert granted.time_to_usable_s is None  # no creation time: usable, but not measured
    summary = result.summary()
    assert (summary["usable"], summary["not_usable"]) == (1, 1) and "p50_s" not in summary


def test_a_forbidden_token_request_is_one_error_and_no_warnings() -> None:
    reason = 'TokenRequest ws-d/workspace: 403 Forbidden: cannot create resource "serviceaccounts/token"'
    forbidden = [Probed(created(ns), (Attempt(101.0, refusal=reason, final=True),)) for ns in ("ws-d", "ws-e")]
    [finding] = ProbeResult(tuple(forbidden), left_out=0, window=30.0).findings()
    assert (finding.severity, finding.rule, finding.subject) == ("error", "probe-failed", "probe")
    assert finding.message.startswith(f"2 namespace(s) not probed: {reason}")


def test_a_budget_spent_before_the_probe_is_one_warning() -> None:
    result = ProbeResult((Probed(created("ws-f")),), left_out=0, window=0.0)
    [finding] = result.findings()
    assert (finding.severity, finding.rule) == ("warning", "probe-skipped")
    assert ProbeResult((), left_out=0, window=0.0).findings() == []  # nothing created: nothing to say


def test_spread_of_nothing_is_nothing_and_of_one_is_that_one() -> None:
    assert spread([]) == {}
    assert spread([4.2]) == {"p50_s": 4.2, "p99_s": 4.2, "max_s": 4.2}
    assert spread([1, 2, 3, 100]) == {"p50_s": 2.5, "p99_s": 97.09, "max_s": 100}


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ClientAuthenticationError(message=f"Microsoft Entra ID error '(invalid_request) {REFUSED} Assertion Issuer: "
                                           "'https://oidc.test/'. Trace ID: 1 Correlation ID: 2 Timestamp: 3'"),
         f"{REFUSED} Assertion Issuer: 'https://oidc.test/'."),
        (ServiceRequestError("Connection refused\\nmore"), "ServiceRequestError: Connection refused\\nmore"),
        (TimeoutError("timed out\nand more"), "TimeoutError: timed out"),
        (ClientAuthenticationError(message="Microsoft Entra ID error '(ServiceUnavailable) down Trace ID: 1'"),
         "ClientAuthenticationError: Microsoft Entra ID error '(ServiceUnavailable) down"),
    ],
)  # fmt: skip
def test_entra_refusals_are_one_line_without_trace_ids(exc: Exception, expected: str) -> None:
    assert entra_refusal(exc) == expected
