"""fic-reconcile's settings: flags and env vars, defaults, and every bad input as a one-line exit 2 that
names the setting, before any request (the harness stops before connect)."""

from __future__ import annotations

import json

import pytest

from jobs.fic_reconcile.job import SPEC
from jobs.fic_reconcile.settings import FicSettings
from lib import harness
from lib.cli import build_parser
from lib.settings import ConfigError, resolve
from tests.conftest import config_error_lines

CLIENTS = ["11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"]
GOOD = {
    "CWJ_OIDC_ISSUER": "https://oidc.example.test/t/c/",
    "AZURE_CLIENT_IDS_JSON": json.dumps(CLIENTS),
    "AZURE_SUBSCRIPTION_ID": "33333333-3333-3333-3333-333333333333",
    "CWJ_IDENTITY_RESOURCE_GROUP": "rg-pool",
}


def load(argv: list[str], environ: dict[str, str]) -> FicSettings:
    parsed = build_parser("fic-reconcile", "", [FicSettings]).parse_args(argv)
    return resolve(FicSettings, parsed, environ)


def test_defaults_and_env_vars() -> None:
    s = load([], GOOD)
    assert s.client_ids == tuple(CLIENTS)  # order kept: it is the shard contract
    assert (s.namespace_prefix, s.fic_prefix, s.service_account) == ("ameide-ws-", "coder-ws-", "workspace")
    assert (s.max_fics_per_identity, s.max_deletes, s.allow_mass_delete, s.concurrency) == (20, None, False, 4)
    assert s.arm_endpoint == "https://management.azure.com" and s.pushgateway_url is None
    policy = s.policy()
    assert policy.issuer == "https://oidc.example.test/t/c/" and policy.limit == 20


def test_flags_override_env_vars() -> None:
    s = load(["--fic-prefix", "ws_", "--max-deletes", "3", "--allow-mass-delete", "--namespace-selector", "a=b"], GOOD)
    assert (s.fic_prefix, s.max_deletes, s.allow_mass_delete, s.namespace_selector) == ("ws_", 3, True, "a=b")


def test_known_issuers_from_repeated_flags_or_a_comma_separated_env_var_reach_the_policy() -> None:
    a, b = "https://token.actions.githubusercontent.com", "https://oidc.example.test/t/other/"
    assert load(["--known-issuers", a, "--known-issuers", b], GOOD).policy().known_issuers == (a, b)
    assert load([], {**GOOD, "CWJ_KNOWN_ISSUERS": f"{a}, {b}"}).policy().known_issuers == (a, b)
    assert load([], GOOD).policy().known_issuers == ()
    with pytest.raises(ConfigError, match=r"--known-issuers \(CWJ_KNOWN_ISSUERS\): expected an https:// URL") as info:
        load([], {**GOOD, "CWJ_KNOWN_ISSUERS": f"{a},http://issuer.example.test/secret-path"})
    assert "secret-path" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "argv", "names"),
    [
        ({"AZURE_CLIENT_IDS_JSON": "not json"}, [], "--client-ids-json (AZURE_CLIENT_IDS_JSON)"),
        ({"AZURE_CLIENT_IDS_JSON": "[]"}, [], "--client-ids-json (AZURE_CLIENT_IDS_JSON)"),
        ({"AZURE_CLIENT_IDS_JSON": json.dumps([CLIENTS[0], CLIENTS[0].upper()])}, [], "AZURE_CLIENT_IDS_JSON"),
        ({"AZURE_CLIENT_IDS_JSON": '{"a": 1}'}, [], "AZURE_CLIENT_IDS_JSON"),
        ({"CWJ_OIDC_ISSUER": "http://oidc.example.test/"}, [], "--issuer (CWJ_OIDC_ISSUER)"),
        ({}, ["--fic-prefix=-bad"], "--fic-prefix (CWJ_FIC_PREFIX)"),
        ({}, ["--fic-prefix", "has space"], "--fic-prefix (CWJ_FIC_PREFIX)"),
        ({}, ["--fic-prefix", "x" * 58], "--fic-prefix (CWJ_FIC_PREFIX)"),
        ({}, ["--fic-prefix", ""], "--fic-prefix (CWJ_FIC_PREFIX)"),
        ({}, ["--fic-prefix", "a"], "--fic-prefix (CWJ_FIC_PREFIX)"),
        ({}, ["--concurrency", "0"], "--concurrency (CWJ_CONCURRENCY)"),
        ({}, ["--max-deletes", "-1"], "--max-deletes (CWJ_MAX_DELETES)"),
        ({}, ["--service-account", "Work_Space"], "--service-account (CWJ_SERVICE_ACCOUNT)"),
        ({}, ["--namespace-prefix", "Ameide"], "--namespace-prefix (CWJ_NAMESPACE_PREFIX)"),
        ({}, ["--namespace-prefix", ""], "--namespace-prefix (CWJ_NAMESPACE_PREFIX)"),  # every namespace, no selector
        ({"AZURE_SUBSCRIPTION_ID": "my-sub"}, [], "--subscription-id (AZURE_SUBSCRIPTION_ID)"),
        ({"CWJ_IDENTITY_RESOURCE_GROUP": ""}, [], "--resource-group (CWJ_IDENTITY_RESOURCE_GROUP)"),
        ({}, ["--probe-seconds", "0"], "--probe-seconds (CWJ_PROBE_SECONDS)"),
        ({}, ["--probe-seconds", "soon"], "--probe-seconds (CWJ_PROBE_SECONDS)"),
        ({}, ["--probe-max-namespaces", "0"], "--probe-max-namespaces (CWJ_PROBE_MAX_NAMESPACES)"),
        ({"CWJ_PROBE": "maybe"}, [], "--probe (CWJ_PROBE)"),
        # the probe runs inside the run budget: a bound at or past it is a mistake, not a longer run
        ({"CWJ_PROBE": "true"}, ["--probe-seconds", "600"], "--probe-seconds (CWJ_PROBE_SECONDS)"),
        ({}, ["--probe", "--probe-seconds", "90", "--max-run-seconds", "60"], "--probe-seconds (CWJ_PROBE_SECONDS)"),
    ],
)
def test_bad_input_is_a_config_error_naming_the_setting(env: dict[str, str], argv: list[str], names: str) -> None:
    environ = {**GOOD, **env}
    with pytest.raises(ConfigError) as exc:
        load(argv, environ)
    assert names in str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_longest_prefix_that_still_fits_is_accepted() -> None:
    assert load(["--fic-prefix", "x" * 57], GOOD).fic_prefix == "x" * 57  # 57 + 63 = 120


