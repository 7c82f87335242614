"""The chart's NetworkPolicies (on by default): what each job may reach, that no rule can mean "anywhere", that a
destination a job needs but nobody configured stops the render with every such value named, and that the
command docs/helm.md gives for the Azure service tags produces values the chart turns into exactly those CIDRs
(run with the real jq on Microsoft's own service-tag entries, tests/api_specs/azure/service-tags)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.helm import service_tags
from tests.helm.chart import CHART, FULL, VALUE_KEYS, kinds, template, template_error

DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())
FULL_VALUES = yaml.safe_load(FULL.read_text())
EXPECTED_EGRESS = {
    "fic-reconcile": ["dns", "apiServer", "entraId", "azureResourceManager", "pushgateway"],
    "keyvault-sync": ["dns", "entraId", "azureKeyVault", "pushgateway"],
    "coder-token-mint": ["dns", "coder", "vault", "pushgateway"],
    "token-expiry-check": ["dns", "coder", "vault", "webhook", "pushgateway"],
}
AZURE = ("entraId", "azureResourceManager", "azureKeyVault")


def policy(docs: list[dict[str, Any]], job: str) -> dict[str, Any]:
    (found,) = [d for d in kinds(docs, "NetworkPolicy") if d["metadata"]["name"] == f"rel-{job}"]
    return found


def configured(destination: str, values: dict[str, Any] = FULL_VALUES) -> dict[str, Any]:
    """A destination's rule as helm merges it: the full example's keys over the defaults."""
    return {**DEFAULTS["networkPolicy"][destination], **values.get("networkPolicy", {}).get(destination, {})}


def peers(destination: str, values: dict[str, Any] = FULL_VALUES) -> list[dict[str, Any]]:
    """What the values say: the `to` peers, then each CIDR as an ipBlock."""
    rule = configured(destination, values)
    return list(rule.get("to", [])) + [{"ipBlock": {"cidr": c}} for c in rule.get("cidrs", [])]


def all_ip_blocks(docs: list[dict[str, Any]]) -> list[str]:
    return [
        peer["ipBlock"]["cidr"]
        for np in kinds(docs, "NetworkPolicy")
        for rule in np["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]


# ---- what each job may reach ----------------------------------------------------------------------------------


def test_network_policy_is_on_by_default() -> None:
    assert DEFAULTS["networkPolicy"]["enabled"] is True
    assert "networkPolicy" not in FULL_VALUES or FULL_VALUES["networkPolicy"].get("enabled", True) is True


@pytest.mark.parametrize("job", sorted(VALUE_KEYS))
def test_each_job_may_reach_only_its_destinations(full: list[dict[str, Any]], job: str) -> None:
    spec = policy(full, job)["spec"]
    assert spec["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/instance": "rel", "app.kubernetes.io/component": job}
    }
    assert spec["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in spec
    assert [rule["to"] for rule in spec["egress"]] == [peers(d) for d in EXPECTED_EGRESS[job]]
    assert [r["ports"] for r in spec["egress"]] == [configured(d)["ports"] for d in EXPECTED_EGRESS[job]]
    assert all(rule["to"] and rule["ports"] for rule in spec["egress"])  # an empty `to` would allow everything


def test_policy_selects_the_pods_of_its_cronjob(full: list[dict[str, Any]]) -> None:
    for cj in kinds(full, "CronJob"):
        job = cj["metadata"]["labels"]["app.kubernetes.io/component"]
        labels = cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        selector = policy(full, job)["spec"]["podSelector"]["matchLabels"]
        assert selector.items() <= labels.items()


def rule(docs: list[dict[str, Any]], job: str, destination: str) -> dict[str, Any]:
    found: dict[str, Any] = policy(docs, job)["spec"]["egress"][EXPECTED_EGRESS[job].index(destination)]
    return found


def test_outside_destinations_are_exactly_the_configured_addresses_and_ports(full: list[dict[str, Any]]) -> None:
    https = [{"port": 443, "protocol": "TCP"}]
    assert rule(full, "fic-reconcile", "apiServer") == {"to": [{"ipBlock": {"cidr": "20.42.7.11/32"}}], "ports": https}
    azure = [("fic-reconcile", "entraId"), ("keyvault-sync", "entraId"),
             ("fic-reconcile", "azureResourceManager"), ("keyvault-sync", "azureKeyVault")]  # fmt: skip
    for job, destination in azure:
        cidrs = FULL_VALUES["networkPolicy"][destination]["cidrs"]
        assert rule(full, job, destination) == {"to": [{"ipBlock": {"cidr": c}} for c in cidrs], "ports": https}
    webhook = {"to": [{"ipBlock": {"cidr": "203.0.113.10/32"}}], "ports": [{"port": 8443, "protocol": "TCP"}]}
    assert rule(full, "token-expiry-check", "webhook") == webhook


@pytest.mark.parametrize("variant", [[], ["--set", "pushgatewayUrl="]], ids=["full", "no-pushgateway"])
def test_no_rule_allows_every_address(home: Path, variant: list[str]) -> None:
    docs = template(home, "-f", str(FULL), *variant)
    blocks = all_ip_blocks(docs)
    assert blocks  # the check below looked at real rules
    for cidr in blocks:
        assert ipaddress.ip_network(cidr, strict=False).prefixlen >= 8, cidr
    for np in kinds(docs, "NetworkPolicy"):
        assert all(peer for rule in np["spec"]["egress"] for peer in rule["to"])


def test_optional_destinations_follow_the_settings(home: Path) -> None:
    docs = template(
        home,
        "-f",
        str(FULL),
        "--set",
        "pushgatewayUrl=,jobs.tokenExpiryCheck.settings.vaultCheck=false,jobs.tokenExpiryCheck.webhookUrlSecret.name=",
        "--set-json",
        "networkPolicy.webhook.cidrs=[]",  # not needed any more, so not demanded
    )
    assert [r["to"] for r in policy(docs, "token-expiry-check")["spec"]["egress"]] == [peers("dns"), peers("coder")]
    assert len(policy(docs, "keyvault-sync")["spec"]["egress"]) == 3


def test_every_policy_is_valid_kubernetes(full: list[dict[str, Any]]) -> None:
    for np in kinds(full, "NetworkPolicy"):
        for version in ("1.30.0", "1.37.0"):
            kubernetes_validate.validate(np, version, strict=True)


# ---- an empty destination stops the render --------------------------------------------------------------------


def test_every_needed_but_empty_destination_is_named_at_once(home: Path) -> None:
    emptied = ["--set-json", "networkPolicy.apiServer.cidrs=[]"] + [
        arg for d in AZURE for arg in ("--set-json", f"networkPolicy.{d}.cidrs=[]")
    ]
    error = template_error(home, "-f", str(FULL), *emptied)
    assert "networkPolicy is enabled but these destinations have no address" in error
    named = re.findall(r"networkPolicy\.(\w+) \(([^)]+)\)", error)
    assert named == [
        ("apiServer", "fic-reconcile"),
        ("azureKeyVault", "keyvault-sync"),
        ("azureResourceManager", "fic-reconcile"),
        ("entraId", "fic-reconcile, keyvault-sync"),
    ]
    assert "networkPolicy.enabled=false" in error and "docs/helm.md" in error


def test_a_job_needs_only_its_own_destinations(home: Path) -> None:
    """coder-token-mint alone renders with the chart's in-cluster defaults: no Azure CIDR is demanded of it."""
    only_mint = [
        "--set", "image.digest=sha256:" + "a" * 64,
        "--set", "coder.url=https://coder.example.com,vault.addr=https://vault.vault.svc:8200",
        "--set", "jobs.coderTokenMint.enabled=true,jobs.coderTokenMint.bootstrapTokenSecret.name=boot",
    ]  # fmt: skip
    (np,) = kinds(template(home, *only_mint), "NetworkPolicy")
    assert [r["to"] for r in np["spec"]["egress"]] == [peers(d, {}) for d in ("dns", "coder", "vault")]


