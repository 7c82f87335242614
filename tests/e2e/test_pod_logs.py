"""What `kubectl logs` shows for a run (issue 22, point 5): stdout and stderr merged into one stream, as the
container runtime records them. The run opens with a run.start line (version, effective settings, never a
secret), every log line is one JSON object, run.summary is the last of them and carries the error text of a
failed run, and the readable report comes after it in one piece, never between log lines. Configuration
errors end with run.summary too."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest
from kubernetes import client as k8s

from lib.clients.kube import core_api
from lib.version import version
from tests.conftest import BIN, LEAKS, Control
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e


def run_merged(name: str, *args: str, env: dict[str, str]) -> tuple[int, list[str]]:
    """The job with stdout and stderr in one pipe, in the order they were written (what kubectl logs shows)."""
    proc = subprocess.run(
        [str(BIN / name), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=180, check=False,
    )  # fmt: skip
    assert LEAKS.count(proc.stdout) == 0, f"{name} printed a secret value the emulators issued"
    return proc.returncode, proc.stdout.splitlines()


def split_stream(lines: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """(the JSON log records up to and including run.summary, every line after it); fails if a line before
    the summary is not one JSON object, i.e. if the report was interleaved with the logs."""
    records: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"line {index} before run.summary is not a JSON log record: {line!r}")
        assert isinstance(record, dict), line
        records.append(record)
        if record.get("event") == "run.summary":
            return records, lines[index + 1 :]
    pytest.fail("no run.summary line")


def seed(count: int) -> None:
    api = core_api(os.environ)
    for i in range(count):
        api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=f"ameide-ws-{i:03d}")))


def test_a_run_opens_with_its_version_and_settings_and_the_report_follows_the_last_log_line(
    platform: Platform, env: dict[str, str]
) -> None:
    seed(4)
    code, lines = run_merged("fic-reconcile", "--log-format", "json", env=env)
    assert code == 0
    records, after = split_stream(lines)
    start = records[0]
    assert start["event"] == "run.start" and start["version"] == version() and start["dry_run"] is False
    assert start["settings"]["issuer"] == env["CWJ_OIDC_ISSUER"]
    assert start["settings"]["client-ids-json"] == json.loads(env["AZURE_CLIENT_IDS_JSON"])
    assert start["settings"]["relocation-grace"] == "1h" and start["options"]["output"] == "text"
    assert {r["run_id"] for r in records} == {start["run_id"]}
    assert [r["event"] for r in records].count("action.done") == 4
    assert after[0].startswith("fic-reconcile report:") and len(after) > 4  # the whole table, after the logs
    assert not any(line.startswith("{") for line in after)


def test_output_log_puts_the_report_in_one_record_before_the_summary(platform: Platform, env: dict[str, str]) -> None:
    seed(2)
    code, lines = run_merged("fic-reconcile", "--log-format", "json", "--output", "log", env=env)
    assert code == 0
    records, after = split_stream(lines)
    assert after == []  # every line is a JSON record
    (report,) = [r for r in records if r["event"] == "run.report"]
    assert records.index(report) == len(records) - 2
    assert report["document"]["kind"] == "report" and len(report["document"]["outcomes"]) == 2


def test_a_failed_run_names_its_errors_in_run_summary(
    platform: Platform, env: dict[str, str], control: Control
) -> None:
    seed(6)
    broken = platform.baseline.pool_identity_name(1)
    control.fault("arm", "fic.put", status=500, count=None, match=f"/{broken}/")
    code, lines = run_merged("fic-reconcile", "--log-format", "json", env=env)
    assert code == 1
    summary = split_stream(lines)[0][-1]
    assert summary["exit_code"] == 1 and summary["failures"]
    assert all(broken in line and "500" in line for line in summary["failures"])
    assert summary["error"] == summary["failures"][0]


def test_a_configuration_error_ends_with_run_summary_naming_every_bad_setting(env: dict[str, str]) -> None:
    bad = {**env, "CWJ_OIDC_ISSUER": "http://issuer.example/", "CWJ_CONCURRENCY": "0"}
    bad.pop("AZURE_SUBSCRIPTION_ID")
    code, lines = run_merged("fic-reconcile", "--log-format", "json", env=bad)
    assert code == 2
    *errors, last = lines
    assert [line.split(": configuration error: ")[1].split(":")[0] for line in errors] == [
        "--issuer (CWJ_OIDC_ISSUER)",
        "--subscription-id (AZURE_SUBSCRIPTION_ID)",
        "--concurrency (CWJ_CONCURRENCY)",
    ]
    summary = json.loads(last)
    assert summary["event"] == "run.summary" and summary["exit_code"] == 2
    assert summary["config_errors"] == [line.split(": configuration error: ", 1)[1] for line in errors]
    assert summary["error"].startswith("configuration error: --issuer (CWJ_OIDC_ISSUER)")


def test_the_start_line_never_shows_a_secret_setting(platform: Platform, env: dict[str, str]) -> None:
    """A Slack webhook URL is a credential (its path is the secret); a Pushgateway URL may carry a password."""
    hook = "https://hooks.slack.example/services/T0000/B0000/s3cr3tWebhookPath"
    owner = {
        **env,
        "CWJ_CODER_TOKEN_FILE": env["CWJ_BOOTSTRAP_TOKEN_FILE"],
        "CWJ_ALL_USERS": "true",
        "CWJ_WEBHOOK_URL": hook,
        "CWJ_PUSHGATEWAY_URL": "https://metrics:hunter2pass@pushgateway.example:9091",
    }
    code, lines = run_merged("token-expiry-check", "--dry-run", "--log-format", "json", env=owner)
    text = "\n".join(lines)
    assert "s3cr3tWebhookPath" not in text and "hunter2pass" not in text
    start = json.loads(lines[0])
    assert start["settings"]["webhook-url"] == "(set)"
    assert start["settings"]["pushgateway-url"] == "https://pushgateway.example:9091"
    assert code in (0, 1) and split_stream(lines)[0][-1]["exit_code"] == code


def test_coder_token_mint_start_line_shows_its_webhook_as_set_only(platform: Platform, env: dict[str, str]) -> None:
    """coder-token-mint's --webhook-url (the --compromised report) is as much a credential as the expiry check's."""
    hook = "https://hooks.slack.example/services/T0000/B0000/m1ntW3bhookPath"
    code, lines = run_merged(
        "coder-token-mint", "--dry-run", "--log-format", "json", env={**env, "CWJ_WEBHOOK_URL": hook}
    )
    assert "m1ntW3bhookPath" not in "\n".join(lines)
    start = json.loads(lines[0])
    assert start["event"] == "run.start" and start["settings"]["webhook-url"] == "(set)"
    assert start["settings"]["vault-addr"] == env["VAULT_ADDR"] and "allow-insecure-http" in start["options"]
    assert split_stream(lines)[0][-1]["exit_code"] == code
