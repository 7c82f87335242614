"""Kubernetes through the official client: in-cluster config in a pod, KUBECONFIG otherwise. Namespaces (with
whether each is being deleted), the ServiceAccounts of one name across the cluster, one ConfigMap read and
written with optimistic concurrency (resourceVersion), and a TokenRequest for a ServiceAccount.

Lists read every page (`limit`/`continue`); a `410 Expired` continue token restarts the list from the
beginning, as the API's own message advises, a bounded number of times. A 429 or 5xx restarts it too, within
lib/retry.py's deadline; every request has a timeout (the client's default is to wait forever). Requests go
through the ApiClient and its generated models without CoreV1Api, whose module takes 0.3-0.5 s to import.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from lib import limits, reach
from lib.redact import first_line, register_secret
from lib.retry import Backoff, call_with_retry, retry_after_seconds

T = TypeVar("T")
R = TypeVar("R")
PAGE_SIZE = 500
RESTARTS_ON_EXPIRED = 2
LIST_BACKOFF = Backoff(base=0.5, cap=10.0, deadline=60.0, max_attempts=4)


class KubeError(Exception):
    """A failed Kubernetes call, as one line: status, reason and the API's message."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when there was an answer


def in_cluster(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and not environ.get("KUBECONFIG")


def core_api(environ: Mapping[str, str], context: str | None = None) -> Any:
    """A CoreV1Api for the pod's own cluster, or a KUBECONFIG context (`context`, else the current one)."""
    return client.CoreV1Api(api_client(environ, context))


def api_client(environ: Mapping[str, str], context: str | None = None) -> Any:
    """An ApiClient (server, credentials, TLS) for the pod's own cluster, or the KUBECONFIG file's `context` (else
    its current context). A named context always means the kubeconfig, even in a pod: an SRE in a Coder
    workspace names the cluster they mean, not the one the workspace runs in."""
    configuration = client.Configuration()
    configuration.retries = transport_retries()
    try:
        if in_cluster(environ) and not context:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return client.ApiClient(configuration)
        kubeconfig = environ.get("KUBECONFIG") or None
        return config.new_client_from_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )  # type: ignore[no-untyped-call]
    except config.ConfigException as exc:
        raise KubeError(f"no usable Kubernetes configuration: {exc}") from None


def transport_retries() -> urllib3.Retry:
    """urllib3's retries under the client: connection and read errors only. Its default (Retry(3)) also answers
    a 429/503's Retry-After by sleeping, up to Retry.DEFAULT_RETRY_AFTER_MAX (6 hours) a time, outside
    --retry-deadline and --max-run-seconds: an API server asking for an hour held the run for hours. Status
    retries are lib/retry's alone (`retrying`, `_paged`), which cap the wait and honour the deadline."""
    return urllib3.Retry(total=3, respect_retry_after_header=False)


def kubeconfig_contexts(environ: Mapping[str, str]) -> list[str]:
    """The context names of the kubeconfig (KUBECONFIG, else ~/.kube/config); KubeError when there is none."""
    try:
        contexts, _current = config.list_kube_config_contexts(config_file=environ.get("KUBECONFIG") or None)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as exc:
        raise KubeError(f"no usable kubeconfig: {exc}") from None
    return [str(c.get("name")) for c in contexts or []]


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


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    terminating: bool  # metadata.deletionTimestamp is set: the namespace is being deleted
    created: datetime | None = field(default=None, compare=False)  # metadata.creationTimestamp


def list_namespaces(api: Any, label_selector: str | None = None, page_size: int = PAGE_SIZE) -> list[NamespaceInfo]:
    """Every namespace matching the selector, across all pages; `api` is an ApiClient or a NamespaceApi."""
    ns_api = api if hasattr(api, "list_namespace") else NamespaceApi(api)

    def info(item: Any) -> NamespaceInfo:
        meta = item.metadata
        return NamespaceInfo(meta.name, meta.deletion_timestamp is not None, meta.creation_timestamp)

    return _paged("namespace list", ns_api.list_namespace, info, page_size, label_selector=label_selector)


