"""What fic-reconcile reads from the Kubernetes API, and the one thing it writes there.

Reads: every namespace (Terminating ones flagged), the `workspace` ServiceAccounts with one paged,
cluster-wide list (field selector `metadata.name=<--service-account>`), and the relocation record, a
ConfigMap in the job's own namespace. Writes: that record, with the resourceVersion it read, so two runs at
once cannot overwrite each other's (the loser gets 409 and the next run starts from what won).
RBAC (the chart): get/list namespaces and serviceaccounts; get/create/update configmaps in its namespace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.fic_reconcile.model import Namespace, Relocation
from jobs.fic_reconcile.settings import FicSettings
from jobs.fic_reconcile.state import LABELS, decode, encode
from lib.redact import first_line
from lib.settings import ConfigError, label_of

POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"  # what the Workload Identity webhook injects


@dataclass(frozen=True)
class ClusterView:
    namespaces: tuple[Namespace, ...] = ()
    namespaces_error: str = ""
    accounts_error: str = ""
    relocations: tuple[Relocation, ...] = ()
    state_error: str = ""
    state_problems: tuple[str, ...] = ()
    state_version: str | None = None


def state_namespace(s: FicSettings, pod_file: Path = POD_NAMESPACE_FILE) -> str:
    """--state-namespace, else the pod's own namespace; off-cluster it must be given (no guessing where a
    record that gates deletes lives)."""
    if s.state_namespace:
        return s.state_namespace
    try:
        return pod_file.read_text().strip()
    except OSError:
        raise ConfigError(
            label_of(FicSettings, "state_namespace"),
            "is required outside a pod: the namespace of the relocation record (the chart's release namespace)",
        ) from None


def read_cluster(api: Any, s: FicSettings, namespace: str) -> ClusterView:
    from lib.clients.kube import list_namespaces

    try:
        spaces = list_namespaces(api, s.namespace_selector)
    except Exception as exc:  # any failure: the plan may create but must not delete
        return ClusterView(namespaces_error=_one_line(exc))
    accounts, accounts_error = _client_ids(api, s.service_account)
    relocations, problems, version, state_error = _record(api, namespace, s.state_configmap)
    return ClusterView(
        tuple(Namespace(n.name, n.terminating, accounts.get(n.name), n.created) for n in spaces),
        "",
        accounts_error,
        relocations,
        state_error,
        tuple(problems),
        version,
    )


def _client_ids(api: Any, service_account: str) -> tuple[dict[str, str], str]:
    from lib.clients.kube import list_service_accounts

    try:
        listed = list_service_accounts(api, service_account)
    except Exception as exc:
        return {}, _one_line(exc)
    named = {sa.namespace: (sa.annotation(CLIENT_ID_ANNOTATION) or "").strip() for sa in listed}
    return {ns: client_id for ns, client_id in named.items() if client_id}, ""


def _record(api: Any, namespace: str, name: str) -> tuple[tuple[Relocation, ...], list[str], str | None, str]:
    from lib.clients.kube import read_config_map

    try:
        found = read_config_map(api, namespace, name)
    except Exception as exc:
        return (), [], None, f"ConfigMap {namespace}/{name}: {_one_line(exc)}"
    relocations, problems = decode(dict(found.data))
    return relocations, problems, found.resource_version, ""


def write_record(api: Any, namespace: str, name: str, record: Sequence[Relocation], version: str | None) -> None:
    from lib.clients.kube import write_config_map

    write_config_map(api, namespace, name, encode(record), version, labels=LABELS)


def kube_api(s: FicSettings) -> Any:
    from lib.clients.kube import api_client

    return api_client(os.environ, s.kube_context)


def check_context(s: FicSettings, environ: Mapping[str, str]) -> None:
    """A --kube-context the kubeconfig does not have is a configuration error (exit 2), not a blind run."""
    if not s.kube_context:
        return
    from lib.clients.kube import KubeError, kubeconfig_contexts

    label = label_of(FicSettings, "kube_context")
    try:
        names = kubeconfig_contexts(environ)
    except KubeError as exc:
        raise ConfigError(label, f"needs a kubeconfig (KUBECONFIG or ~/.kube/config): {exc}") from None
    if s.kube_context not in names:
        raise ConfigError(
            label, f"expected one of the kubeconfig's contexts ({', '.join(names) or 'none'}), got {s.kube_context!r}"
        )


def _one_line(exc: Exception) -> str:
    return first_line(f"{type(exc).__name__}: {exc}")
