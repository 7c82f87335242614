"""The ARM cloud table (lib/arm_cloud.py): which hosts fic-reconcile calls and which audience it asks Entra for.

Issue 21: `--arm-endpoint` used to change the host but not the audience, so a US Gov endpoint got a public-cloud
token and a mistyped host got a token that can write FICs. Per cloud, the scope the real SDK ends up requesting
is checked through ManagedServiceIdentityClient's own authentication policy (a credential that records the
scope and refuses, so no request leaves the process).
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from azure.core import AzureClouds
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.core.tools import get_arm_endpoints
from hypothesis import given
from hypothesis import strategies as st

from jobs.fic_reconcile.settings import FicSettings
from lib.arm_cloud import CLOUDS, CUSTOM, ArmTargetError, arm_target, known_cloud
from lib.clients.arm_msi import ArmMsi
from lib.settings import ConfigError, resolve, specs

SDK_CLOUD = {
    "AzureCloud": "AZURE_PUBLIC_CLOUD",
    "AzureUSGovernment": "AZURE_US_GOVERNMENT",
    "AzureChinaCloud": "AZURE_CHINA_CLOUD",
}
EXPECTED_SCOPE = {  # written out, not derived: the values an operator can check against `az cloud show`
    "AzureCloud": "https://management.azure.com/.default",
    "AzureUSGovernment": "https://management.core.usgovcloudapi.net/.default",
    "AzureChinaCloud": "https://management.chinacloudapi.cn/.default",
}


def test_the_table_is_azure_mgmt_cores_own() -> None:
    """get_arm_endpoints is the SDK's default per cloud; the table is a copy (for start-up time) that must not drift."""
    assert {c.name for c in CLOUDS} == set(SDK_CLOUD)
    for cloud in CLOUDS:
        sdk = get_arm_endpoints(AzureClouds[SDK_CLOUD[cloud.name]])
        assert sdk["resource_manager"] == cloud.endpoint
        assert sdk["credential_scopes"] == [cloud.audience + ".default"]


@pytest.mark.parametrize("cloud", CLOUDS, ids=lambda c: c.name)
@pytest.mark.parametrize("spelling", ["as-is", "no-slash", "upper-case", "port-443"])
def test_each_clouds_endpoint_gets_its_own_audience(cloud: Any, spelling: str) -> None:
    host = cloud.endpoint.removeprefix("https://").rstrip("/")
    endpoint = {
        "as-is": cloud.endpoint,
        "no-slash": cloud.endpoint.rstrip("/"),
        "upper-case": "https://" + host.upper(),
        "port-443": f"https://{host}:443/",
    }[spelling]
    target = arm_target(endpoint, False, None)
    assert (target.endpoint, target.scope, target.cloud) == (cloud.endpoint, EXPECTED_SCOPE[cloud.name], cloud.name)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://management.azure.com.evil.example/",  # a look-alike host
        "https://management-azure.com/",
        "https://management.azure.co/",  # a typo
        "https://manage.azure.com/",
        "http://management.azure.com/",  # not TLS
        "https://management.azure.com:8443/",
        "https://user@management.azure.com/",
        "https://management.azure.com/subscriptions/",
        "https://management.azure.com/?x=1",
        "https://management.usgovcloudapi.net.attacker.example/",
        "https://127.0.0.1:8443",
    ],
)
def test_an_unknown_host_is_refused_without_the_override(endpoint: str) -> None:
    with pytest.raises(ArmTargetError) as refused:
        arm_target(endpoint, False, None)
    assert refused.value.setting == "arm_endpoint"
    assert (
        "--allow-custom-arm-endpoint" in refused.value.problem
        and "https://management.azure.com/" in refused.value.problem
    )


