"""fic-reconcile's readiness probe (issue 14, "Done means" 4), the console script against the emulated platform:
right after a run creates a namespace's FIC, Entra refuses the workspace's exchange (AADSTS70021); once the FIC has
propagated on the emulated clock it grants it, and with --probe the run itself sees both and reports time to
usable. The clock is moved by the test while the job's probe waits between attempts."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from kubernetes import client as k8s

from lib.clients.kube import core_api
from tests.conftest import Control, run_job
from tests.e2e import pushed_samples
from tests.e2e.test_fic_reconcile import create_namespaces, namespaces, run, shard
from tests.e2e.test_output_schema import VALIDATOR
from tests.e2e.workload_exchange import ARM_SCOPE, FIC_AUDIENCE, ExchangeResult, exchange, workspace_token
from tests.e2e.workload_exchange import credential as workload_credential
from tests.emulators.platform import Platform

RUN_GROUP = "/metrics/job/fic-reconcile/cluster/default"  # lib/clients/pushgateway.py, no --cluster
pytestmark = pytest.mark.e2e


def workspace_account(ns: str) -> None:
    core_api(os.environ).create_namespaced_service_account(
        ns, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="workspace"))
    )


def probe_exchanges(platform: Platform) -> list[dict[str, Any]]:
    """Entra token requests after the first TokenRequest: the probe's (the job's own ARM token came before it)."""
    minted = [e["seq"] for e in platform.log.entries("kube", "tokenrequest.create")]
    return [e for e in platform.log.entries("entra", "token") if minted and e["seq"] > minted[0]]


def wait_until(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_4_a_workspace_token_from_the_token_request_api_is_refused_until_its_fic_has_propagated(
    platform: Platform, env: dict[str, str], tmp_path: Path
) -> None:
    """The workspace's own exchange, as its pod makes it: a projected-style token for `workspace` (TokenRequest,
    audience api://AzureADTokenExchange) in a file, and WorkloadIdentityCredential with the namespace's client id."""
    [ns] = namespaces(1, start=300)
    create_namespaces([ns])
    workspace_account(ns)
    assert run(env)[0] == 0
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(workspace_token(platform, ns, FIC_AUDIENCE))
    client_id = platform.baseline.pool_client_ids[shard(ns, 3)]
    credential = workload_credential(platform, client_id, token_file, "fic")
    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):  # right after the run created the FIC
        credential.get_token(ARM_SCOPE)
    assert exchange(platform, ns, client_id, via="fic").code == "AADSTS70021"  # the shared helper sees the same
    platform.clock.advance(platform.entra.settings["fic_propagation_seconds"])
    assert credential.get_token(ARM_SCOPE).token
    assert exchange(platform, ns, client_id, via="fic") == ExchangeResult(True, "", "")


