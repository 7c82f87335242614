"""Which Azure Resource Manager a run calls, and the token audience it asks Entra for.

An ARM token is good at every ARM endpoint that accepts its audience, so sending one to a host is handing that
host the power to write federated identity credentials. Two rules follow: the token is requested for the
audience of the cloud whose endpoint is called (a US Gov endpoint never gets a public-cloud token, and the
sovereign clouds work at all), and only the known clouds' ARM hosts are called unless the operator says
otherwise (a mistyped `--arm-endpoint` is refused before any token exists). An endpoint outside the table
(an emulator, Azure Stack Hub) needs `--allow-custom-arm-endpoint` and its audience named with `--arm-audience`:
nothing is guessed for it.

The table is azure-mgmt-core's own (`azure.mgmt.core.tools.get_arm_endpoints`, 1.6.0; the SDK's default when
no base_url is given), written out because importing that module costs ~0.15 s that a configuration error
(exit 2) need not pay; tests/unit/lib/test_arm_cloud.py checks it against the SDK. The names are the Azure
CLI's (`az cloud list`). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ArmCloud:
    name: str  # `az cloud set --name`
    endpoint: str  # the ARM host, as the SDK writes it (trailing slash)
    audience: str  # what Entra issues the token for; the scope is `<audience>.default`


CLOUDS = (
    ArmCloud("AzureCloud", "https://management.azure.com/", "https://management.azure.com/"),
    ArmCloud(
        "AzureUSGovernment", "https://management.usgovcloudapi.net/", "https://management.core.usgovcloudapi.net/"
    ),
    ArmCloud("AzureChinaCloud", "https://management.chinacloudapi.cn/", "https://management.chinacloudapi.cn/"),
)
CUSTOM = "custom"


@dataclass(frozen=True)
class ArmTarget:
    endpoint: str
    audience: str
    cloud: str  # a CLOUDS name, or CUSTOM

    @property
    def scope(self) -> str:
        return self.audience.rstrip("/") + "/.default"


class ArmTargetError(ValueError):
    """A refused endpoint or audience; `setting` is "arm_endpoint" or "arm_audience"."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(problem)
        self.setting = setting
        self.problem = problem


def known_cloud(endpoint: str) -> ArmCloud | None:
    """The cloud whose ARM host `endpoint` is exactly: https, that host (any case), port 443 or none, no path
    beyond '/', no user, query or fragment. `https://management.azure.com.evil.example` is not public ARM."""
    try:
        parts = urlsplit(endpoint.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or port not in (None, 443) or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    host = (parts.hostname or "").lower()
    return next((c for c in CLOUDS if urlsplit(c.endpoint).hostname == host), None)


def _https(raw: str) -> bool:
    try:
        parts = urlsplit(raw.strip())
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname)


def arm_target(endpoint: str, allow_custom: bool, audience: str | None) -> ArmTarget:
    """The endpoint to call and the audience to ask for, or ArmTargetError naming the setting at fault."""
    cloud = known_cloud(endpoint)
    if cloud is not None:
        if audience and audience.rstrip("/") != cloud.audience.rstrip("/"):
            raise ArmTargetError(
                "arm_audience",
                f"{cloud.name}'s ARM ({cloud.endpoint}) takes tokens for {cloud.audience}; expected that or "
                f"nothing, got {audience!r}",
            )
        return ArmTarget(cloud.endpoint, cloud.audience, cloud.name)
    if not allow_custom:
        hosts = ", ".join(f"{c.endpoint} ({c.name})" for c in CLOUDS)
        raise ArmTargetError(
            "arm_endpoint",
            f"expected a known Azure cloud's ARM endpoint: {hosts}; got {endpoint!r} (an emulator or Azure Stack "
            "needs --allow-custom-arm-endpoint and --arm-audience)",
        )
    if not audience:
        raise ArmTargetError(
            "arm_audience",
            f"is required with --allow-custom-arm-endpoint: the token audience {endpoint} accepts (an emulator of "
            "public ARM: https://management.azure.com/); a token for it can write federated credentials",
        )
    if not _https(audience):
        raise ArmTargetError("arm_audience", f"expected an https:// audience URI, got {audience!r}")
    return ArmTarget(endpoint.strip(), audience.strip(), CUSTOM)
