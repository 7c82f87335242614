"""--help an SRE can act on: grouped settings, choices and units, human defaults, required settings marked,
examples and exit codes; --version on every job; every missing or invalid setting reported in one run."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lib import harness
from lib.cli import build_parser, format_default, metavar
from lib.settings import GROUP_TITLES, REQUIRED, RunOptions, specs
from lib.version import version
from tests.docgen import JOBS


def spec_of(job: str) -> harness.JobSpec:  # type: ignore[type-arg]
    return importlib.import_module(JOBS[job]).SPEC


def help_text(job: str) -> str:
    spec = spec_of(job)
    parser = build_parser(job, spec.description, [RunOptions, spec.settings], version="9.9", examples=spec.examples)
    return parser.format_help()


def section(text: str, title: str) -> str:
    """The lines under a `title:` heading up to the next blank line."""
    match = re.search(rf"^{re.escape(title)}:\n(.*?)(?:\n\n|\Z)", text, re.S | re.M)
    assert match is not None, f"no {title!r} section in --help"
    return match.group(1)


@pytest.mark.parametrize("job", sorted(JOBS))
def test_every_setting_is_listed_under_its_group(job: str) -> None:
    text = help_text(job)
    for cls in (RunOptions, spec_of(job).settings):
        for _, spec in specs(cls):
            assert spec.group in ("", *GROUP_TITLES), f"{spec.flag}: unknown group {spec.group!r}"
            title = GROUP_TITLES.get(spec.group, f"{job} settings")
            assert re.search(rf"^  {re.escape(spec.flag)}\b", section(text, title), re.M), (spec.flag, title)
    assert "Azure" in text or job not in ("fic-reconcile", "keyvault-sync")


@pytest.mark.parametrize("job", sorted(JOBS))
def test_required_settings_are_marked_and_only_they(job: str) -> None:
    text = help_text(job)
    for cls in (RunOptions, spec_of(job).settings):
        for _, spec in specs(cls):
            # the flag at the start of its entry; its help follows on the same line or the next (argparse wraps)
            entry = re.search(rf"^  {re.escape(spec.flag)}(?: \S+)?\s+(REQUIRED\. )?", text, re.M)
            assert entry is not None, spec.flag
            assert bool(entry.group(1)) == (spec.default is REQUIRED), spec.flag


@pytest.mark.parametrize("job", sorted(JOBS))
def test_defaults_are_human_and_no_python_object_leaks(job: str) -> None:
    text = help_text(job)
    for leak in ("datetime.", "timedelta(", "PosixPath(", "Duration(", "None", "<function", "object at 0x"):
        assert leak not in text, leak
    flat = " ".join(text.split())
    for cls in (RunOptions, spec_of(job).settings):
        for _, spec in specs(cls):
            shown = format_default(spec)
            if shown is not None and not spec.switch:
                assert f"default {shown}" in flat.replace("- ", "-"), (spec.flag, shown)


def test_durations_and_numbers_print_as_they_are_typed() -> None:
    fic, kv, mint = (dict(specs(spec_of(j).settings)) for j in ("fic-reconcile", "keyvault-sync", "coder-token-mint"))
    assert format_default(kv["recover_timeout"]) == "1m"
    assert format_default(mint["lifetime"]) == "30d" and format_default(mint["revoke_grace"]) == "1d"
    assert format_default(fic["relocation_grace"]) == "1h" and format_default(fic["max_run_seconds"]) == "600"
    assert format_default(mint["vault_jwt_file"]) == "/var/run/secrets/kubernetes.io/serviceaccount/token"


@pytest.mark.parametrize("job", sorted(JOBS))
def test_choices_and_units_are_shown(job: str) -> None:
    text = help_text(job)
    assert "--output {text,json,log}" in text and "--log-level {debug,info,warning,error}" in text
    assert "--request-timeout DURATION" in text and "--now RFC3339" in text
    for cls in (RunOptions, spec_of(job).settings):
        for _, spec in specs(cls):
            choices = getattr(spec.parse, "choices", None)
            if choices:
                assert metavar(spec) == "{" + ",".join(choices) + "}"


def test_job_specific_units() -> None:
    fic = help_text("fic-reconcile")
    assert "--shard-hash {crc32,sha1}" in fic and "--max-run-seconds SECONDS" in fic
    assert "--relocation-grace DURATION" in fic and "--issuer URL" in fic
    assert "--fail-on {warning,critical,never}" in help_text("token-expiry-check")
    assert "--lifetime DURATION" in help_text("coder-token-mint")


def test_settings_added_since_have_their_group_and_unit() -> None:
    """The settings main gained after the grouping (ARM cloud, auth choice, transport, probe, pace, guards)."""
    fic, kv = help_text("fic-reconcile"), help_text("keyvault-sync")
    mint, expiry = help_text("coder-token-mint"), help_text("token-expiry-check")
    assert "--kube-context CONTEXT" in section(fic, "Kubernetes")
    for flag in ("--azure-auth {auto,workload-identity,azure-cli}", "--known-issuers URL", "--arm-audience URL"):
        assert flag in section(fic, "Azure"), flag
    assert "--arm-writes-per-second PER_SECOND" in fic and "--probe-seconds SECONDS" in fic
    assert "--allow-insecure-http" in section(fic, GROUP_TITLES["safety"])
    assert "--write-concurrency N" in kv and "--keyvault-creates-per-second PER_SECOND" in section(kv, "Azure")
    assert "--max-run-seconds SECONDS" in kv and "--pushgateway-url URL" in section(kv, GROUP_TITLES["output"])
    for flag in ("--privileged-roles ROLE", "--allow-privileged-user", "--compromised", "--force-rotate"):
        assert flag in section(mint, GROUP_TITLES["safety"]), flag
    assert "--env {dev,staging,prod}" in section(mint, "Coder") and "--webhook-url URL" in mint
    assert "--vault-auth {auto,token,kubernetes}" in section(mint, "Vault")
    assert "--vault-addr URL" in section(expiry, "Vault")  # optional(parse_service_url) still reads as a URL


@pytest.mark.parametrize("job", sorted(JOBS))
def test_epilog_has_examples_of_this_job_and_every_exit_code(job: str) -> None:
    text = help_text(job)
    examples = section(text, "examples")
    assert examples.count(f"  {job} ") + examples.count(f" {job} --") >= 2, examples
    codes = text.split("exit codes:\n", 1)[1]
    for code in "0123":
        assert re.search(rf"^  {code}  \S", codes, re.M), code


@pytest.mark.parametrize("job", sorted(JOBS))
def test_version_on_every_job_from_the_package_metadata(job: str) -> None:
    exe = Path(sys.executable).parent / job
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{job} {version()}\n"
    from importlib.metadata import version as metadata_version

    assert version() == metadata_version("coder-wi-jobs") != "0+unknown"


def test_every_missing_setting_is_reported_in_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert harness.run(spec_of("fic-reconcile"), [], {}) == harness.EXIT_CONFIG
    *lines, summary = capsys.readouterr().err.strip().splitlines()
    assert json.loads(summary)["event"] == "run.summary"
    required = [spec.label for _, spec in specs(spec_of("fic-reconcile").settings) if spec.default is REQUIRED]
    assert len(required) == 4
    assert lines == [f"fic-reconcile: configuration error: {label}: is required" for label in required]


def test_invalid_and_missing_settings_of_both_option_sets_are_reported_together(
    capsys: pytest.CaptureFixture[str],
) -> None:
    environ = {"CODER_URL": "http://coder.example", "CWJ_LIFETIME": "soon", "CWJ_LOG_LEVEL": "loud"}
    assert harness.run(spec_of("coder-token-mint"), ["--output", "yaml"], environ) == harness.EXIT_CONFIG
    *lines, _summary = capsys.readouterr().err.strip().splitlines()
    named = [line.split(": configuration error: ", 1)[1].split(":", 1)[0] for line in lines]
    assert named == [
        "--output (CWJ_OUTPUT)",
        "--log-level (CWJ_LOG_LEVEL)",
        "--coder-url (CODER_URL)",
        "--bootstrap-token-file (CWJ_BOOTSTRAP_TOKEN_FILE)",
        "--lifetime (CWJ_LIFETIME)",
        "--vault-addr (VAULT_ADDR)",
    ]
    assert all(line.startswith("coder-token-mint: configuration error: ") for line in lines)