def test_missing_required_settings_exit_2_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    environ = {k: v for k, v in GOOD.items() if k != "AZURE_SUBSCRIPTION_ID"}
    assert harness.run(SPEC, [], environ) == harness.EXIT_CONFIG
    line, summary = capsys.readouterr().err.strip().splitlines()
    assert line == "fic-reconcile: configuration error: --subscription-id (AZURE_SUBSCRIPTION_ID): is required"
    assert '"event": "run.summary"' in summary and '"exit_code": 2' in summary


def test_http_issuer_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert harness.run(SPEC, ["--issuer", "http://insecure.test/"], GOOD) == harness.EXIT_CONFIG
    assert "--issuer (CWJ_OIDC_ISSUER): expected an https:// URL" in capsys.readouterr().err


def test_an_empty_namespace_prefix_is_accepted_with_a_selector() -> None:
    settings = load(["--namespace-prefix", "", "--namespace-selector", "coder.com/workspace=true"], GOOD)
    assert settings.namespace_prefix == "" and settings.namespace_selector == "coder.com/workspace=true"


def test_the_probe_is_off_by_default_and_its_bound_is_checked_only_when_on() -> None:
    s = load([], GOOD)
    assert (s.probe, s.probe_seconds, s.probe_max_namespaces) == (False, 120.0, 10)
    assert load(["--probe-seconds", "900"], GOOD).probe_seconds == 900.0  # unused while the probe is off
    on = load(["--probe-seconds", "599.5", "--probe-max-namespaces", "3"], {**GOOD, "CWJ_PROBE": "true"})
    assert (on.probe, on.probe_seconds, on.probe_max_namespaces) == (True, 599.5, 3)


# ---- issue 20: --mode and --aks-cluster-id -----------------------------------------------------------------

CLUSTER = (
    "/subscriptions/33333333-3333-3333-3333-333333333333/resourcegroups/rg-aks"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-1"
)


def test_mode_defaults_to_fic_and_the_cluster_id_is_parsed_case_insensitively() -> None:
    assert (load([], GOOD).mode, load([], GOOD).aks_cluster_id) == ("fic", None)
    s = load(["--mode", "identity-binding"], {**GOOD, "CWJ_AKS_CLUSTER_ID": CLUSTER})
    s.check()
    assert s.cluster() == ("33333333-3333-3333-3333-333333333333", "rg-aks", "aks-prod-1")
    assert load([], {**GOOD, "CWJ_FIC_MODE": "both", "CWJ_AKS_CLUSTER_ID": CLUSTER}).binding_policy().mode == "both"


@pytest.mark.parametrize(
    ("env", "argv", "names"),
    [
        ({}, ["--mode", "bindings"], "--mode (CWJ_FIC_MODE): expected one of fic, identity-binding, both"),
        ({}, ["--mode", "identity-binding"], "--aks-cluster-id (CWJ_AKS_CLUSTER_ID): is required with --mode"),
        ({}, ["--mode", "both"], "--aks-cluster-id (CWJ_AKS_CLUSTER_ID): is required with --mode both"),
        ({"CWJ_AKS_CLUSTER_ID": "aks-prod-1"}, ["--mode", "both"], "--aks-cluster-id (CWJ_AKS_CLUSTER_ID): expected"),
        ({"CWJ_AKS_CLUSTER_ID": CLUSTER.replace("managedClusters", "virtualMachines")}, [], "CWJ_AKS_CLUSTER_ID"),
        ({"CWJ_AKS_CLUSTER_ID": CLUSTER, "CWJ_FIC_PREFIX": "Coder_WS_"}, ["--mode", "both"], "--fic-prefix"),
        ({"CWJ_AKS_CLUSTER_ID": CLUSTER, "CWJ_FIC_PREFIX": "9ws-"}, ["--mode", "both"], "--fic-prefix"),
    ],
    ids=["unknown-mode", "no-cluster-id", "no-cluster-id-both", "name-not-id", "not-a-cluster", "prefix-case",
         "prefix-digit"],
)  # fmt: skip
def test_a_bad_mode_or_cluster_id_exits_2_naming_the_setting(
    env: dict[str, str], argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert harness.run(SPEC, argv, {**GOOD, **env}) == 2
    err = config_error_lines(capsys.readouterr().err)  # the one line, then run.summary (issue 22 point 5)
    assert len(err) == 1 and names in err[0], err
