"""The chart's optional Grafana dashboard (dashboard.enabled; helm/coder-wi-jobs/dashboards/coder-wi-jobs.json in a
ConfigMap the kube-prometheus-stack Grafana sidecar loads), rendered by the real helm and checked against the code:
every PromQL expression of every panel parses in Prometheus' own promtool, and every metric it names is one a job
really pushes (taken from each job's publish path, with the push itself intercepted), except the few in
PLACEHOLDER_METRICS (metrics a change in flight adds; empty when none is).
"""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry

from lib.model import Plan, Report
from tests.helm import promtool as pt
from tests.helm.chart import CHART, FULL, VALUE_KEYS, kinds, template, template_error
from tests.helm.checkov import CheckovUnavailable, scan
from tests.helm.helm_binary import ROOT

DASHBOARD_FILE = CHART / "dashboards" / "coder-wi-jobs.json"
DATA_KEY = "coder-wi-jobs.json"
NAME = "rel-coder-wi-jobs-dashboard"
UID = "coder-wi-jobs"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Metrics the dashboard shows before any job pushes them: fic-reconcile's deferred work and time to credential,
# being added in the same issue (14) by another change. test_placeholders_have_not_landed_yet fails once a job
# pushes one of them: then delete it here, and the dashboard's use of it is checked like every other metric.
PLACEHOLDER_METRICS: frozenset[str] = frozenset()  # every metric the dashboard names is pushed now
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
# PromQL words that look like identifiers but are no metric names.
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "inf", "nan"}  # fmt: skip


# ---- what the jobs push ---------------------------------------------------------------------------------------


def series_names(registry: CollectorRegistry) -> set[str]:
    """The series names a registry's families expose, also for a family without samples (e.g. no identities)."""
    suffixes = {"counter": ["_total"], "summary": ["", "_sum", "_count"], "histogram": ["_bucket", "_sum", "_count"]}
    names: set[str] = set()
    for family in registry.collect():
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


def published_registries() -> dict[str, list[CollectorRegistry]]:
    """Each job's own publish (console script -> module -> SPEC.publish) on an empty report of a run that
    succeeded, with the push to the Pushgateway intercepted: the registries it would have PUT (its run group
    and its success group), per job."""
    pushed: dict[str, list[CollectorRegistry]] = {}

    def capture(url: str, job: str, registry: CollectorRegistry, timeout: float = 10.0, grouping: Any = None) -> None:
        pushed.setdefault(job, []).append(registry)

    settings = SimpleNamespace(pushgateway_url="http://pushgateway.invalid:9091")
    for job in VALUE_KEYS:
        module = importlib.import_module(SCRIPTS[job].partition(":")[0])
        with ExitStack() as patches:
            patches.enter_context(mock.patch("lib.clients.pushgateway.push", capture))
            if hasattr(module, "push"):  # a job that imported the function itself (from ... import push)
                patches.enter_context(mock.patch.object(module, "push", capture))
            module.SPEC.publish(Report(plan=Plan()), settings, 0)
    return pushed


def pushed_metric_names() -> set[str]:
    return {
        name for pushes in published_registries().values() for registry in pushes for name in series_names(registry)
    }


def metrics_in_code() -> set[str]:
    """`Gauge("cwj_...")` (and Counter/Summary/Histogram) anywhere in jobs/ and lib/: a cross-check that the
    publish paths above reach every metric the code defines."""
    pattern = re.compile(r"\b(?:Gauge|Counter|Summary|Histogram)\(\s*\"(cwj_\w+)\"")
    files = [f for folder in ("jobs", "lib") for f in (ROOT / folder).rglob("*.py")]
    return {name for f in files for name in pattern.findall(f.read_text())}


# ---- the dashboard ---------------------------------------------------------------------------------------------


def dashboard_of(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (cm,) = [d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].endswith("-coder-wi-jobs-dashboard")]
    assert list(cm["data"]) == [DATA_KEY]
    board: dict[str, Any] = json.loads(cm["data"][DATA_KEY])
    return cm, board


@pytest.fixture(scope="module")
def board(full: list[dict[str, Any]]) -> dict[str, Any]:
    return dashboard_of(full)[1]


