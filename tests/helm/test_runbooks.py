"""docs/runbooks.md covers what an SRE can be paged or puzzled by (issue 22, point 1): every alert of the rendered
PrometheusRule links to a section that exists, every exit code and every finding rule the code can raise has a
section with Means / Check / Do, and a finding's section states the severity the code gives it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import FULL, kinds, template, template_error
from tests.helm.helm_binary import ROOT

RUNBOOKS = ROOT / "docs" / "runbooks.md"
BASE = "https://git.example.com/platform/coder-wi-jobs/blob/v0.1.0/docs/runbooks.md"  # ci/full-values.yaml
JOBS = {"fic-reconcile": "fic_reconcile", "keyvault-sync": "keyvault_sync", "coder-token-mint": "coder_token_mint",
        "token-expiry-check": "token_expiry_check"}  # fmt: skip
SEVERITY = r'"(info|warning|error|critical)"'


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def sections() -> dict[str, str]:
    """anchor -> the section's text up to the next heading of any level."""
    text = RUNBOOKS.read_text()
    parts = re.split(r"^#{2,4} (.+)$", text, flags=re.M)
    return {anchor(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}


# Finding("warning", "rule", ...), add("warning", "rule", ...) and a severity chosen by an expression
# (Finding("error" if compromised else "warning", "rule", ...)): every quoted severity in the first argument.
FINDING = re.compile(r'(?:\bFinding|\badd)\(\s*([^,()]*?),\s*"([a-z][a-z-]+)"', re.S)


def _rules_in(text: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for first, rule in FINDING.findall(text):
        severities = set(re.findall(SEVERITY, first))
        if severities:
            found.setdefault(rule, set()).update(severities)
    return found


def finding_rules() -> dict[tuple[str, str], set[str]]:
    """(job, rule) -> severities for every finding the code of each job can raise, read from its source and
    from the lib modules it imports (lib/budget.py's `deferred`)."""
    found: dict[tuple[str, str], set[str]] = {}
    lib_rules = {source.stem: _rules_in(source.read_text()) for source in (ROOT / "lib").glob("*.py")}
    for job, package in JOBS.items():
        for source in sorted((ROOT / "jobs" / package).rglob("*.py")):  # subpackages too (identity_binding/)
            text = source.read_text()
            for rule, severities in _rules_in(text).items():
                found.setdefault((job, rule), set()).update(severities)
            for module, rules in lib_rules.items():
                if re.search(rf"\bfrom lib(?:\.{module} import| import [\w, ]*\b{module}\b)", text):
                    for rule, severities in rules.items():
                        found.setdefault((job, rule), set()).update(severities)
            if 'f"{error.call}-unreadable"' in text:  # read errors name the call that failed, in any of its modules
                package_text = "".join(f.read_text() for f in sorted(source.parent.glob("*.py")))
                for call in re.findall(r'read_error\("(\w+)"', package_text):
                    found[(job, f"{call}-unreadable")] = {"error"}
    return found


def test_the_source_scan_finds_the_findings_of_every_job() -> None:
    rules = finding_rules()
    assert {job for job, _ in rules} == set(JOBS)
    assert rules[("fic-reconcile", "unplaceable")] == {"error"} and rules[("keyvault-sync", "orphan")] == {"info"}
    assert rules[("token-expiry-check", "token-expiring")] == {"warning"}  # raised through add()
    assert rules[("token-expiry-check", "user-unreadable")] == rules[("token-expiry-check", "tokens-unreadable")]
    assert rules[("fic-reconcile", "not-usable")] == {"warning"} and rules[("fic-reconcile", "foreign-issuer")] == {
        "error"
    }
    assert rules[("coder-token-mint", "lifetime-capped")] == {"warning"}  # raised in guards.py, not plan.py
    assert rules[("coder-token-mint", "wrong-user")] == {"warning", "error"}  # error under --compromised
    assert rules[("keyvault-sync", "deferred")] == rules[("fic-reconcile", "deferred")] == {"warning"}  # lib/budget
    assert ("coder-token-mint", "deferred") not in rules  # it has no run budget
    assert len(rules) >= 50  # 16 fic-reconcile, 9 keyvault-sync, 9 coder-token-mint, 18 token-expiry-check


def means(section: str) -> str:
    """The parenthesis after **Means**: the severity (or severities) the section states."""
    match = re.search(r"\*\*Means\*\* \(([^)]*)\)", section)
    return match.group(1) if match else ""


@pytest.mark.parametrize(("job", "rule"), sorted(finding_rules()))
def test_every_finding_rule_has_a_runbook_section_with_its_severity(job: str, rule: str) -> None:
    section = sections().get(anchor(f"{job}: {rule}"))
    assert section is not None, f"docs/runbooks.md has no section '### {job}: {rule}'"
    stated = means(section)
    assert all(severity in stated for severity in finding_rules()[(job, rule)]), (stated, finding_rules()[(job, rule)])
    assert "**Check**" in section and "**Do**" in section


def test_every_finding_section_is_a_rule_the_code_raises() -> None:
    """No stale section: a rule renamed or removed in the code takes its runbook section with it."""
    text = RUNBOOKS.read_text().split("\n## Findings", 1)[1]
    documented = set(re.findall(r"^### ([a-z-]+): ([a-z-]+)$", text, re.M))
    assert documented - set(finding_rules()) == set()


@pytest.mark.parametrize("code", ["0", "1", "2", "3"])
def test_every_exit_code_has_a_runbook_section(code: str) -> None:
    section = sections()[f"exit-{code}"]
    assert all(part in section for part in ("**Means**", "**Check**", "**Do**"))


def test_every_alert_links_to_a_runbook_section_that_exists(full: list[dict[str, Any]]) -> None:
    (rule,) = kinds(full, "PrometheusRule")
    alerts = rule["spec"]["groups"][0]["rules"]
    assert {a["alert"] for a in alerts} == {
        "CoderWiJobFailed", "CoderWiJobLastSuccessTooOld", "CoderWiJobPushedSuccessTooOld", "CoderWiJobFinding",
        "CoderWiJobDryRunLeftOn", "CoderWiFicForeignIssuer", "CoderTokenExpiring",
    }  # fmt: skip
    known = sections()
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        assert url.startswith(f"{BASE}#"), url
        target = url.split("#", 1)[1]
        if alert["alert"] == "CoderWiJobFinding":  # one section per job and rule, filled in by Prometheus
            assert target == "{{ $labels.job }}-{{ $labels.rule }}"
            missing = [f"{j}-{r}" for j, r in finding_rules() if f"{j}-{r}" not in known]
            assert missing == []
        else:
            assert target == anchor(alert["alert"]) and target in known, target
            assert all(part in known[target] for part in ("**Means**", "**Check**", "**Do**"))


def test_alerts_without_a_runbook_url_are_refused(home: Path) -> None:
    error = template_error(home, "-f", str(FULL), "--set", "prometheusRule.runbookBaseUrl=")
    assert "prometheusRule.runbookBaseUrl is required with prometheusRule.enabled" in error


def test_the_chart_runs_the_expiry_check_so_that_findings_do_not_fail_the_job(home: Path) -> None:
    """The contract: a failed Job means the tool is broken; a bad token is a finding, alerted on from metrics.
    failOn stays settable for setups without metrics."""

    def fail_on(*extra: str) -> str:
        docs = template(home, "-f", str(FULL), *extra)
        (cj,) = [c for c in kinds(docs, "CronJob") if c["metadata"]["name"].endswith("token-expiry-check")]
        (container,) = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        return str({e["name"]: e.get("value") for e in container["env"]}["CWJ_FAIL_ON"])

    assert fail_on() == "never"
    assert fail_on("--set", "jobs.tokenExpiryCheck.settings.failOn=critical") == "critical"
