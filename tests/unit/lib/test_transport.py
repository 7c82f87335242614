"""Every URL a job sends a credential to is https (issue 21, point 4), and no URL setting's value is echoed
in a configuration error (point 5): through the real settings classes of the four jobs and the harness.

Plain http is admitted only under --allow-insecure-http (CWJ_ALLOW_INSECURE_HTTP) AND to a loopback host,
and only for Vault, the webhook and the Pushgateway; Coder, the issuer, ARM and Key Vault stay https always.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lib import harness
from lib.settings import ConfigError, is_loopback, parse_https_url, parse_service_url, resolve, specs
from tests.conftest import config_error_lines

JOBS = {
    "fic-reconcile": "jobs.fic_reconcile.job",
    "keyvault-sync": "jobs.keyvault_sync.job",
    "coder-token-mint": "jobs.coder_token_mint.job",
    "token-expiry-check": "jobs.token_expiry_check.job",
}
# (job, env var) of every URL setting that may carry http:// under the override, and of those that never may.
OVERRIDABLE = [
    ("fic-reconcile", "CWJ_PUSHGATEWAY_URL"),
    ("keyvault-sync", "CWJ_PUSHGATEWAY_URL"),
    ("coder-token-mint", "VAULT_ADDR"),
    ("coder-token-mint", "CWJ_PUSHGATEWAY_URL"),
    ("coder-token-mint", "CWJ_WEBHOOK_URL"),
    ("token-expiry-check", "VAULT_ADDR"),
    ("token-expiry-check", "CWJ_WEBHOOK_URL"),
    ("token-expiry-check", "CWJ_PUSHGATEWAY_URL"),
]
HTTPS_ONLY = [
    ("fic-reconcile", "CWJ_OIDC_ISSUER"),
    ("fic-reconcile", "CWJ_ARM_ENDPOINT"),
    ("fic-reconcile", "CWJ_KNOWN_ISSUERS"),
    ("fic-reconcile", "CWJ_ARM_AUDIENCE"),
    ("fic-reconcile", "CWJ_ISSUER_DISCOVERY_BASE"),
    ("keyvault-sync", "CWJ_SOURCE_VAULT_URL"),
    ("keyvault-sync", "CWJ_TARGET_VAULT_URL"),
    ("coder-token-mint", "CODER_URL"),
    ("token-expiry-check", "CODER_URL"),
]
SLACK = "https://hooks.slack.com/services/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"


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("transport")
    (root / "allowlist.yaml").write_text("- one\n")
    (root / "token").write_text("not-a-real-token\n")
    uuid = "6f1c2b9e-8a4d-4c1e-9f0a-1b2c3d4e5f60"
    return {
        "CWJ_OIDC_ISSUER": "https://oidc.example.test/issuer/",
        "AZURE_CLIENT_IDS_JSON": f'["{uuid}"]',
        "AZURE_SUBSCRIPTION_ID": uuid,
        "CWJ_IDENTITY_RESOURCE_GROUP": "rg-pool",
        "CWJ_SOURCE_VAULT_URL": "https://seed.vault.example.test",
        "CWJ_TARGET_VAULT_URL": "https://cluster.vault.example.test",
        "CWJ_ALLOWLIST_FILE": str(root / "allowlist.yaml"),
        "CODER_URL": "https://coder.example.test",
        "CWJ_BOOTSTRAP_TOKEN_FILE": str(root / "token"),
        "CWJ_CODER_TOKEN_FILE": str(root / "token"),
        "VAULT_ADDR": "https://vault.example.test:8200",
        "CWJ_USER": "ci-bot",
    }


def settings_class(job: str) -> Any:
    return importlib.import_module(JOBS[job]).SPEC.settings


def load(job: str, environ: dict[str, str], allow: bool = False) -> Any:
    cls = settings_class(job)
    unset = argparse.Namespace(**{name: None for name, _ in specs(cls)})
    return resolve(cls, unset, environ, allow_insecure_http=allow)


def test_the_tables_above_are_every_url_setting_of_every_job() -> None:
    """A URL setting added later must be classified here, or this fails."""
    found = {
        (job, spec.env)
        for job in JOBS
        for _, spec in specs(settings_class(job))
        if spec.parse in (parse_https_url, parse_service_url) or getattr(spec.parse, "url_parser", None)
    }
    assert found == set(OVERRIDABLE) | set(HTTPS_ONLY)


@pytest.mark.parametrize(("job", "env"), OVERRIDABLE + HTTPS_ONLY)
def test_http_is_refused_by_default_naming_the_setting_and_host_only(job: str, env: str, good: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load(job, {**good, env: "http://svc.example.test:8080/secret-path?token=s3cr3t", "CWJ_VAULT_CHECK": "true"})
    text = str(info.value)
    assert env in info.value.setting and "expected an https:// URL" in text
    assert "svc.example.test:8080" in text  # the host is shown, to say where
    assert "secret-path" not in text and "s3cr3t" not in text and "\n" not in text


@pytest.mark.parametrize(("job", "env"), OVERRIDABLE)
@pytest.mark.parametrize("host", ["127.0.0.1:9091", "127.8.9.10", "[::1]:8200", "localhost:1", "LOCALHOST"])
def test_the_override_admits_http_to_a_loopback_host_only(job: str, env: str, host: str, good: dict[str, str]) -> None:
    environ = {**good, env: f"http://{host}/x", "CWJ_VAULT_CHECK": "true"}
    with pytest.raises(ConfigError, match="--allow-insecure-http"):
        load(job, environ)
    loaded = load(job, environ, allow=True)
    assert f"http://{host}/x" in vars(loaded).values()


@pytest.mark.parametrize(("job", "env"), OVERRIDABLE)
@pytest.mark.parametrize(
    "host", ["10.0.0.5:9091", "pushgateway.monitoring.svc", "127.0.0.1.nip.io", "[::2]", "0.0.0.0"]
)
def test_the_override_never_admits_http_to_another_host(job: str, env: str, host: str, good: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="only to a loopback host") as info:
        load(job, {**good, env: f"http://user:pw@{host}/p", "CWJ_VAULT_CHECK": "true"}, allow=True)
    assert "user" not in str(info.value) and "pw@" not in str(info.value)


@pytest.mark.parametrize(("job", "env"), HTTPS_ONLY)
def test_the_override_does_not_reach_the_https_only_settings(job: str, env: str, good: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="expected an https:// URL"):
        load(job, {**good, env: "http://127.0.0.1:8443"}, allow=True)


@pytest.mark.parametrize(
    "raw",
    [
        SLACK.removeprefix("https://"),  # the reproduction: a webhook URL without a scheme
        "hooks.slack.com:443/services/T0AAAAAAA/B0BBBBBBB/Zq3xV8uY2kL9pR4tW7nM1sD6",
        "ftp://hooks.slack.com/services/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",
        "https://[hooks.slack.com/services/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",
        "https://hooks.slack.com:99999/services/T0AAAAAAA/B0BBBBBBB/Zq3xV8uY2kL9pR4tW7nM1sD6",
        "xoxb-Zq3xV8uY2kL9pR4tW7nM1sD6:https://x",
    ],
)
def test_a_malformed_webhook_url_exits_2_without_echoing_it(
    raw: str, good: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.import_module(JOBS["token-expiry-check"]).SPEC
    code = harness.run(spec, [], {**good, "CWJ_WEBHOOK_URL": raw})
    err = capsys.readouterr().err
    assert code == harness.EXIT_CONFIG
    assert err.startswith("token-expiry-check: configuration error: --webhook-url (CWJ_WEBHOOK_URL): expected")
    assert "Zq3xV8uY2kL9pR4tW7nM1sD6" not in err and "T0AAAAAAA" not in err  # neither line nor run.summary
    assert len(config_error_lines(err)) == 1


# Every fixed text a URL parser's error can hold besides a host: a value inside one of these is no echo.
TEMPLATES = (
    "expected an https:// URL with a host (the value is not shown: a URL can hold a credential)"
    "expected an https:// URL, got another scheme (the value is not shown)"
    "expected an https:// URL, got http:// for "
)


@given(raw=st.text(min_size=4, max_size=120))
@settings(max_examples=300)
def test_no_url_parser_error_ever_holds_the_value(raw: str) -> None:
    assume(raw.strip() not in TEMPLATES)
    for parse in (parse_https_url, parse_service_url):
        try:
            parse(raw)
        except ValueError as exc:
            assert raw.strip() not in str(exc)


@given(path=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~%", min_size=12))
@settings(max_examples=100)
def test_a_url_settings_error_shows_the_host_never_the_path(path: str, good: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load("token-expiry-check", {**good, "CWJ_WEBHOOK_URL": f"http://h.example/{path}"})
    assert "h.example" in str(info.value) and path not in str(info.value)


def test_loopback_is_exact() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.255.0.9", "::1", "localhost", "LocalHost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "localhost.example", "127.0.0.1.nip.io", ""))


def test_the_harness_warns_when_the_override_is_on(good: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.import_module(JOBS["token-expiry-check"]).SPEC
    # Loaded with the override on; the run then fails to reach Coder (nothing listens): the warning is logged.
    harness.run(spec, ["--allow-insecure-http", "--log-format", "json", "--request-timeout", "1s",
                       "--retry-deadline", "1s"], {**good, "CODER_URL": "https://127.0.0.1:9"})  # fmt: skip
    assert "run.insecure_http_allowed" in capsys.readouterr().err
