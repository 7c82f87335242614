"""A small client over azure-mgmt-containerservice: the identity bindings of one AKS managed cluster
(`Microsoft.ContainerService/managedClusters/identityBindings`, api-version 2026-08-01). The same credential,
cloud audience, timeouts and retry rule as arm_msi.py: the SDK keeps only connection/read retries and every
status-based retry (429 with Retry-After, 5xx, bounded) is arm_msi.call_arm's.

A create is a long-running operation: ARM answers 201 with an Azure-AsyncOperation to poll (the SDK's
ARMPolling honours Retry-After); the wait is bounded by the caller's run budget, and a binding still
provisioning when it runs out is reported as such (the next run sees it in the list). The PUT and the polls are
retried apart: a transient poll failure polls the same operation again, never PUTs again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from azure.core.credentials import TokenCredential
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    IdentityBinding,
    IdentityBindingManagedIdentityProfile,
    IdentityBindingProperties,
)

from lib.clients.arm_msi import WRITE_BACKOFF, call_arm, sdk_transport
from lib.clients.arm_types import ObservedBinding
from lib.retry import Backoff

POLL_SECONDS = 5.0  # between polls when ARM sends no Retry-After (the SDK's default is 30)


class AksBindings:
    def __init__(
        self,
        credential: TokenCredential,
        cluster: tuple[str, str, str],  # (subscription, resource group, cluster name)
        endpoint: str,
        scope: str,
        on_retry: Callable[[Exception, int, float], None] | None = None,
        backoff: Backoff = WRITE_BACKOFF,
    ) -> None:
        subscription, self.resource_group, self.cluster = cluster
        self._on_retry = on_retry
        self._backoff = backoff
        self._client = ContainerServiceClient(
            credential,
            subscription,
            base_url=endpoint,
            credential_scopes=[scope],
            polling_interval=POLL_SECONDS,
            **sdk_transport(),
        )

    def list(self) -> list[ObservedBinding]:
        """Every binding on the cluster, across all pages (the pager follows nextLink)."""
        ops = self._client.identity_bindings
        return call_arm(
            lambda: [_observed(b) for b in ops.list_by_managed_cluster(self.resource_group, self.cluster)],
            self._backoff,
            self._on_retry,
            what=f"list identity bindings of {self.cluster}",
        )

    def create(self, name: str, identity_id: str, within: float | None = None) -> ObservedBinding:
        """PUT the binding and wait for provisioning, at most `within` seconds; the binding as ARM last said."""
        body = IdentityBinding(
            properties=IdentityBindingProperties(
                managed_identity=IdentityBindingManagedIdentityProfile(resource_id=identity_id)
            )
        )
        ops = self._client.identity_bindings
        started = time.monotonic()
        first = call_arm(
            lambda: ops.begin_create_or_update(self.resource_group, self.cluster, name, body),
            self._backoff,
            self._on_retry,
            within,
            what=f"put identity binding {self.cluster}/{name}",
        )
        # A failed poll resumes the same operation from the PUT's continuation token (a new poller, no second PUT):
        # retrying the PUT instead meets ARM's 409 OperationNotAllowed while the first operation runs, and hides
        # the poll's own error. Only one poller polls at a time: the first one's thread ended with its error.
        token = first.continuation_token()
        left = None if within is None else max(0.0, within - (time.monotonic() - started))
        pollers = iter([first])

        def wait() -> ObservedBinding:
            poller = next(pollers, None) or ops.begin_create_or_update(
                self.resource_group, self.cluster, name, body, continuation_token=token
            )
            done = poller.result(timeout=left)
            if done is None or not poller.done():
                return ObservedBinding(name, identity_id, "", "Creating")
            return _observed(done)

        return call_arm(wait, self._backoff, self._on_retry, left, what=f"poll identity binding {self.cluster}/{name}")

    def close(self) -> None:
        self._client.close()


def _observed(binding: Any) -> ObservedBinding:
    props = binding.properties
    identity = getattr(props, "managed_identity", None)
    issuer = getattr(props, "oidc_issuer", None)
    return ObservedBinding(
        str(binding.name),
        str(getattr(identity, "resource_id", "") or ""),
        str(getattr(identity, "client_id", "") or ""),
        _text(getattr(props, "provisioning_state", "")),
        str(getattr(issuer, "oidc_issuer_url", "") or ""),
    )


def _text(value: Any) -> str:
    """A str-valued enum (the SDK's IdentityBindingProvisioningState) as its wire value, not its Python name."""
    return str(getattr(value, "value", value) or "")
