"""fic-reconcile at Azure's pace (issue 14), the console script against the emulated platform: a run whose budget
is too small for its plan defers the rest and exits 0, urgent creates before any prune, throttling that
outlasts the budget defers instead of failing, time to credential, and bad input."""

from __future__ import annotations

import pytest

from tests.conftest import Control, run_job
from tests.e2e.test_fic_reconcile import converged, create_namespaces, delete_namespaces, namespaces, run, writes
from tests.emulators.platform import Platform
from tests.pushgateway import Pushgateway

pytestmark = pytest.mark.e2e


def test_3_a_budget_too_small_defers_the_rest_urgent_creates_first_and_the_next_run_finishes(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    old = namespaces(6)
    create_namespaces(old)
    assert run(env)[0] == 0
    delete_namespaces(platform, old)  # six prunes waiting
    new = namespaces(20, start=100)
    create_namespaces(new)
    control.clear_requests()
    # 1 write/s after a 4-write burst, and 7 s of which 5 s are the reserve: far less than 26 writes
    code, report, stderr = run(env, "--arm-writes-per-second", "1", "--max-run-seconds", "7", "--allow-mass-delete")
    assert code == 0, stderr  # deferral alone is not a failure
    results = [(o["kind"], o["result"]) for o in report["outcomes"]]
    assert ("create", "deferred") in results and ("delete", "deferred") in results
    assert ("delete", "ok") not in results  # prunes wait for every create for a namespace without a credential
    assert [f["rule"] for f in report["findings"]] == ["deferred"]
    assert '"create.deferred"' in stderr  # counted in the run.summary line
    log = [e["op"] for e in control.requests("arm")["log"] if e["op"] in ("fic.put", "fic.delete")]
    assert log and set(log) == {"fic.put"}

    code, report, stderr = run(env, "--allow-mass-delete")
    assert code == 0, stderr
    converged(platform, new)
    assert all(o["result"] == "ok" for o in report["outcomes"])
    control.clear_requests()
    assert run(env)[0] == 0 and writes(control) == 0


def test_5_throttling_that_outlasts_the_budget_defers_and_the_next_run_converges(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(4)
    create_namespaces(names)
    control.fault("arm", "fic.put", status=429, retry_after=3600, code="TooManyRequests", count=None)
    code, report, stderr = run(env, "--max-run-seconds", "12")  # the client waits at most 15 s between tries
    assert code == 0, stderr  # a Retry-After past the budget: deferred, not failed
    assert {o["result"] for o in report["outcomes"]} == {"deferred"}
    assert all("429" in o["detail"] for o in report["outcomes"])
    control.clear_faults()  # the throttling ends
    assert run(env)[0] == 0
    converged(platform, names)


def test_time_to_credential_is_reported_and_pushed(
    platform: Platform, env: dict[str, str], pushgateway: Pushgateway
) -> None:
    create_namespaces(namespaces(5))
    platform.clock.advance(0)
    code, report, stderr = run({**env, **pushgateway.env}, "--pushgateway-url", pushgateway.url)
    assert code == 0, stderr
    waited = report["time_to_credential"]
    assert waited["created"] == 5 and 0 <= waited["p50_s"] <= waited["p99_s"] <= waited["max_s"] < 600
    assert all(o["detail"].startswith("time to credential ") for o in report["outcomes"])
    samples = pushgateway.samples("fic-reconcile")
    assert samples[("cwj_fic_time_to_credential_max_seconds", ())] == pytest.approx(waited["max_s"])
    assert samples[("cwj_fic_time_to_credential_seconds", (("quantile", "0.5"),))] == pytest.approx(waited["p50_s"])
    assert samples[("cwj_fic_deferred_actions", (("kind", "create"),))] == 0


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--max-run-seconds", "0"), ("--max-run-seconds", "-5"), ("--max-run-seconds", "soon"),
     ("--arm-writes-per-second", "0"), ("--arm-writes-per-second", "inf")],
)  # fmt: skip
def test_6_a_budget_of_zero_or_less_exits_2_with_zero_requests(
    platform: Platform, env: dict[str, str], control: Control, flag: str, value: str
) -> None:
    control.clear_requests()
    proc = run_job("fic-reconcile", flag, value, env=env)
    assert proc.returncode == 2 and flag in proc.stderr and proc.stdout == ""
    assert all(control.count(service) == 0 for service in ("arm", "kube", "entra"))


def test_4_a_new_fic_is_refused_until_it_has_propagated(platform: Platform, env: dict[str, str]) -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientAssertionCredential

    from tests.e2e.test_fic_reconcile import shard

    [ns] = namespaces(1)
    create_namespaces([ns])
    assert run(env)[0] == 0
    client_id = platform.baseline.pool_client_ids[shard(ns, 3)]
    assertion = platform.service_account_jwt(ns, "workspace")

    def token() -> str:
        credential = ClientAssertionCredential(platform.baseline.tenant_id, client_id, func=lambda: assertion)
        return credential.get_token("https://management.azure.com/.default").token

    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):  # right after the run created it
        token()
    platform.clock.advance(platform.entra.settings["fic_propagation_seconds"])
    assert token()
