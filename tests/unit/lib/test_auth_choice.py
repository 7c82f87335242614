"""Which credential a run uses (lib/auth_choice.py): the pure decisions for Azure and Vault, and the harness
refusing in one line before anything is logged or requested (issues 18 and 21)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib import harness
from lib.auth_choice import (
    WORKLOAD_IDENTITY_ENV,
    AzureAuth,
    decide_azure_auth,
    decide_vault_auth,
    vault_auth,
    vault_token_file,
)
from lib.model import Plan, Report
from lib.redact import MASK, scrub
from lib.settings import ConfigError, setting
from tests.conftest import config_error_lines

LABEL = "--azure-auth (CWJ_AZURE_AUTH)"
WI = {
    "AZURE_CLIENT_ID": "5f3c8a1e-2b4d-4c6e-9f7a-1b2c3d4e5f60",
    "AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
    "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
}
POD = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}


def decide(mode: str, env: dict[str, str], cli: bool = True) -> AzureAuth:
    return decide_azure_auth(mode, env, cli, LABEL)


# ---- Azure ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "env", "cli", "method"),
    [
        ("auto", WI, True, "workload-identity"),  # a pod, or the emulated platform
        ("auto", {**WI, **POD}, True, "workload-identity"),
        ("auto", {}, True, "azure-cli"),  # a laptop
        ("auto", {"AZURE_CLIENT_ID": WI["AZURE_CLIENT_ID"]}, True, "azure-cli"),  # a stray variable is not WI
        ("azure-cli", {**WI, **POD}, True, "azure-cli"),  # an SRE in a Coder workspace, as themself
        ("azure-cli", {}, True, "azure-cli"),
        ("workload-identity", WI, False, "workload-identity"),
        ("workload-identity", {**WI, **POD}, False, "workload-identity"),
    ],
    ids=["wi", "wi-pod", "laptop", "laptop-stray-client-id", "workspace-cli", "cli", "forced-wi", "forced-wi-pod"],
)
def test_one_credential_per_situation(mode: str, env: dict[str, str], cli: bool, method: str) -> None:
    assert decide(mode, env, cli).method == method


@pytest.mark.parametrize("missing", [WORKLOAD_IDENTITY_ENV, ("AZURE_FEDERATED_TOKEN_FILE",), ("AZURE_AUTHORITY_HOST",)])
def test_auto_in_a_pod_without_the_webhooks_env_refuses_naming_what_is_missing(missing: tuple[str, ...]) -> None:
    """Issue 21: no fallback to the node's managed identity, and not to the CLI either, even with one on PATH."""
    env = {**{k: v for k, v in WI.items() if k not in missing}, **POD}
    with pytest.raises(ConfigError) as refused:
        decide("auto", env, cli=True)
    assert refused.value.setting == LABEL
    named = [name for name in WORKLOAD_IDENTITY_ENV if name in refused.value.problem]
    assert named == list(missing)
    assert "KUBERNETES_SERVICE_HOST" in refused.value.problem and "\n" not in str(refused.value)


def test_forced_workload_identity_names_the_missing_variables_anywhere() -> None:
    with pytest.raises(ConfigError) as refused:
        decide("workload-identity", {"AZURE_CLIENT_ID": "x", "AZURE_TENANT_ID": " "}, cli=True)
    assert refused.value.problem.endswith("unset: AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST")


def test_the_cli_must_be_there_when_it_is_the_answer() -> None:
    with pytest.raises(ConfigError) as forced:
        decide("azure-cli", WI, cli=False)
    assert "az login" in forced.value.problem
    with pytest.raises(ConfigError) as laptop:
        decide("auto", {}, cli=False)
    assert "not on PATH" in laptop.value.problem and "AZURE_CLIENT_ID" in laptop.value.problem


env_subsets = st.fixed_dictionaries({}, optional={k: st.sampled_from([v, "", " "]) for k, v in {**WI, **POD}.items()})


@given(env=env_subsets, cli=st.booleans())
def test_auto_in_a_pod_never_ends_at_the_cli(env: dict[str, str], cli: bool) -> None:
    try:
        chosen = decide("auto", env, cli)
    except ConfigError:
        return
    pod = bool(env.get("KUBERNETES_SERVICE_HOST", "").strip())
    complete = all(env.get(k, "").strip() for k in WORKLOAD_IDENTITY_ENV)
    assert chosen.method == ("workload-identity" if complete else "azure-cli")
    assert not (pod and chosen.method == "azure-cli")