def data_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(a recording-rule name for the target, its PromQL) for every target of every panel."""
    for panel in data_panels(board):
        for target in panel["targets"]:
            yield f"cwj_dashboard:panel{panel['id']}_{target['refId']}", target["expr"]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers left once strings, label matchers, ranges,
    grouping clauses and function calls are taken out."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    names = set(re.findall(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()", bare))
    return names - PROMQL_WORDS


def write_rules(board: dict[str, Any], directory: Path) -> tuple[Path, int]:
    rules = [{"record": name, "expr": expr} for name, expr in expressions(board)]
    path = directory / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
    return path, len(rules)


@pytest.fixture(scope="module")
def promtool() -> Path:
    try:
        return pt.promtool_bin()
    except pt.PromtoolUnavailable as exc:  # never a skip, as for the alert tests
        pytest.fail(f"promtool is needed for the dashboard tests and could not be obtained: {exc}")


# ---- rendering -------------------------------------------------------------------------------------------------


def test_off_by_default_and_the_default_render_is_unchanged(home: Path) -> None:
    assert yaml.safe_load((CHART / "values.yaml").read_text())["dashboard"]["enabled"] is False
    assert template(home) == []
    docs = template(home, "-f", str(FULL), "--set", "dashboard.enabled=false")
    assert [d for d in docs if "dashboard" in d["metadata"]["name"]] == []


def test_one_configmap_the_grafana_sidecar_loads_holding_the_file(full: list[dict[str, Any]]) -> None:
    cm, board = dashboard_of(full)
    assert [d["metadata"]["name"] for d in kinds(full, "ConfigMap") if "dashboard" in d["metadata"]["name"]] == [NAME]
    labels = cm["metadata"]["labels"]
    assert labels["grafana_dashboard"] == "1"  # kube-prometheus-stack: grafana.sidecar.dashboards.label/labelValue
    assert labels["app.kubernetes.io/component"] == "dashboard" and labels["team"] == "platform"  # commonLabels
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Platform"}
    assert cm["metadata"]["namespace"] == "jobs"
    assert board == json.loads(DASHBOARD_FILE.read_text())  # the file, unchanged by templating


def test_label_folder_and_extra_labels_are_configurable(home: Path) -> None:
    docs = template(
        home,
        "--set",
        "dashboard.enabled=true,dashboard.label=grafana.example.com/dashboard,dashboard.labelValue=yes",
        "--set",
        "dashboard.folder=Coder on AKS,dashboard.folderAnnotation=k8s-sidecar-target-directory",
        "--set",
        "dashboard.labels.release=kube-prometheus-stack",
    )
    (cm,) = docs  # a monitoring-only release: every job off, the dashboard on
    labels = cm["metadata"]["labels"]
    assert labels["grafana.example.com/dashboard"] == "yes" and "grafana_dashboard" not in labels
    assert labels["release"] == "kube-prometheus-stack"
    assert cm["metadata"]["annotations"] == {"k8s-sidecar-target-directory": "Coder on AKS"}
    plain = template(home, "--set", "dashboard.enabled=true")[0]
    assert "annotations" not in plain["metadata"]  # no folder: the sidecar's default folder


BAD_DASHBOARD_VALUES = {
    "unknown-key": (["--set", "dashboard.enabeld=true"], "/dashboard"),
    "label-with-space": (["--set", "dashboard.label=grafana dashboard"], "/dashboard/label"),
    "label-value-not-a-string": (["--set-json", "dashboard.labelValue=1"], "/dashboard/labelValue"),
    "label-value-invalid": (["--set", "dashboard.labelValue=-1-"], "/dashboard/labelValue"),
    "folder-annotation-invalid": (["--set", "dashboard.folderAnnotation=a/b/c"], "/dashboard/folderAnnotation"),
    "enabled-not-a-bool": (["--set-string", "dashboard.enabled=yes"], "/dashboard/enabled"),
}


@pytest.mark.parametrize("case", sorted(BAD_DASHBOARD_VALUES))
def test_schema_rejects_bad_dashboard_values(home: Path, case: str) -> None:
    args, where = BAD_DASHBOARD_VALUES[case]
    error = template_error(home, "-f", str(FULL), *args)
    assert "values don't meet the specifications of the schema" in error
    assert f"at '{where}'" in error, error


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_configmap_is_valid_kubernetes(full: list[dict[str, Any]], version: str) -> None:
    cm, _ = dashboard_of(full)
    kubernetes_validate.validate(cm, version, strict=True)
    size = len(json.dumps(cm).encode())
    assert size < 256 * 1024, f"{size} bytes: keep well under the 1 MiB ConfigMap limit and kubectl's annotation limit"


def test_checkov_passes_the_dashboard_alone(home: Path, tmp_path: Path) -> None:
    """The full render (dashboard included) is scanned in test_real_tools; this is the monitoring-only release."""
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(template(home, "--set", "dashboard.enabled=true")))
    try:
        report = scan(path, "kubernetes")
    except CheckovUnavailable as exc:
        pytest.fail(f"checkov could not be installed: {exc}")
    assert report["results"]["failed_checks"] == [] and report["results"]["skipped_checks"] == []
    assert {c["resource"] for c in report["results"]["passed_checks"]} == {f"ConfigMap.jobs.{NAME}"}


# ---- the dashboard JSON ----------------------------------------------------------------------------------------


def test_grafana_dashboard_basics(board: dict[str, Any]) -> None:
    assert board["title"] == "coder-wi-jobs" and board["uid"] == UID  # stable: links and bookmarks survive upgrades
    assert "id" not in board  # Grafana assigns it; a fixed id clashes across instances
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in data_panels(board):
        assert panel["title"] and panel["description"], panel["id"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"].strip(), panel["title"]


def test_templating_has_the_datasource_and_job_variables(board: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert set(variables) == {"datasource", "job"}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    job = variables["job"]
    assert job["type"] == "query" and job["datasource"] == DATASOURCE
    assert job["query"]["query"] == job["definition"] == "label_values(cwj_last_run_timestamp_seconds, job)"
    assert job["includeAll"] and job["multi"] and job["allValue"] == ".*"
    used = {v for _, expr in expressions(board) for v in re.findall(r"\$\{?(\w+)", expr)}
    assert used <= set(variables), used - set(variables)


def test_panels_do_not_overlap(board: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_expression_passes_promtool(promtool: Path, board: dict[str, Any], tmp_path: Path) -> None:
    rules, count = write_rules(board, tmp_path)
    done = pt.run_promtool("check", "rules", "--lint=all", "--lint-fatal", str(rules), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {count} rules found" in done.stdout
    assert count >= 20  # every target of every panel


def test_promtool_catches_a_broken_expression(promtool: Path, board: dict[str, Any], tmp_path: Path) -> None:
    """The check is not vacuous: one unbalanced parenthesis in one panel fails it."""
    broken = json.loads(json.dumps(board))
    target = data_panels(broken)[3]["targets"][0]
    target["expr"] = target["expr"] + ")"
    rules, _ = write_rules(broken, tmp_path)
    done = pt.run_promtool("check", "rules", str(rules), cwd=tmp_path)
    assert done.returncode != 0 and "parse error" in done.stdout + done.stderr


def test_publish_paths_reach_every_metric_in_the_code() -> None:
    registries = published_registries()
    assert set(registries) == set(VALUE_KEYS)  # every job pushes, under its own name
    assert pushed_metric_names() == metrics_in_code()
    assert "cwj_fic_identity_fics" in metrics_in_code()  # the scan finds the jobs' own gauges, not only lib's


def test_every_metric_the_dashboard_names_is_pushed_by_a_job(board: dict[str, Any]) -> None:
    known = pushed_metric_names() | PLACEHOLDER_METRICS
    named = {name for _, expr in expressions(board) for name in metric_names(expr)}
    templating = " ".join(json.dumps(v.get("query", "")) for v in board["templating"]["list"])
    named |= set(re.findall(r"\bcwj_\w+", templating))
    assert named - known == set()
    # The item-7 picture: FIC slots and pool headroom, shard disagreements, the placeholders, Key Vault sync,
    # token days left, last run and last success per job.
    expected = {
        "cwj_fic_identity_fics", "cwj_fic_identity_limit", "cwj_fic_pool_namespaces", "cwj_fic_pool_safe_namespaces",
        "cwj_fic_shard_disagreements", "cwj_keyvault_sync_entries", "cwj_token_expiry_timestamp_seconds",
        "cwj_last_run_timestamp_seconds", "cwj_last_success_timestamp_seconds", "cwj_actions", "cwj_findings",
        "cwj_last_run_exit_code",
    } | PLACEHOLDER_METRICS  # fmt: skip
    assert expected - named == set()


def test_metric_name_extraction_sees_every_selector() -> None:
    expr = 'max by (identity) (cwj_a{x="b c"}) - on (identity) sum(rate(cwj_b[5m])) or vector(0) > bool kube_x'
    assert metric_names(expr) == {"cwj_a", "cwj_b", "kube_x"}


def test_time_to_credential_uses_the_agreed_quantiles(board: dict[str, Any]) -> None:
    (expr,) = [e for _, e in expressions(board) if "cwj_fic_time_to_credential_seconds" in e]
    assert 'quantile=~"0.5|0.99"' in expr
    assert any("cwj_fic_deferred_actions" in e and "kind" in e for _, e in expressions(board))


def test_time_to_usable_sits_beside_time_to_credential_with_the_same_quantiles(board: dict[str, Any]) -> None:
    (panel,) = [p for p in data_panels(board) if "cwj_fic_time_to_usable_seconds" in json.dumps(p)]
    exprs = [target["expr"] for target in panel["targets"]]
    assert any("cwj_fic_time_to_credential_seconds" in e for e in exprs)
    assert 'max by (quantile) (cwj_fic_time_to_usable_seconds{quantile=~"0.5|0.99"})' in exprs
    assert "max(cwj_fic_time_to_usable_max_seconds)" in exprs