def test_4_the_probe_sees_refusals_until_propagation_then_a_grant_and_reports_time_to_usable(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    from tests.receivers import receiver

    [ns] = namespaces(1, start=310)
    create_namespaces([ns])
    workspace_account(ns)
    control.clear_requests()
    with receiver() as rec, ThreadPoolExecutor(max_workers=1) as pool:
        args = (
            "--probe",
            "--probe-seconds",
            "60",
            "--log-level",
            "debug",
            "--pushgateway-url",
            rec.url,
            "--allow-insecure-http",
        )
        running = pool.submit(run, env, *args)
        wait_until(lambda: sum(e["status"] == 400 for e in probe_exchanges(platform)) >= 2)  # refused twice
        platform.clock.advance(platform.entra.settings["fic_propagation_seconds"])  # Entra catches up
        code, report, stderr = running.result(timeout=120)
    assert code == 0, stderr
    assert [e.message for e in VALIDATOR.iter_errors(report)] == []  # docs/output.schema.json: typed probe rows
    [row] = report["probe"]
    assert (row["namespace"], row["identity"], row["result"]) == (
        ns,
        platform.baseline.pool_identity_name(shard(ns, 3)),
        "usable",
    )
    assert row["last_refusal"].startswith("AADSTS70021: No matching federated identity record found")
    statuses = [e["status"] for e in probe_exchanges(platform)]
    attempts = int(row["attempts"])
    assert statuses == [400] * (attempts - 1) + [200] and attempts >= 3  # nothing after the grant
    assert control.count("kube", "tokenrequest.create") == 1  # one short-lived token, reused
    assert 2.0 <= float(row["refused_until_s"]) < float(row["usable_after_s"])  # the second refusal waited 2 s
    ttc = report["time_to_credential"]["max_s"]
    assert float(row["time_to_usable_s"]) == pytest.approx(ttc + float(row["usable_after_s"]), abs=0.11)
    summary = report["time_to_usable"]
    assert (summary["probed"], summary["usable"], summary["not_usable"], summary["not_probed"]) == (1, 1, 0, 0)
    assert summary["max_s"] == pytest.approx(float(row["time_to_usable_s"]), abs=0.051)
    assert report["findings"] == []
    retries = [json.loads(line) for line in stderr.splitlines() if '"event": "retry"' in line]
    assert [r["attempt"] for r in retries] == list(range(1, attempts))  # each refusal, in the one retry shape
    assert all(r["client"] == "entra" and r["reason"].startswith("AADSTS70021") for r in retries)
    assert all(r["call"] == f"exchange {ns} as {row['identity']}" and r["wait_s"] >= 0 for r in retries), retries
    assert [r.path for r in rec.requests] == [RUN_GROUP, f"{RUN_GROUP}/outcome/success"]  # the probe's in the run's
    samples = pushed_samples(rec.requests[0].body.decode())
    assert samples[("cwj_fic_probe_namespaces", (("result", "usable"),))] == 1
    assert samples[("cwj_fic_time_to_usable_max_seconds", ())] == pytest.approx(summary["max_s"])
    assert samples[("cwj_fic_time_to_usable_seconds", (("quantile", "0.5"),))] == pytest.approx(summary["p50_s"])


def test_not_usable_within_the_bound_is_a_warning_naming_why_and_the_run_still_passes(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    propagating, no_account = namespaces(2, start=320)
    create_namespaces([propagating, no_account])
    workspace_account(propagating)  # no_account has no `workspace` ServiceAccount yet: TokenRequest answers 404
    started = time.monotonic()
    code, report, stderr = run(env, "--probe", "--probe-seconds", "5")
    assert code == 0, stderr  # a warning, not a failed run
    assert time.monotonic() - started < 30
    findings = {f["subject"]: f for f in report["findings"]}
    assert set(findings) == {propagating, no_account}
    assert all((f["severity"], f["rule"]) == ("warning", "not-usable") for f in findings.values())
    assert "AADSTS70021" in findings[propagating]["message"]
    assert (
        'TokenRequest ameide-ws-321/workspace: 404 Not Found: serviceaccounts "workspace" not found'
        in (findings[no_account]["message"])
    )
    rows = {r["namespace"]: r for r in report["probe"]}
    assert [e.message for e in VALIDATOR.iter_errors(report)] == []
    assert {r["result"] for r in rows.values()} == {"not usable"} and rows[propagating]["usable_after_s"] is None
    assert report["time_to_usable"] == {
        "probed": 2, "usable": 0, "not_usable": 2, "not_probed": 0, "window_s": 5.0
    }  # fmt: skip
    # rounds at 0, 2, 4 and the bound itself (5 s); a round slowed past the next one's start skips it (load)
    attempts = {ns: int(rows[ns]["attempts"]) for ns in rows}
    assert all(2 <= n <= 4 for n in attempts.values()), attempts
    exchanges = probe_exchanges(platform)
    assert [e["status"] for e in exchanges] == [400] * attempts[propagating]  # the 404s reach no further
    moments = [datetime.fromisoformat(e["time"]) for e in exchanges]
    assert (moments[-1] - moments[0]).total_seconds() <= 5 + 0.5 + 1  # the bound, LATE_S, the last timeout


def test_the_probe_stays_inside_the_run_budget_and_samples_at_most_its_maximum(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(3, start=330)
    create_namespaces(names)
    for ns in names:
        workspace_account(ns)
    # the budget: 8 s, of which 5 s are the reserve; the probe may wait 7 s but gets what is left of the 3 s
    code, report, stderr = run(env, "--probe", "--probe-seconds", "7", "--max-run-seconds", "8",
                               "--probe-max-namespaces", "2")  # fmt: skip
    assert code == 0, stderr
    summary = report["time_to_usable"]
    assert summary["window_s"] <= 3.0 and (summary["probed"], summary["not_probed"]) == (2, 1)
    assert [r["namespace"] for r in report["probe"]] == names[:2]  # by name
    exchanges = [datetime.fromisoformat(e["time"]) for e in probe_exchanges(platform)]
    assert (exchanges[-1] - exchanges[0]).total_seconds() <= summary["window_s"] + 0.5 + 1
    duration = json.loads(stderr.strip().splitlines()[-1])["duration_s"]  # the run.summary line
    assert duration < 8 + 2  # the budget starts once the pool is resolved (connect), a second or two in


def test_a_job_that_may_not_mint_tokens_fails_the_run_once_per_namespace_without_retrying(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(2, start=340)
    create_namespaces(names)
    for ns in names:
        workspace_account(ns)
    control.fault("kube", "tokenrequest.create", status=403, count=None, code="Forbidden",
                  message='serviceaccounts "workspace" is forbidden: User cannot create resource '
                          '"serviceaccounts/token"')  # fmt: skip
    code, report, stderr = run(env, "--probe", "--probe-seconds", "20")
    assert code == 1, stderr  # the probe asked for cannot run: an error, not a warning
    assert [(f["severity"], f["rule"]) for f in report["findings"]] == [("error", "probe-failed")]
    assert "2 namespace(s) not probed" in report["findings"][0]["message"]
    assert control.count("kube", "tokenrequest.create") == 2 and probe_exchanges(platform) == []
    assert all(o["result"] == "ok" for o in report["outcomes"])  # the FICs themselves were written


def test_without_probe_nothing_is_minted_and_nothing_reported(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    from tests.receivers import receiver

    [ns] = namespaces(1, start=350)
    create_namespaces([ns])
    workspace_account(ns)
    with receiver() as rec:
        code, report, stderr = run(env, "--pushgateway-url", rec.url, "--allow-insecure-http")
    assert code == 0, stderr
    assert "probe" not in report and "time_to_usable" not in report
    assert control.count("kube", "tokenrequest.create") == 0
    assert rec.requests[0].path == RUN_GROUP
    pushed = {name for name, _ in pushed_samples(rec.requests[0].body.decode())}
    assert "cwj_fic_time_to_credential_max_seconds" in pushed  # the run pushed; the probe's families hold no sample
    assert not {"cwj_fic_probe_namespaces", "cwj_fic_time_to_usable_seconds"} & pushed


def test_probe_without_a_tenant_or_past_the_budget_exits_2_with_zero_requests(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    control.clear_requests()
    no_tenant = {k: v for k, v in env.items() if k != "AZURE_TENANT_ID"}
    proc = run_job("fic-reconcile", "--probe", env=no_tenant)
    assert proc.returncode == 2 and "--probe (CWJ_PROBE)" in proc.stderr and "AZURE_TENANT_ID" in proc.stderr
    proc = run_job("fic-reconcile", "--probe", "--probe-seconds", "600", env=env)  # = --max-run-seconds
    assert proc.returncode == 2 and "--probe-seconds (CWJ_PROBE_SECONDS)" in proc.stderr
    assert all(control.count(service) == 0 for service in ("arm", "kube", "entra"))


def test_an_entra_outage_and_a_failed_token_request_during_the_probe_are_named_warnings(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    names = namespaces(2, start=360)
    create_namespaces(names)
    for ns in names:
        workspace_account(ns)
    control.fault("kube", "tokenrequest.create", status=500, count=1)  # the first mint fails, the next round mints
    control.fault(
        "entra", "token", status=503, count=None, skip=1
    )  # the job's own ARM token passes, then Entra is down
    code, report, stderr = run(env, "--probe", "--probe-seconds", "6")  # rounds at 0, 2, 4, 6 s
    assert code == 0, stderr
    assert [(f["severity"], f["rule"]) for f in report["findings"]] == [("warning", "not-usable")] * 2
    assert all("last: HTTP 503 ClientAuthenticationError: " in f["message"] for f in report["findings"])
    assert all("Trace ID" not in r["last_refusal"] for r in report["probe"])
    assert control.count("kube", "tokenrequest.create") == 3  # the failed mint was tried again in the next round