@given(env=env_subsets, cli=st.booleans(), mode=st.sampled_from(["auto", "workload-identity", "azure-cli"]))
def test_workload_identity_is_only_chosen_with_its_whole_env(env: dict[str, str], cli: bool, mode: str) -> None:
    try:
        chosen = decide(mode, env, cli)
    except ConfigError as exc:
        assert exc.setting == LABEL
        return
    if chosen.method == "workload-identity":
        assert all(env.get(k, "").strip() for k in WORKLOAD_IDENTITY_ENV)
    else:
        assert cli


# ---- Vault ------------------------------------------------------------------------------------------------------

LABELS = ("--vault-auth (CWJ_VAULT_AUTH)", "--vault-jwt-file (CWJ_VAULT_JWT_FILE)")
TOKEN_FILE, JWT = Path("/home/sre/.vault-token"), Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def vault(mode: str, env_token: str = "", file_token: str = "", jwt: bool = False) -> tuple[str, str, str]:
    auth = decide_vault_auth(mode, env_token, file_token, TOKEN_FILE, JWT, jwt, LABELS)
    return auth.method, auth.source, auth.token


@pytest.mark.parametrize(
    ("mode", "env_token", "file_token", "jwt", "expected"),
    [
        ("auto", "env-tok", "file-tok", True, ("token", "VAULT_TOKEN", "env-tok")),  # like the vault CLI
        ("auto", "", "file-tok", True, ("token", str(TOKEN_FILE), "file-tok")),  # after `vault login`
        ("auto", "", "", True, ("kubernetes", str(JWT), "")),  # a pod
        ("token", "", "file-tok", True, ("token", str(TOKEN_FILE), "file-tok")),
        ("kubernetes", "env-tok", "file-tok", True, ("kubernetes", str(JWT), "")),
    ],
    ids=["env-first", "file-second", "kubernetes-last", "forced-token", "forced-kubernetes"],
)
def test_vault_like_the_vault_cli(
    mode: str, env_token: str, file_token: str, jwt: bool, expected: tuple[str, str, str]
) -> None:
    assert vault(mode, env_token, file_token, jwt) == expected


def test_with_nothing_there_the_error_names_all_three() -> None:
    with pytest.raises(ConfigError) as refused:
        vault("auto")
    assert refused.value.setting == LABELS[0]
    for source in ("VAULT_TOKEN", str(TOKEN_FILE), str(JWT), LABELS[1]):
        assert source in refused.value.problem
    with pytest.raises(ConfigError) as token:
        vault("token", jwt=True)
    assert "VAULT_TOKEN" in token.value.problem and str(TOKEN_FILE) in token.value.problem
    with pytest.raises(ConfigError) as kubernetes:
        vault("kubernetes", env_token="env-tok")
    assert kubernetes.value.setting == LABELS[1]


def test_the_token_file_is_read_from_home_trimmed_and_registered(tmp_path: Path) -> None:
    secret = "hvs.CAESIJlaptop0000000000000000000000000000000000000000"
    (tmp_path / ".vault-token").write_text(f"  {secret}\n")  # `vault login` writes no newline; an editor might
    auth = vault_auth("auto", {"HOME": str(tmp_path)}, tmp_path / "no-jwt", LABELS)
    assert (auth.method, auth.source, auth.token) == ("token", str(tmp_path / ".vault-token"), secret)
    assert secret not in repr(auth) and scrub(f"x {secret} y") == f"x {MASK} y"
    (tmp_path / ".vault-token").write_text("\n")  # an empty file is no token, as for the CLI
    with pytest.raises(ConfigError):
        vault_auth("auto", {"HOME": str(tmp_path)}, tmp_path / "no-jwt", LABELS)
    assert vault_token_file({"HOME": "/home/x"}) == Path("/home/x/.vault-token")


# ---- the harness: refused in one line, before any log line --------------------------------------------------------


@dataclass(frozen=True)
class Needs:
    auth: str = setting("--azure-auth", "mode", default="auto")


def test_a_preflight_refusal_is_one_line_and_nothing_runs(capsys: pytest.CaptureFixture[str]) -> None:
    connected: list[bool] = []

    def preflight(s: Needs, environ: Mapping[str, str]) -> None:
        decide(s.auth, dict(environ))

    spec: harness.JobSpec[Needs, None, None] = harness.JobSpec(
        name="demo",
        description="demo",
        settings=Needs,
        connect=lambda s: connected.append(True),
        observe=lambda c, s: None,
        plan=lambda t, s, now: Plan(()),
        apply=lambda p, c, s: Report(p, ()),
        preflight=preflight,
    )
    code = harness.run(spec, [], {**POD})
    out, err = capsys.readouterr()
    assert code == harness.EXIT_CONFIG and not connected and out == ""
    (line,) = config_error_lines(err)
    assert line.startswith(f"demo: configuration error: {LABEL}: auto in a pod")