def test_networkpolicy_can_be_turned_off(home: Path) -> None:
    emptied = [arg for d in AZURE for arg in ("--set-json", f"networkPolicy.{d}.cidrs=[]")]
    docs = template(home, "-f", str(FULL), *emptied, "--set", "networkPolicy.enabled=false")
    assert not kinds(docs, "NetworkPolicy") and len(kinds(docs, "CronJob")) == 4


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/7", "::/0", "2000::/3"])
def test_an_anywhere_peer_under_to_is_refused(home: Path, cidr: str) -> None:
    """The schema refuses such a CIDR in `cidrs`; given as an ipBlock under `to` the template refuses it."""
    error = template_error(
        home, "-f", str(FULL), "--set-json", f'networkPolicy.apiServer.to=[{{"ipBlock":{{"cidr":"{cidr}"}}}}]'
    )
    assert f"networkPolicy.apiServer: ipBlock {cidr} allows (nearly) every address" in error


# ---- docs/helm.md: service tags -> values -----------------------------------------------------------------------


def test_the_docs_service_tag_command_gives_values_the_chart_renders(home: Path, tmp_path: Path) -> None:
    try:
        values = service_tags.netpol_values(tmp_path)
    except service_tags.JqMissing as exc:  # never a skip: the docs' command must have run
        pytest.fail(str(exc))
    docs = template(home, "-f", str(FULL), "-f", str(values))
    entries = service_tags.entries()
    for destination, tag in service_tags.TAG_OF.items():
        prefixes = entries[tag]["properties"]["addressPrefixes"]
        assert len(prefixes) > 10
        job = "keyvault-sync" if destination == "azureKeyVault" else "fic-reconcile"
        expected = {"to": [{"ipBlock": {"cidr": c}} for c in prefixes], "ports": [{"port": 443, "protocol": "TCP"}]}
        assert rule(docs, job, destination) == expected, destination
    for np in kinds(docs, "NetworkPolicy"):
        kubernetes_validate.validate(np, "1.37.0", strict=True)