def namespace_names(api: Any, label_selector: str | None = None, page_size: int = PAGE_SIZE) -> list[str]:
    """Every namespace name matching the selector, across all pages (Terminating ones included)."""
    return [ns.name for ns in list_namespaces(api, label_selector, page_size)]


def _paged(what: str, fetch: Callable[..., Any], convert: Callable[[Any], T], page_size: int, **query: Any) -> list[T]:
    for _ in range(RESTARTS_ON_EXPIRED + 1):
        try:
            return call_with_retry(
                lambda: _all_pages(fetch, convert, page_size, query),
                transient=_is_transient,
                retry_after=lambda e: retry_after_seconds(getattr(e, "headers", None)),
                backoff=LIST_BACKOFF,
                client="kubernetes",
                call=what,
            )
        except ApiException as exc:
            if exc.status != 410:
                raise KubeError(describe(exc)) from None
        except (urllib3.exceptions.HTTPError, ValueError) as exc:  # unreachable, timed out, an answer not JSON
            raise _transport_error(exc) from None
    raise KubeError(f"410 Expired: the {what} kept changing under paging; try again")


def _transport_error(exc: Exception) -> KubeError:
    unreachable = reach.describe(exc)
    if unreachable:
        return KubeError(f"the Kubernetes API server: {unreachable}")
    return KubeError(f"{type(exc).__name__}: {first_line(exc)}")


def _is_transient(exc: Exception) -> bool:
    return isinstance(exc, ApiException) and (exc.status == 429 or (exc.status or 0) >= 500)


def _all_pages(
    fetch: Callable[..., Any], convert: Callable[[Any], T], page_size: int, query: dict[str, Any]
) -> list[T]:
    items: list[T] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": page_size, "_request_timeout": (limits.timeout(10), limits.timeout(60))}
        kwargs.update({key: value for key, value in query.items() if value})
        if token:
            kwargs["_continue"] = token
        page = fetch(**kwargs)
        items += [convert(item) for item in page.items]
        token = page.metadata._continue if page.metadata else None
        if not token:
            return items


# ---- ServiceAccounts and ConfigMaps ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceAccountInfo:
    namespace: str
    name: str
    annotations: tuple[tuple[str, str], ...]  # sorted (key, value) pairs

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)


@dataclass(frozen=True)
class ConfigMapData:
    data: tuple[tuple[str, str], ...]  # sorted (key, value) pairs
    resource_version: str | None  # None: the ConfigMap does not exist yet


class KubeConflict(KubeError):
    """409 on a create or a replace: someone else wrote the object first; read it again."""


