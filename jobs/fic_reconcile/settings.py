"""fic-reconcile's settings: every flag, its env var, its parser, and the rule that the FIC prefix plus any
namespace must be a valid FIC name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jobs.fic_reconcile.identity_binding.model import MODES, BindingPolicy
from jobs.fic_reconcile.plan import Policy
from jobs.fic_reconcile.shard import SHARD_RULES
from jobs.fic_reconcile.state import DEFAULT_NAME
from lib.arm_cloud import ArmTarget, ArmTargetError, arm_target
from lib.auth_choice import azure_auth_setting
from lib.settings import (
    AZURE,
    KUBERNETES,
    OUTPUT,
    SAFETY,
    ConfigError,
    int_at_least,
    label_of,
    one_of,
    parse_duration,
    parse_https_url,
    parse_json_string_list,
    parse_positive_seconds,
    parse_rate,
    parse_service_url,
    parse_uuid,
    setting,
    switch,
)

# /subscriptions/<uuid>/resourceGroups/<rg>/providers/Microsoft.ContainerService/managedClusters/<name>; ARM's
# segments are case-insensitive, the cluster name 1-63 of letters, digits, '-' and '_', starting and ending alnum
CLUSTER_ID = re.compile(
    r"/subscriptions/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"/resourcegroups/([-\w.()]{0,89}[-\w()])"
    r"/providers/microsoft\.containerservice/managedclusters/([a-z0-9](?:[-a-z0-9_]{0,61}[a-z0-9])?)",
    re.IGNORECASE,
)
# what --fic-prefix must be when it also names ClusterRoles (DNS-1123) and AKS bindings (<prefix><client id>)
RBAC_PREFIX = re.compile(r"[a-z][-a-z0-9]{0,26}")
FIC_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}")  # ARM's rule for the FIC resource name
MAX_NAMESPACE = 63  # a namespace is a DNS-1123 label


def parse_cluster_id(raw: str) -> str:
    if not CLUSTER_ID.fullmatch(raw.strip()):
        raise ValueError(
            "expected a managed cluster's ARM resource id, /subscriptions/<uuid>/resourceGroups/<group>/providers/"
            f"Microsoft.ContainerService/managedClusters/<name>, got {raw!r}"
        )
    return raw.strip()


def _matching(what: str, pattern: str) -> Any:
    def parse(raw: str) -> str:
        if not re.fullmatch(pattern, raw):
            raise ValueError(f"expected {what}, got {raw!r}")
        return raw

    return parse


@dataclass(frozen=True)
class FicSettings:
    issuer: str = setting(
        "--issuer", "the cluster's OIDC issuer URL, exactly", env="CWJ_OIDC_ISSUER", parse=parse_https_url, group=AZURE
    )
    issuer_discovery_base: str = setting(
        "--issuer-discovery-base",
        "read the issuer's discovery document through this base URL (<base><host>/<path>/.well-known/...) instead "
        "of the issuer's own host; only for test platforms whose issuer host does not resolve",
        parse=parse_https_url,
        default="",
        group=AZURE,
    )
    client_ids: tuple[str, ...] = setting(
        "--client-ids-json",
        "the pool: ordered JSON array of client ids",
        env="AZURE_CLIENT_IDS_JSON",
        parse=parse_json_string_list,
        group=AZURE,
    )
    subscription_id: str = setting(
        "--subscription-id", "subscription of the pool", env="AZURE_SUBSCRIPTION_ID", parse=parse_uuid, group=AZURE
    )
    resource_group: str = setting(
        "--resource-group",
        "resource group of the pool identities",
        env="CWJ_IDENTITY_RESOURCE_GROUP",
        parse=_matching("a resource group name (1-90 of letters, digits, -_.())", r"[-\w.()]{0,89}[-\w()]"),
        group=AZURE,
        metavar="NAME",
    )
    arm_endpoint: str = setting(
        "--arm-endpoint",
        "Azure Resource Manager URL: a known cloud's (public, US Gov, China); the token is asked for that cloud's "
        "ARM audience",
        env="CWJ_ARM_ENDPOINT",
        parse=parse_https_url,
        default="https://management.azure.com",
        group=AZURE,
    )
    allow_custom_arm_endpoint: bool = switch(
        "--allow-custom-arm-endpoint",
        "accept an --arm-endpoint outside the known clouds (an emulator, Azure Stack); needs --arm-audience",
        group=AZURE,
    )
    arm_audience: str | None = setting(
        "--arm-audience",
        "token audience for a custom --arm-endpoint (known clouds use their own)",
        parse=parse_https_url,
        default=None,
        group=AZURE,
    )
    azure_auth: str = azure_auth_setting()
    kube_context: str | None = setting(
        "--kube-context",
        "kubeconfig context to read the cluster through, even in a pod (default: the pod's own cluster, else the "
        "kubeconfig's current context)",
        default=None,
        group=KUBERNETES,
        metavar="CONTEXT",
    )
    namespace_prefix: str = setting(
        "--namespace-prefix",
        "workspace namespaces start with this",
        parse=_matching("lower-case letters, digits and '-'", r"[a-z0-9-]*"),
        default="ameide-ws-",
        group=KUBERNETES,
        metavar="PREFIX",
    )
    namespace_selector: str | None = setting(
        "--namespace-selector",
        "label selector for workspace namespaces",
        default=None,
        group=KUBERNETES,
        metavar="SELECTOR",
    )
    service_account: str = setting(
        "--service-account",
        "service account the workspace pods run as",
        parse=_matching("a DNS-1123 name", r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?"),
        default="workspace",
        group=KUBERNETES,
        metavar="NAME",
    )
    fic_prefix: str = setting(
        "--fic-prefix", "FIC name prefix; it marks the FICs this job owns", default="coder-ws-", metavar="PREFIX"
    )
    max_fics_per_identity: int = setting(
        "--max-fics-per-identity", "FIC limit per identity (Entra: 20)", parse=int_at_least(1), default=20, group=AZURE
    )
    max_deletes: int | None = setting(
        "--max-deletes",
        "refuse plans deleting more (default: max(10, 25% of ours))",
        parse=int_at_least(0),
        default=None,
        group=SAFETY,
    )
    allow_mass_delete: bool = switch("--allow-mass-delete", "override the delete guard", group=SAFETY)
    shard_hash: str = setting(
        "--shard-hash",
        "the shard rule for namespaces whose ServiceAccount names no identity: crc32 or sha1 (a Terraform "
        "template can compute sha1, see docs/fic-reconcile.md)",
        parse=one_of(*SHARD_RULES),
        default="crc32",
    )
    relocation_grace: timedelta = setting(
        "--relocation-grace",
        "keep a relocated namespace's old FIC until the new one has existed this long (Entra propagation)",
        parse=parse_duration,  # never negative: it accepts no sign
        default=timedelta(hours=1),
    )
    state_namespace: str | None = setting(
        "--state-namespace",
        "namespace of the relocation record ConfigMap (default: the pod's own namespace)",
        parse=_matching("a DNS-1123 label", r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"),
        default=None,
        group=KUBERNETES,
        metavar="NAMESPACE",
    )
    state_configmap: str = setting(
        "--state-configmap",
        "name of the ConfigMap in which this job records relocations",
        parse=_matching("a DNS-1123 name", r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?"),
        default=DEFAULT_NAME,
        group=KUBERNETES,
        metavar="NAME",
    )
    concurrency: int = setting("--concurrency", "identities written in parallel", parse=int_at_least(1), default=4)
    max_run_seconds: float = setting(
        "--max-run-seconds",
        "start no write after this many seconds (keep it under the Job's activeDeadlineSeconds); the rest is "
        "deferred to the next run",
        parse=parse_positive_seconds,
        default=600.0,
        metavar="SECONDS",
    )
    arm_writes_per_second: float = setting(
        "--arm-writes-per-second",
        "pace FIC writes and deletes to this rate (bursts of 4 s worth), well under ARM's throttle",
        parse=parse_rate,
        default=5.0,
        group=AZURE,
        metavar="PER_SECOND",
    )
    mode: str = setting(
        "--mode",
        "fic: one FIC per workspace namespace; identity-binding: one AKS identity binding per pool identity and "
        "Kubernetes RBAC naming the workspace ServiceAccounts, our per-namespace FICs pruned; both: the two at once, "
        "for the migration (docs/identity-bindings.md)",
        env="CWJ_FIC_MODE",
        parse=one_of(*MODES),
        default="fic",
    )
    aks_cluster_id: str | None = setting(
        "--aks-cluster-id",
        "the managed cluster's ARM resource id, where the identity bindings live (required unless --mode fic)",
        env="CWJ_AKS_CLUSTER_ID",
        parse=parse_cluster_id,
        default=None,
        group=AZURE,
        metavar="RESOURCE_ID",
    )
    known_issuers: tuple[str, ...] = setting(
        "--known-issuers",
        "OIDC issuers besides --issuer that may hold FICs on pool identities (other clusters sharing the pool); "
        "any other issuer there is a foreign-issuer finding",
        parse=parse_https_url,
        default=(),
        repeatable=True,
        group=AZURE,
    )
    pushgateway_url: str | None = setting(
        "--pushgateway-url", "Prometheus Pushgateway", parse=parse_service_url, default=None, group=OUTPUT
    )
    probe: bool = switch(
        "--probe",
        "after creating FICs, mint a short-lived token for each new namespace's workspace ServiceAccount and "
        "exchange it at Entra until granted: time to usable (needs create on serviceaccounts/token; "
        "docs/fic-reconcile.md)",
    )
    probe_seconds: float = setting(
        "--probe-seconds",
        "longest the probe waits for Entra to grant a new namespace's exchange; below --max-run-seconds, and "
        "never past the run budget",
        parse=parse_positive_seconds,
        default=120.0,
    )
    probe_max_namespaces: int = setting(
        "--probe-max-namespaces",
        "probe at most this many of the namespaces a run created a FIC for (a sample: each costs Entra requests)",
        parse=int_at_least(1),
        default=10,
    )

    def check(self) -> None:
        self.arm_target()  # an unknown or mistyped ARM host is refused before any token exists
        if not self.namespace_prefix and not self.namespace_selector:  # kube-system, default, the job's own ...
            raise ConfigError(
                label_of(FicSettings, "namespace_prefix"),
                "is empty and no --namespace-selector (CWJ_NAMESPACE_SELECTOR) narrows the namespaces: every "
                "namespace would get a FIC; expected a prefix such as ameide-ws-, or a selector",
            )
        if self.probe and self.probe_seconds >= self.max_run_seconds:
            raise ConfigError(
                label_of(FicSettings, "probe_seconds"),
                f"expected fewer seconds than --max-run-seconds ({self.max_run_seconds:g}): the probe runs inside "
                f"the run budget, got {self.probe_seconds:g}",
            )
        self._check_mode()
        longest, shortest = self.fic_prefix + "a" * MAX_NAMESPACE, self.fic_prefix + "a"
        if not (FIC_NAME.fullmatch(longest) and FIC_NAME.fullmatch(shortest)):
            raise ConfigError(
                label_of(FicSettings, "fic_prefix"),
                f"expected 2-{120 - MAX_NAMESPACE} characters of [a-zA-Z0-9-_] starting with a letter or digit, "
                f"so that prefix + any namespace is a valid FIC name, got {self.fic_prefix!r}",
            )

    def _check_mode(self) -> None:
        if self.mode == "fic":
            return
        if not self.aks_cluster_id:
            raise ConfigError(
                label_of(FicSettings, "aks_cluster_id"),
                f"is required with --mode {self.mode}: expected the managed cluster's ARM resource id "
                "(/subscriptions/<uuid>/resourceGroups/<group>/providers/Microsoft.ContainerService/managedClusters/"
                "<name>)",
            )
        if not RBAC_PREFIX.fullmatch(self.fic_prefix):
            raise ConfigError(
                label_of(FicSettings, "fic_prefix"),
                f"with --mode {self.mode} it also names ClusterRoles and AKS identity bindings: expected 1-27 of "
                f"lower-case letters, digits and '-', starting with a letter, got {self.fic_prefix!r}",
            )

    def cluster(self) -> tuple[str, str, str]:
        """(subscription, resource group, name) of --aks-cluster-id."""
        found = CLUSTER_ID.fullmatch(self.aks_cluster_id or "")
        if found is None:
            raise ConfigError(label_of(FicSettings, "aks_cluster_id"), "is required here")
        return found.group(1).lower(), found.group(2), found.group(3)

    def binding_policy(self) -> BindingPolicy:
        cluster = self.cluster()[1:] if self.mode != "fic" else ("", "")
        return BindingPolicy(self.mode, self.subscription_id, self.resource_group, self.fic_prefix, cluster)

    def arm_target(self) -> ArmTarget:
        try:
            return arm_target(self.arm_endpoint, self.allow_custom_arm_endpoint, self.arm_audience)
        except ArmTargetError as exc:
            raise ConfigError(label_of(FicSettings, exc.setting), exc.problem) from None

    def policy(self) -> Policy:
        return Policy(
            self.issuer,
            self.service_account,
            self.fic_prefix,
            self.namespace_prefix,
            self.max_fics_per_identity,
            self.max_deletes,
            self.allow_mass_delete,
            self.shard_hash,
            self.relocation_grace,
            self.known_issuers,
        )
