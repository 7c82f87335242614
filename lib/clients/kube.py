"""Kubernetes namespaces through the official client: in-cluster config in a pod, KUBECONFIG otherwise.

Lists read every page (`limit`/`continue`); a `410 Expired` continue token restarts the list from the
beginning, as the API's own message advises, a bounded number of times. A 429 or 5xx restarts it too, within
lib/retry.py's deadline; every request has a timeout (the client's default is to wait forever).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from lib import limits
from lib.retry import Backoff, call_with_retry, retry_after_seconds

PAGE_SIZE = 500
RESTARTS_ON_EXPIRED = 2
LIST_BACKOFF = Backoff(base=0.5, cap=10.0, deadline=60.0, max_attempts=4)


class KubeError(Exception):
    """A failed Kubernetes call, as one line: status, reason and the API's message."""


def in_cluster(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and not environ.get("KUBECONFIG")


def core_api(environ: Mapping[str, str]) -> Any:
    """A CoreV1Api for the pod's own cluster, or the KUBECONFIG file's current context."""
    return client.CoreV1Api(api_client(environ))


def api_client(environ: Mapping[str, str]) -> Any:
    """An ApiClient (server, credentials, TLS) for the pod's own cluster, or the KUBECONFIG file's current context."""
    try:
        if in_cluster(environ):
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return client.ApiClient(configuration)
        return config.new_client_from_config(config_file=environ.get("KUBECONFIG") or None)  # type: ignore[no-untyped-call]
    except config.ConfigException as exc:
        raise KubeError(f"no usable Kubernetes configuration: {exc}") from None


class NamespaceApi:
    """CoreV1Api.list_namespace alone, through the same ApiClient and the same generated request and response
    code: CoreV1Api's own module takes 0.3-0.5 s to import, on every run of a job that starts every few minutes
    (BENCHMARKS.md). `namespace_names` accepts either."""

    def __init__(self, api: Any) -> None:
        self.api_client = api

    def list_namespace(
        self,
        limit: int | None = None,
        label_selector: str | None = None,
        _continue: str | None = None,
        _request_timeout: Any = None,
    ) -> Any:
        params = (("continue", _continue), ("labelSelector", label_selector), ("limit", limit))
        request = self.api_client.param_serialize(
            "GET",
            "/api/v1/namespaces",
            query_params=[(key, value) for key, value in params if value is not None],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(*request, _request_timeout=_request_timeout)
        response.read()
        return self.api_client.response_deserialize(response, {"200": "V1NamespaceList"}).data  # raises ApiException


def describe(exc: ApiException) -> str:
    message = exc.reason or ""
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(exc.body or "{}").get("message") or message
    return f"{exc.status} {exc.reason}: {message}"


def namespace_names(api: Any, label_selector: str | None = None, page_size: int = PAGE_SIZE) -> list[str]:
    """Every namespace name matching the selector, across all pages."""
    for _ in range(RESTARTS_ON_EXPIRED + 1):
        try:
            return call_with_retry(
                lambda: _all_pages(api, label_selector, page_size),
                transient=_is_transient,
                retry_after=lambda e: retry_after_seconds(getattr(e, "headers", None)),
                backoff=LIST_BACKOFF,
            )
        except ApiException as exc:
            if exc.status != 410:
                raise KubeError(describe(exc)) from None
        except (urllib3.exceptions.HTTPError, ValueError) as exc:  # unreachable, timed out, an answer not JSON
            raise KubeError(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}") from None
    raise KubeError("410 Expired: the namespace list kept changing under paging; try again")


def _is_transient(exc: Exception) -> bool:
    return isinstance(exc, ApiException) and (exc.status == 429 or (exc.status or 0) >= 500)


def _all_pages(api: Any, label_selector: str | None, page_size: int) -> list[str]:
    names: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": page_size, "_request_timeout": (limits.timeout(10), limits.timeout(60))}
        if label_selector:
            kwargs["label_selector"] = label_selector
        if token:
            kwargs["_continue"] = token
        page = api.list_namespace(**kwargs)
        names += [item.metadata.name for item in page.items]
        token = page.metadata._continue if page.metadata else None
        if not token:
            return names