def _call(api: Any, method: str, path: str, response_type: str, query: Any = (), body: Any = None, **kw: Any) -> Any:
    """One request through the ApiClient (server, TLS, credentials) and the generated model code."""
    client_ = getattr(api, "api_client", api)  # a NamespaceApi or a CoreV1Api carries its ApiClient
    headers = {"Accept": "application/json", **({"Content-Type": "application/json"} if body is not None else {})}
    request = client_.param_serialize(
        method, path, query_params=list(query), header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    response = client_.call_api(*request, _request_timeout=kw.get("_request_timeout"))
    response.read()
    return client_.response_deserialize(response, {"200": response_type, "201": response_type}).data


def list_service_accounts(api: Any, name: str, page_size: int = PAGE_SIZE) -> list[ServiceAccountInfo]:
    """Every ServiceAccount called `name`, in every namespace: one paged cluster-wide list."""

    def fetch(**kwargs: Any) -> Any:
        params = {
            "limit": kwargs.get("limit"),
            "continue": kwargs.get("_continue"),
            "fieldSelector": f"metadata.name={name}",
        }
        query = [(key, value) for key, value in params.items() if value is not None]
        return _call(api, "GET", "/api/v1/serviceaccounts", "V1ServiceAccountList", query, **kwargs)

    def info(item: Any) -> ServiceAccountInfo:
        meta = item.metadata
        return ServiceAccountInfo(meta.namespace, meta.name, tuple(sorted((meta.annotations or {}).items())))

    return _paged("service account list", fetch, info, page_size)


def read_config_map(api: Any, namespace: str, name: str) -> ConfigMapData:
    """The ConfigMap's data and resourceVersion; a missing ConfigMap reads as ConfigMapData((), None)."""
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/configmaps/{quote(name, safe='')}"
    try:
        found = _retrying(lambda: _call(api, "GET", path, "V1ConfigMap", _request_timeout=_timeouts()))
    except KubeError as exc:
        if exc.status == 404:
            return ConfigMapData((), None)
        raise
    return ConfigMapData(tuple(sorted((found.data or {}).items())), found.metadata.resource_version)


def write_config_map(
    api: Any,
    namespace: str,
    name: str,
    data: Mapping[str, str],
    resource_version: str | None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Create the ConfigMap (resource_version None) or replace it only if it is still at resource_version; the new
    resourceVersion. KubeConflict when another writer got there first (409: exists already, or changed since).
    Both writes are guarded by the API server's concurrency control, so a 429/5xx is safe to try again."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(data)}
    collection = f"/api/v1/namespaces/{quote(namespace, safe='')}/configmaps"
    method, path = ("POST", collection) if resource_version is None else ("PUT", f"{collection}/{quote(name, safe='')}")
    written = _retrying(lambda: _call(api, method, path, "V1ConfigMap", body=body, _request_timeout=_timeouts()))
    return str(written.metadata.resource_version)


def paged(what: str, fetch: Callable[..., Any], convert: Callable[[Any], T], page_size: int, **query: Any) -> list[T]:
    """Every page of a list (`limit`/`continue`), restarted on 410 Expired; for sibling clients (kube_rbac.py)."""
    return _paged(what, fetch, convert, page_size, **query)


def retrying(fn: Callable[[], R]) -> R:
    """One request, again on 429/5xx within LIST_BACKOFF; KubeConflict on 409, else KubeError (with the status)."""
    return _retrying(fn)


def _timeouts() -> tuple[float, float]:
    return (limits.timeout(10), limits.timeout(30))


def _retrying(fn: Callable[[], R]) -> R:
    try:
        return call_with_retry(
            fn,
            transient=_is_transient,
            retry_after=lambda e: retry_after_seconds(getattr(e, "headers", None)),
            backoff=LIST_BACKOFF,
            client="kubernetes",
        )
    except ApiException as exc:
        error = KubeConflict if exc.status == 409 else KubeError
        raise error(describe(exc), status=exc.status) from None
    except (urllib3.exceptions.HTTPError, ValueError) as exc:
        raise _transport_error(exc) from None


# ---- TokenRequest -----------------------------------------------------------------------------------------------

MIN_TOKEN_SECONDS = 600  # the API server refuses a shorter expirationSeconds (422 "less than 10 minutes")


def request_token(api: Any, namespace: str, service_account: str, audience: str, seconds: int, timeout: float) -> str:
    """A token for the ServiceAccount from the TokenRequest API (`POST .../serviceaccounts/<name>/token`), for
    `audience` and valid `seconds` (at least 600): the same kind of JWT the kubelet projects into its pods. It is a
    credential: registered with the redactor before it is returned. One attempt, no retry (the caller keeps its own
    schedule); a failure is a KubeError carrying the HTTP status. CoreV1Api is imported here, by the one caller
    that needs it."""
    from kubernetes.client import AuthenticationV1TokenRequest, CoreV1Api, V1TokenRequestSpec

    body = AuthenticationV1TokenRequest(spec=V1TokenRequestSpec(audiences=[audience], expiration_seconds=seconds))
    core = CoreV1Api(getattr(api, "api_client", api))
    try:
        answer = core.create_namespaced_service_account_token(
            service_account, namespace, body, _request_timeout=(timeout, timeout)
        )
    except ApiException as exc:
        raise KubeError(describe(exc), status=exc.status) from None
    except (urllib3.exceptions.HTTPError, ValueError) as exc:
        raise _transport_error(exc) from None
    token = str(getattr(answer.status, "token", None) or "")
    register_secret(token)
    if not token:
        raise KubeError(f"TokenRequest for {namespace}/{service_account} answered without a token")
    return token
