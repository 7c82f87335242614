"""Metrics survive failure (issue 22, point 2), end to end: fic-reconcile succeeds, then fails, pushing to the
real Pushgateway (tests/pushgateway.py); what it then serves (a PUT replaces exactly the group it names:
https://github.com/prometheus/pushgateway#put-method) is fed to Prometheus' promtool with the chart's own
PrometheusRule, and the pushed-staleness alert must fire once the last success is older than its threshold,
while the job keeps failing. Before the split into a run group and a success group, the failed run's push
removed the success series and this alert could never fire."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from lib.clients.kube import core_api
from tests.conftest import Control, run_job
from tests.emulators.platform import Platform
from tests.helm import promtool as pt
from tests.helm.chart import FULL, kinds, template
from tests.pushgateway import SUCCESS, Pushgateway

pytestmark = pytest.mark.e2e

CLUSTER = "aks-prod-westeurope"  # clusterName in ci/full-values.yaml


def served_series(pushgateway: Pushgateway, base: float) -> list[dict[str, str]]:
    """promtool input series for the jobs' timestamps the Pushgateway serves (with their grouping labels, as
    Prometheus scrapes them with honor_labels), shifted so that `base` is time 0."""
    out = []
    for family in text_string_to_metric_families(pushgateway.metrics()):
        for sample in family.samples:
            if not (sample.name.startswith("cwj_") and sample.name.endswith("_timestamp_seconds")):
                continue
            labels = {k: v for k, v in sample.labels.items() if v}  # the Pushgateway's empty instance=""
            selector = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            out.append({"series": f"{sample.name}{{{selector}}}", "values": f"{sample.value - base:.0f}x200"})
    return out


def test_the_pushed_staleness_alert_fires_while_the_job_keeps_failing(
    platform: Platform, env: dict[str, str], control: Control, home: Path, tmp_path: Path, pushgateway: Pushgateway
) -> None:
    api = core_api(os.environ)
    for name in ("ameide-ws-a", "ameide-ws-b"):
        api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    job_env = {**env, **pushgateway.env, "CWJ_CLUSTER": CLUSTER}
    assert run_job("fic-reconcile", "--pushgateway-url", pushgateway.url, env=job_env).returncode == 0
    succeeded_at = pushgateway.pushed_at("fic-reconcile", group=SUCCESS, cluster=CLUSTER)
    api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="ameide-ws-c")))
    control.fault("arm", "fic.put", status=500, count=None)
    assert run_job("fic-reconcile", "--pushgateway-url", pushgateway.url, env=job_env).returncode == 1

    assert pushgateway.groups("fic-reconcile") == {(CLUSTER, ""), (CLUSTER, "success")}
    run = pushgateway.samples("fic-reconcile", cluster=CLUSTER)
    assert run[("cwj_last_run_exit_code", ())] == 1  # the failed run is visible...
    success = pushgateway.samples("fic-reconcile", group=SUCCESS, cluster=CLUSTER)  # ...and the success survived
    assert pushgateway.pushed_at("fic-reconcile", group=SUCCESS, cluster=CLUSTER) == succeeded_at
    base = success[("cwj_last_success_timestamp_seconds", ())]

    (rule,) = kinds(template(home, "-f", str(FULL)), "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    expected = {
        "exp_labels": {
            "job": "fic-reconcile",
            "cluster": CLUSTER,
            "cronjob": "rel-fic-reconcile",
            "severity": "warning",
            "team": "platform",
        },
        "exp_annotations": {
            "summary": f"fic-reconcile in cluster {CLUSTER} pushed no success for more than 3600s",
            "description": (
                f'Last success 2h 0m 0s ago. Its last run: cwj_last_run_exit_code{{job="fic-reconcile", '
                f'cluster="{CLUSTER}"}}; its logs: kubectl -n jobs logs -l app.kubernetes.io/component=fic-reconcile '
                "--tail=-1"
            ),
            "runbook_url": (
                "https://git.example.com/platform/coder-wi-jobs/blob/v0.1.0/docs/runbooks.md#coderwijobpushedsuccesstooold"
            ),
        },
    }
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": served_series(pushgateway, base),
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "CoderWiJobPushedSuccessTooOld", "exp_alerts": []},
                    {"eval_time": "2h", "alertname": "CoderWiJobPushedSuccessTooOld", "exp_alerts": [expected]},
                ],
            }
        ],
    }
    (tmp_path / "staleness.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    done = pt.run_promtool("test", "rules", "staleness.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
