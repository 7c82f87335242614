"""The chart's PrometheusRule checked and evaluated by Prometheus' own promtool (tests/helm/promtool.py).

`spec` of the rendered PrometheusRule is a rule file (`groups:`); `promtool check rules` parses every PromQL
expression and template, and `promtool test rules` runs tests/helm/promtool_alerts.yaml against it: series
shaped as kube-state-metrics and token-expiry-check export them, and the exact alerts (labels and rendered
annotations) each rule must raise, or not, at given times.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm import promtool as pt
from tests.helm.chart import FULL, kinds, template, template_error

UNIT_TESTS = Path(__file__).with_name("promtool_alerts.yaml")


@pytest.fixture(scope="module")
def promtool() -> Path:
    try:
        return pt.promtool_bin()
    except pt.PromtoolUnavailable as exc:  # never a skip: rules nobody evaluated are rules nobody tested
        pytest.fail(f"promtool is needed for the alert tests and could not be obtained: {exc}")


def write_rules(docs: list[dict[str, Any]], directory: Path) -> Path:
    (rule,) = kinds(docs, "PrometheusRule")
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return path


def run_unit_tests(docs: list[dict[str, Any]], directory: Path) -> tuple[int, str]:
    write_rules(docs, directory)
    shutil.copy(UNIT_TESTS, directory / UNIT_TESTS.name)
    done = pt.run_promtool("test", "rules", UNIT_TESTS.name, cwd=directory)
    return done.returncode, done.stdout + done.stderr


def test_promtool_is_the_pinned_debian_build(promtool: Path) -> None:
    assert pt.check_version(promtool).endswith(f"revision: {pt.DEB_VERSION})")
    assert promtool == pt.HOME / "promtool" and pt.MARKER.read_text().strip() == pt.DEB_VERSION


@pytest.mark.parametrize(
    "extra",
    [
        [],
        # One job, no Pushgateway (so no expiry alert), no extra alert labels, the failed-run alert off.
        [
            "--set",
            "jobs.keyvaultSync.enabled=false,jobs.coderTokenMint.enabled=false,jobs.tokenExpiryCheck.enabled=false",
            "--set",
            "pushgatewayUrl=,prometheusRule.jobFailed.enabled=false",
            "--set-json",
            "prometheusRule.alertLabels={}",
        ],
        # Prometheus without honor_labels (the pushed job label becomes exported_job), other severities.
        [
            "--set-string",
            'prometheusRule.tokenExpiring.selector=exported_job="token-expiry-check"',
            "--set",
            "prometheusRule.jobFailed.severity=page: now,prometheusRule.alertLabels.route=sre",
        ],
    ],
    ids=["every-job", "fic-reconcile-only", "other-selector-and-labels"],
)
def test_rendered_rules_pass_promtool_check_with_every_lint(
    promtool: Path, home: Path, tmp_path: Path, extra: list[str]
) -> None:
    docs = template(home, "-f", str(FULL), *extra)
    count = sum(len(g["rules"]) for g in kinds(docs, "PrometheusRule")[0]["spec"]["groups"])
    rules = write_rules(docs, tmp_path)
    done = pt.run_promtool("check", "rules", "--lint=all", "--lint-fatal", str(rules), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {count} rules found" in done.stdout
    # each job: last success too old (kube-state-metrics) and pushed success too old; one failed-run, one
    # findings, one dry-run, one foreign-issuer and one token-expiry rule
    assert count == (1 if "jobs.keyvaultSync.enabled=false" in " ".join(extra) else 13)


def test_alerts_fire_and_stay_quiet_as_documented(promtool: Path, full: list[dict[str, Any]], tmp_path: Path) -> None:
    code, output = run_unit_tests(full, tmp_path)
    assert code == 0, output
    assert "SUCCESS" in output


def test_unit_tests_notice_a_threshold_that_differs_from_the_defaults(
    promtool: Path, home: Path, tmp_path: Path
) -> None:
    """The unit tests are tight: fic-reconcile at 2h instead of 1h and expiry at 2 days instead of 7 fail them."""
    overrides = "prometheusRule.lastSuccessTooOld.maxAgeSeconds.ficReconcile=7200,prometheusRule.tokenExpiring.days=2"
    code, output = run_unit_tests(template(home, "-f", str(FULL), "--set", overrides), tmp_path)
    assert code == 1, output
    failed = {line.split(",")[0].split(": ")[1] for line in output.splitlines() if "alertname:" in line}
    assert failed == {"CoderWiJobLastSuccessTooOld", "CoderWiJobPushedSuccessTooOld", "CoderTokenExpiring"}


def test_missing_package_lists_tell_you_to_run_apt_get_update(tmp_path: Path) -> None:
    """A fresh container has no apt lists: the download must fail with the fix in its message, not a riddle."""
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    with pytest.raises(pt.PromtoolUnavailable) as caught:
        pt.download_deb(tmp_path, "-o", f"Dir::State::Lists={lists}")
    message = str(caught.value)
    assert "apt-get update" in message and f"prometheus={pt.DEB_VERSION}" in message
    assert not list(tmp_path.glob("*.deb"))


@pytest.mark.parametrize(("name", "why"), [("team.name", "additional properties"), ("severity", "false schema")])
def test_schema_refuses_alert_labels_prometheus_would_reject_or_that_clash(home: Path, name: str, why: str) -> None:
    """promtool: `invalid label name: team.name` (the rule group fails to load); severity and cronjob are the
    chart's own per-alert labels, and a second `severity:` key would make the rendered YAML ambiguous."""
    error = template_error(home, "-f", str(FULL), "--set-json", f'prometheusRule.alertLabels={{"{name}": "x"}}')
    assert "at '/prometheusRule/alertLabels" in error and why in error