def test_a_custom_endpoint_needs_its_audience_named() -> None:
    with pytest.raises(ArmTargetError) as missing:
        arm_target("https://127.0.0.1:8443", True, None)
    assert missing.value.setting == "arm_audience"
    with pytest.raises(ArmTargetError) as bad:
        arm_target("https://127.0.0.1:8443", True, "not a uri")
    assert bad.value.setting == "arm_audience"
    target = arm_target("https://127.0.0.1:8443", True, "https://management.azure.com/")
    assert (target.endpoint, target.scope, target.cloud) == (
        "https://127.0.0.1:8443",
        "https://management.azure.com/.default",
        CUSTOM,
    )


def test_a_known_cloud_refuses_another_audience() -> None:
    """A US Gov host with the public audience is exactly the mix-up this table exists to prevent."""
    with pytest.raises(ArmTargetError) as refused:
        arm_target("https://management.usgovcloudapi.net", True, "https://management.azure.com/")
    assert refused.value.setting == "arm_audience" and "management.core.usgovcloudapi.net" in refused.value.problem
    same = arm_target("https://management.usgovcloudapi.net", False, "https://management.core.usgovcloudapi.net")
    assert same.cloud == "AzureUSGovernment"


@given(endpoint=st.text(max_size=60) | st.sampled_from([c.endpoint for c in CLOUDS]).map(lambda e: e + "x"))
def test_without_the_override_only_table_endpoints_and_audiences_come_out(endpoint: str) -> None:
    try:
        target = arm_target(endpoint, False, None)
    except ArmTargetError as exc:
        assert exc.setting == "arm_endpoint"
        return
    cloud = known_cloud(endpoint)
    assert cloud is not None and (target.endpoint, target.audience) == (cloud.endpoint, cloud.audience)


# ---- through the settings and the real SDK -----------------------------------------------------------------------

BASE_ENV = {
    "CWJ_OIDC_ISSUER": "https://oidc.example.test/issuer/",
    "AZURE_CLIENT_IDS_JSON": '["6f1c2b9e-8a4d-4c1e-9f0a-1b2c3d4e5f60"]',
    "AZURE_SUBSCRIPTION_ID": "6f1c2b9e-8a4d-4c1e-9f0a-1b2c3d4e5f60",
    "CWJ_IDENTITY_RESOURCE_GROUP": "rg-pool",
}


def load(**env: str) -> FicSettings:
    unset = argparse.Namespace(**{name: None for name, _ in specs(FicSettings)})
    return resolve(FicSettings, unset, {**BASE_ENV, **env})


class ScopeRecorder:
    """A TokenCredential that notes the scopes it is asked for and refuses, so nothing is sent anywhere."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        raise ClientAuthenticationError(message="recorded")


@pytest.mark.parametrize("cloud", CLOUDS, ids=lambda c: c.name)
def test_the_sdk_asks_for_the_clouds_scope(cloud: Any) -> None:
    target = load(CWJ_ARM_ENDPOINT=cloud.endpoint.rstrip("/")).arm_target()
    credential = ScopeRecorder()
    arm = ArmMsi(credential, BASE_ENV["AZURE_SUBSCRIPTION_ID"], "rg-pool", target.endpoint, target.scope)  # type: ignore[arg-type]
    with pytest.raises(ClientAuthenticationError):
        arm.resolve_pool(["6f1c2b9e-8a4d-4c1e-9f0a-1b2c3d4e5f60"])
    arm.close()
    assert credential.scopes and set(credential.scopes) == {(EXPECTED_SCOPE[cloud.name],)}


def test_settings_refuse_a_mistyped_endpoint_in_one_line() -> None:
    with pytest.raises(ConfigError) as refused:
        load(CWJ_ARM_ENDPOINT="https://management.azure.co")
    assert refused.value.setting == "--arm-endpoint (CWJ_ARM_ENDPOINT)" and "\n" not in str(refused.value)
    with pytest.raises(ConfigError) as no_audience:
        load(CWJ_ARM_ENDPOINT="https://127.0.0.1:1", CWJ_ALLOW_CUSTOM_ARM_ENDPOINT="true")
    assert no_audience.value.setting == "--arm-audience (CWJ_ARM_AUDIENCE)"
    assert load().arm_target().scope == "https://management.azure.com/.default"  # the default is public ARM
