"""lib core: settings, redaction, logging and the run harness's contract."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lib import harness, logs
from lib.cli import build_parser
from lib.model import Finding, Outcome, Plan, Report
from lib.redact import MASK, Redactor, is_secret_key, register_secret
from lib.settings import (
    ConfigError,
    RunOptions,
    int_at_least,
    parse_duration,
    parse_https_url,
    parse_json_string_list,
    resolve,
    setting,
    switch,
)

# ---- settings ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSettings:
    issuer: str = setting("--issuer", "OIDC issuer", env="CWJ_OIDC_ISSUER", parse=parse_https_url)
    pool: tuple[str, ...] = setting(
        "--client-ids-json", "pool", env="AZURE_CLIENT_IDS_JSON", parse=parse_json_string_list
    )
    concurrency: int = setting("--concurrency", "parallel identities", parse=int_at_least(1), default=4)
    lifetime: timedelta = setting("--lifetime", "token lifetime", parse=parse_duration, default=timedelta(days=30))
    scope: tuple[str, ...] = setting("--scope", "scopes", parse=str, default=(), repeatable=True)
    adopt: bool = switch("--adopt", "overwrite unmanaged")

    def check(self) -> None:
        if self.concurrency > 64:
            raise ConfigError("--concurrency (CWJ_CONCURRENCY)", "expected at most 64")


GOOD_ENV = {"CWJ_OIDC_ISSUER": "https://issuer.example/x/", "AZURE_CLIENT_IDS_JSON": '["a","b"]'}


def load(argv: list[str], environ: dict[str, str]) -> DemoSettings:
    parser = build_parser("demo", "demo", [RunOptions, DemoSettings])
    return resolve(DemoSettings, parser.parse_args(argv), environ)


def test_settings_precedence_flag_over_env_over_default() -> None:
    s = load(["--concurrency", "8"], {**GOOD_ENV, "CWJ_CONCURRENCY": "2"})
    assert s.concurrency == 8
    assert load([], {**GOOD_ENV, "CWJ_CONCURRENCY": "2"}).concurrency == 2
    assert load([], GOOD_ENV).concurrency == 4
    assert load([], GOOD_ENV).pool == ("a", "b")


def test_switch_from_flag_and_env() -> None:
    assert load(["--adopt"], GOOD_ENV).adopt is True
    assert load([], {**GOOD_ENV, "CWJ_ADOPT": "true"}).adopt is True
    with pytest.raises(ConfigError, match=r"--adopt \(CWJ_ADOPT\): expected true or false"):
        load([], {**GOOD_ENV, "CWJ_ADOPT": "maybe"})


def test_repeatable_from_flags_and_comma_separated_env() -> None:
    assert load(["--scope", "a:b", "--scope", "c:d"], GOOD_ENV).scope == ("a:b", "c:d")
    assert load([], {**GOOD_ENV, "CWJ_SCOPE": "a:b, c:d"}).scope == ("a:b", "c:d")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AZURE_CLIENT_IDS_JSON": '["a"]'}, r"--issuer \(CWJ_OIDC_ISSUER\): is required"),
        ({**GOOD_ENV, "CWJ_OIDC_ISSUER": "http://x/"}, r"--issuer \(CWJ_OIDC_ISSUER\): expected an https:// URL"),
        ({**GOOD_ENV, "AZURE_CLIENT_IDS_JSON": "not json"}, r"AZURE_CLIENT_IDS_JSON\): expected a JSON array"),
        ({**GOOD_ENV, "AZURE_CLIENT_IDS_JSON": "[]"}, "expected a non-empty JSON array"),
        ({**GOOD_ENV, "AZURE_CLIENT_IDS_JSON": '["a","A"]'}, "expected unique entries"),
        ({**GOOD_ENV, "CWJ_CONCURRENCY": "0"}, r"--concurrency \(CWJ_CONCURRENCY\): expected a whole number >= 1"),
        ({**GOOD_ENV, "CWJ_CONCURRENCY": "65"}, "expected at most 64"),
        ({**GOOD_ENV, "CWJ_LIFETIME": "30 days"}, r"--lifetime \(CWJ_LIFETIME\): expected a duration"),
    ],
)
def test_config_errors_name_the_setting_and_what_was_expected(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load([], env)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("720h", 720 * 3600), ("1h30m", 5400), ("2160h0m0s", 2160 * 3600), ("1w", 604800)],
)
def test_durations_go_style_and_days(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


# ---- redaction -----------------------------------------------------------------------------------------


def test_redactor_masks_registered_values_longest_first() -> None:
    r = Redactor()
    r.register("s3cr3t-value")
    r.register("s3cr3t")
    assert r.scrub("a s3cr3t-value and s3cr3t") == f"a {MASK} and {MASK}"
    r.register("abc")  # too short to register without masking ordinary words
    assert r.scrub("abc") == "abc"


def test_redactor_masks_token_shapes_without_registration() -> None:
    r = Redactor()
    text = (
        "key AbCdEf1234-0123456789abcdefABCDEF vault hvs.CAESIJ0123456789abcdefghij openbao s.kfnkQ0123456789abcdefghi "
        "jwt eyJhbGciOi.eyJzdWIiOi.sig_"
    )
    scrubbed = r.scrub(text)
    assert "AbCdEf1234-0123456789abcdefABCDEF" not in scrubbed
    assert "hvs.CAESIJ" not in scrubbed and "s.kfnkQ" not in scrubbed
    assert r.scrub("see s.example for details, i.e. as usual") == "see s.example for details, i.e. as usual"
    assert "eyJhbGciOi" not in scrubbed


def test_redactor_masks_secret_looking_keys_in_structures() -> None:
    r = Redactor()
    out = r.scrub_obj({"token": "x", "token_id": "AbCdEf1234", "nested": [{"client_secret": "y", "name": "n"}]})
    assert out == {"token": MASK, "token_id": "AbCdEf1234", "nested": [{"client_secret": MASK, "name": "n"}]}
    assert is_secret_key("bootstrap_token") and not is_secret_key("token_name")


def test_logs_are_json_lines_with_job_and_run_id_and_redacted() -> None:
    register_secret("the-very-secret-value-1")
    stream = io.StringIO()
    logs.configure("demo-job", "run123", "json", "info", stream=stream)
    log = logs.get_logger()
    log.info("something", detail="contains the-very-secret-value-1 here", password="hunter22")
    try:
        raise RuntimeError("boom the-very-secret-value-1")
    except RuntimeError:
        log.exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert all(line["job"] == "demo-job" and line["run_id"] == "run123" for line in lines)
    assert "the-very-secret-value-1" not in stream.getvalue()
    assert "hunter22" not in stream.getvalue()
    assert lines[0]["detail"] == f"contains {MASK} here"
    assert "RuntimeError: boom [REDACTED]" in lines[1]["exception"]


def test_stdlib_logging_from_sdks_goes_through_the_same_redaction() -> None:
    import logging

    register_secret("sdk-leaked-secret-xyz")
    stream = io.StringIO()
    logs.configure("demo-job", "run9", "json", "info", stream=stream)
    logging.getLogger("azure.core").warning("header was sdk-leaked-secret-xyz")
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["job"] == "demo-job" and MASK in line["event"] and "sdk-leaked" not in stream.getvalue()


# ---- harness -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Touch:
    name: str
    fail: bool = False
    kind: str = "touch"

    def describe(self) -> dict[str, str]:
        return {"action": self.kind, "name": self.name}


@dataclass(frozen=True)
class ToySettings:
    names: tuple[str, ...] = setting("--name", "names to touch", parse=str, default=(), repeatable=True)
    fail: tuple[str, ...] = setting("--fail", "names whose touch fails", parse=str, default=(), repeatable=True)
    guard: bool = switch("--guard", "refuse the plan")
    finding: str = setting("--finding", "severity of a finding to add", default="")


class World:
    """What the toy job writes to: lets the test see that dry-run and refusals write nothing."""

    writes: list[str] = []


def _toy_plan(state: tuple[str, ...], s: ToySettings, now: datetime) -> Plan:
    findings = (Finding(s.finding, "toy", "x", "a finding"),) if s.finding else ()  # type: ignore[arg-type]
    return Plan(
        actions=tuple(Touch(n, n in s.fail) for n in state),
        findings=findings,
        refusal="too many" if s.guard else None,
        sections={"now": now.isoformat()},
    )


def _toy_apply(plan: Plan, clients: Any, s: ToySettings) -> Report:
    outcomes = []
    for action in plan.actions:
        assert isinstance(action, Touch)
        if action.fail:
            outcomes.append(Outcome(action, "failed", "it broke"))
        else:
            World.writes.append(action.name)
            outcomes.append(Outcome(action, "ok"))
    return Report(plan, tuple(outcomes))


TOY = harness.JobSpec(
    name="toy",
    description="toy job",
    settings=ToySettings,
    connect=lambda s: None,
    observe=lambda c, s: s.names,
    plan=_toy_plan,
    apply=_toy_apply,
)


def run_toy(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[dict[str, Any]]]:
    World.writes = []
    code = harness.run(TOY, [*argv, "--log-format", "json"], {})
    out, err = capsys.readouterr()
    return code, out, [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_harness_converged_exit_0_and_summary_is_the_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, lines = run_toy(["--name", "a", "--name", "b"], capsys)
    assert code == 0 and World.writes == ["a", "b"]
    assert "toy report" in out
    assert lines[-1]["event"] == "run.summary"
    assert lines[-1]["results"] == {"touch.ok": 2} and lines[-1]["exit_code"] == 0


def test_harness_failed_action_exit_1_and_others_still_applied(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, lines = run_toy(["--name", "a", "--name", "b", "--fail", "a", "--output", "json"], capsys)
    report = json.loads(out)
    assert code == 1 and World.writes == ["b"]
    assert [o["result"] for o in report["outcomes"]] == ["failed", "ok"]
    assert lines[-1]["results"] == {"touch.failed": 1, "touch.ok": 1}


def test_harness_dry_run_prints_plan_and_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_toy(["--name", "a", "--dry-run", "--output", "json"], capsys)
    assert code == 0 and World.writes == []
    # an action without document(): its describe() columns, under the keys every job's actions have
    assert json.loads(out)["actions"] == [{"kind": "touch", "target": "", "reason": "", "changes": [], "name": "a"}]


def test_harness_refusal_exit_3_and_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_toy(["--name", "a", "--guard"], capsys)
    assert code == 3 and World.writes == []
    assert "REFUSED: too many" in out


def test_harness_error_finding_exit_1_warning_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_toy(["--finding", "error"], capsys)[0] == 1
    assert run_toy(["--finding", "warning"], capsys)[0] == 0


def test_harness_config_error_exit_2_one_line_then_run_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code = harness.run(TOY, ["--output", "yaml"], {})
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    line, summary = err.strip().splitlines()
    assert line == "toy: configuration error: --output (CWJ_OUTPUT): expected one of text, json, log, got 'yaml'"
    assert json.loads(summary)["event"] == "run.summary" and json.loads(summary)["exit_code"] == 2


def test_harness_now_option_is_what_plan_sees(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_toy(["--now", "2026-01-02T03:04:05Z", "--dry-run", "--output", "json"], capsys)
    assert code == 0
    assert json.loads(out)["now"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat()


def test_error_findings_fail_the_run_under_every_threshold() -> None:
    plan = Plan(findings=(Finding("error", "observe-failed", "x", "could not read"),))
    assert harness.exit_code_for(Report(plan), "never") == 1
    assert harness.exit_code_for(Report(plan), "critical") == 1
    warned = Plan(findings=(Finding("warning", "expiring", "x", "soon"),))
    assert harness.exit_code_for(Report(warned), "critical") == 0
    assert harness.exit_code_for(Report(warned), "warning") == 1
    assert harness.exit_code_for(Report(warned), "never") == 0


@pytest.mark.parametrize("job", ["fic-reconcile", "keyvault-sync", "coder-token-mint", "token-expiry-check"])
def test_every_job_prints_help_naming_each_flag_and_env_var(job: str) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from tests.docgen import JOBS

    exe = Path(sys.executable).parent / job
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-500:]
    settings = __import__(JOBS[job], fromlist=["SPEC"]).SPEC.settings
    from lib.settings import specs

    for _, spec in specs(settings):
        assert spec.flag in proc.stdout and spec.env in proc.stdout


def test_retry_after_seconds_reads_every_form_azure_core_honours() -> None:
    from requests.structures import CaseInsensitiveDict

    from lib.retry import retry_after_seconds

    assert retry_after_seconds(CaseInsensitiveDict({"retry-after": "7"})) == 7.0
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=lambda: 1445412480.0) == 10.0
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=lambda: 1445412499.0) == 0.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"x-ms-retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"Retry-After": "2", "retry-after-ms": "9000"}) == 2.0  # Retry-After first
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None
