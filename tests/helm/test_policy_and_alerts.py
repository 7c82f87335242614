"""The chart's optional PrometheusRule and NOTES.txt: what the alerts select (against the metric names the code
really pushes), and the commands helm prints after install. The NetworkPolicies: test_network_policy.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from jobs.token_expiry_check.job import token_gauges
from lib.clients.pushgateway import run_registry
from lib.model import Plan, Report
from tests.helm.chart import CHART, FULL, VALUE_KEYS, kinds, template
from tests.helm.helm_binary import run_helm

DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())


# ---- PrometheusRule -------------------------------------------------------------------------------------------


def rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (rule,) = kinds(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    (group,) = rule["spec"]["groups"]
    found: list[dict[str, Any]] = group["rules"]
    return found


def pushed_metric_names() -> set[str]:
    """Every series name token-expiry-check pushes, taken from the code that builds its registry."""
    row = {"user": "u", "token_name": "t", "expires_at": "2030-01-01T00:00:00Z"}
    report = Report(plan=Plan(sections={"tokens": [row]}))
    registry = run_registry(report, 0, extra=lambda r: token_gauges(r, report))
    return {sample.name for metric in registry.collect() for sample in metric.samples}


def test_prometheus_rule_shape_and_alerts(full: list[dict[str, Any]]) -> None:
    (rule,) = kinds(full, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # the ruleSelector label from values
    found = rules(full)
    assert [r["alert"] for r in found] == ["CoderWiJobFailed"] + ["CoderWiJobLastSuccessTooOld"] * 4 + [
        "CoderWiJobPushedSuccessTooOld"
    ] * 4 + ["CoderWiJobFinding", "CoderWiJobDryRunLeftOn", "CoderWiFicForeignIssuer", "CoderTokenExpiring"]
    for r in found:
        assert set(r) - {"for"} == {"alert", "expr", "labels", "annotations"}
        assert set(r["annotations"]) == {"summary", "description", "runbook_url"}
        assert r["labels"]["severity"] and r["labels"]["team"] == "platform"
        assert r["expr"].count("(") == r["expr"].count(")") and r["expr"].count("{") == r["expr"].count("}")
        assert "{{" not in r["expr"]  # helm rendered everything; only the annotations keep Prometheus templates


def test_job_failed_alert_covers_manual_runs_of_every_cronjob(full: list[dict[str, Any]]) -> None:
    expr = rules(full)[0]["expr"]
    assert 'kube_job_failed{namespace="jobs", condition="true"} == 1' in expr and 'owner_kind="CronJob"' in expr
    (regex,) = re.findall(r'owner_name=~"([^"]+)"', expr)
    assert sorted(regex.split("|")) == sorted(c["metadata"]["name"] for c in kinds(full, "CronJob"))


def test_last_success_thresholds_are_per_job(full: list[dict[str, Any]]) -> None:
    ages = DEFAULTS["prometheusRule"]["lastSuccessTooOld"]["maxAgeSeconds"]
    for r in rules(full)[1:5]:
        (cj,) = set(re.findall(r'cronjob="([^"]+)"', r["expr"]))
        job = cj.removeprefix("rel-")
        assert (
            f'kube_cronjob_status_last_successful_time{{namespace="jobs", cronjob="{cj}"}} > {ages[VALUE_KEYS[job]]}'
            in r["expr"]
        )
        assert "kube_cronjob_spec_suspend" in r["expr"] and "kube_cronjob_created" in r["expr"]


def test_token_expiring_alert_uses_the_metric_the_job_pushes(full: list[dict[str, Any]]) -> None:
    expiring = rules(full)[-1]
    (metric,) = re.findall(r"(cwj_\w+)\{", expiring["expr"])
    assert metric in pushed_metric_names()
    assert expiring["expr"].endswith(f"< {14 * 86400}")  # seed 001: warn 14 days before expiry
    assert set(re.findall(r"\$labels\.(\w+)", expiring["annotations"]["summary"])) == {"user", "token_name"}


def test_foreign_issuer_alert_uses_the_metric_fic_reconcile_pushes(full: list[dict[str, Any]]) -> None:
    from jobs.fic_reconcile.metrics import fic_gauges

    (alert,) = [r for r in rules(full) if r["alert"] == "CoderWiFicForeignIssuer"]
    (metric,) = re.findall(r"(cwj_\w+)\{", alert["expr"])
    row = {"identity": "id-0", "ours": "0", "unmanaged": "0", "limit": "20"}
    report = Report(plan=Plan(sections={"capacity": [row]}), sections={"occupancy_after": [row]})
    registry = run_registry(report, 0, extra=lambda r: fic_gauges(report, r))
    assert metric in {sample.name for m in registry.collect() for sample in m.samples}
    assert 'job="fic-reconcile"' in alert["expr"] and alert["expr"].endswith("> 0")
    assert set(re.findall(r"\$labels\.(\w+)", alert["annotations"]["summary"])) == {"identity"}


def test_no_expiry_alert_without_a_pushgateway(home: Path) -> None:
    docs = template(home, "-f", str(FULL), "--set", "pushgatewayUrl=")
    alerts = [r["alert"] for r in rules(docs)]
    assert "CoderTokenExpiring" not in alerts and "CoderWiFicForeignIssuer" not in alerts


# ---- NOTES.txt ------------------------------------------------------------------------------------------------


def notes(home: Path, *args: str) -> str:
    done = run_helm("install", "rel", str(CHART), "-n", "jobs", "--dry-run=client", *args, home=home)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("NOTES:", 1)[1]


def test_notes_print_a_create_job_command_per_enabled_cronjob(home: Path, full: list[dict[str, Any]]) -> None:
    text = notes(home, "-f", str(FULL), "--set", "jobs.keyvaultSync.enabled=false")
    commands = re.findall(r"kubectl -n jobs create job .+? --from=cronjob/(\S+)$", text, re.MULTILINE)
    names = sorted(c["metadata"]["name"] for c in kinds(full, "CronJob") if "keyvault" not in c["metadata"]["name"])
    assert sorted(commands) == names
    assert "--dry-run=client -o yaml" in text and "CWJ_DRY_RUN=true" in text


def test_notes_without_jobs_say_what_to_enable(home: Path) -> None:
    assert "No job is enabled" in notes(home)
