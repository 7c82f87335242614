"""Kubernetes namespaces through the official client: in-cluster config in a pod, KUBECONFIG otherwise.

Lists read every page (`limit`/`continue`); a `410 Expired` continue token restarts the list from the
beginning, as the API's own message advises, a bounded number of times.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

PAGE_SIZE = 500
RESTARTS_ON_EXPIRED = 2


class KubeError(Exception):
    """A failed Kubernetes call, as one line: status, reason and the API's message."""


def in_cluster(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and not environ.get("KUBECONFIG")


def core_api(environ: Mapping[str, str]) -> Any:
    """A CoreV1Api for the pod's own cluster, or the KUBECONFIG file's current context."""
    try:
        if in_cluster(environ):
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return client.CoreV1Api(client.ApiClient(configuration))
        api_client = config.new_client_from_config(config_file=environ.get("KUBECONFIG") or None)  # type: ignore[no-untyped-call]
        return client.CoreV1Api(api_client)
    except config.ConfigException as exc:
        raise KubeError(f"no usable Kubernetes configuration: {exc}") from None


def describe(exc: ApiException) -> str:
    message = exc.reason or ""
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(exc.body or "{}").get("message") or message
    return f"{exc.status} {exc.reason}: {message}"


def namespace_names(api: Any, label_selector: str | None = None, page_size: int = PAGE_SIZE) -> list[str]:
    """Every namespace name matching the selector, across all pages."""
    for _ in range(RESTARTS_ON_EXPIRED + 1):
        try:
            return _all_pages(api, label_selector, page_size)
        except ApiException as exc:
            if exc.status != 410:
                raise KubeError(describe(exc)) from None
    raise KubeError("410 Expired: the namespace list kept changing under paging; try again")


def _all_pages(api: Any, label_selector: str | None, page_size: int) -> list[str]:
    names: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": page_size}
        if label_selector:
            kwargs["label_selector"] = label_selector
        if token:
            kwargs["_continue"] = token
        page = api.list_namespace(**kwargs)
        names += [item.metadata.name for item in page.items]
        token = page.metadata._continue if page.metadata else None
        if not token:
            return names
