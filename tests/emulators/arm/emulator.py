"""ARM Microsoft.ManagedIdentity, api-version 2024-11-30: user-assigned identities and their federated
identity credentials (FICs), the way azure-mgmt-msi 7.1.0 sees them.

Sources: shared/api-specs/azure/msi/2024-11-30 (routes, shapes, examples) and NOTES.md §1 (status codes,
error texts, the 20-FIC cap, issuer+subject uniqueness, the concurrent-write 409, paging), §4 (429).
Operations (fault/request-log names): identity.list_by_subscription, identity.list, identity.get,
identity.put, identity.delete, fic.list, fic.get, fic.put, fic.delete. ARM's throttling (token buckets per
subscription, principal and operation type; 429 + Retry-After; the x-ms-ratelimit-remaining-* headers) and,
off by default, Microsoft.ManagedIdentity's own per-subscription/per-resource limits: throttle.py, which cites
its sources. Not modelled: PATCH, RBAC, system-assigned identities, tenant-level buckets (every route here
names a subscription, and ARM counts such requests against the subscription).
Layout: validation.py (api-version, 401s, names and bodies, ARM error bodies), resources.py (ids,
JSON shapes, paging), store.py (the identity store, seeding, the contract entra/emulator.py calls, lookups); this
module is the emulator: settings, authentication, the routes and the concurrent-FIC-write 409.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.emulators.arm.aks import AKS_API_VERSION, AKS_DEFAULTS, AksApi
from tests.emulators.arm.resources import FIC_TYPE, IDENTITY_TYPE, page
from tests.emulators.arm.store import IdentityStore
from tests.emulators.arm.throttle import GLOBAL_FACTOR, MSI_LIMITS, Buckets, ScaledClock, kind_of
from tests.emulators.arm.validation import (
    ALLOWED_AUDIENCES,
    API_VERSION,
    API_VERSION_SHAPE,
    AUDIENCE,
    FIC_NAME,
    MAX_PROPERTY_CHARS,
    bad_request,
    check_api_version,
    check_room,
    check_unique,
    claims_of,
    fic_name,
    fic_properties,
    identity_properties,
    not_found,
    unauthorized,
)
from tests.emulators.core import HttpError, Request, Response, route
from tests.emulators.entra.emulator import TokenRejected

__all__ = [  # the names this module offered before the split, still importable from here
    "ALLOWED_AUDIENCES",
    "API_VERSION",
    "API_VERSION_SHAPE",
    "AUDIENCE",
    "DEFAULTS",
    "FIC_NAME",
    "FIC_TYPE",
    "IDENTITY_TYPE",
    "MAX_PROPERTY_CHARS",
    "ArmEmulator",
    "bad_request",
    "not_found",
]

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_IDS = _SUB + r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ManagedIdentity/userAssignedIdentities"
_ONE = _IDS + r"/(?P<name>[^/]+)"
_FICS = _ONE + r"/federatedIdentityCredentials"

DEFAULTS: dict[str, Any] = {
    "fic_write_delay_s": 0.04,  # how long one FIC write holds its identity (the window for the 409)
    "fic_page_size": 10,  # FIC list page size without $top (so an identity near the cap pages)
    "identity_page_size": 10,
    "fic_limit": 20,  # [doc] "A maximum of 20 federated identity credentials"
    "duplicate_error_code": "BadRequest",  # [unconfirmed] NOTES §1.4: documented 400, one field log says Conflict
    "conflict_retry_after": None,  # NOTES §1.4: keep the 409 without Retry-After, else azure-core retries it
    # ARM's token buckets (throttle.py cites request-limits-and-throttling): on, at the documented sizes and rates
    "throttling": True,
    "read_bucket": 250,
    "read_refill_per_s": 25.0,
    "write_bucket": 200,
    "write_refill_per_s": 10.0,
    "delete_bucket": 200,
    "delete_refill_per_s": 10.0,
    "time_scale": 1.0,  # emulated bucket seconds per real second (refill runs this many times faster)
    # Microsoft.ManagedIdentity's own limits (throttle.MSI_LIMITS): burst and scope undocumented, so off by default
    "msi_throttling": False,
    "msi_resource": "identity",  # what "per resource" counts: the parent "identity" or each "fic"
    **AKS_DEFAULTS,  # Microsoft.ContainerService identity bindings (aks.py)
}
_KIND_SETTINGS = {"reads": "read", "writes": "write", "deletes": "delete"}


class ArmEmulator(AksApi, IdentityStore):
    service = "arm"
    case_insensitive_paths = True

    def reset(self) -> None:
        self.settings = dict(DEFAULTS)
        self.resource_groups: dict[str, str] = {}
        self.identities: dict[tuple[str, str], dict[str, Any]] = {}
        self._writing: set[tuple[str, str]] = set()
        self.bucket_clock = ScaledClock(1.0)
        self.buckets = Buckets(self.bucket_clock)
        b = self.platform.baseline
        for i in range(b.pool_size):
            name = b.pool_identity_name(i)
            self.seed_identity(b.pool_resource_group, name, client_id=b.client_id(name))
        self.seed_identity(b.jobs_resource_group, b.jobs_identity, client_id=b.jobs_client_id)
        subject = f"system:serviceaccount:{b.jobs_namespace}:{b.jobs_service_account}"
        self.seed_fic(b.jobs_resource_group, b.jobs_identity, b.jobs_service_account, b.oidc_issuer, subject)
        self.reset_aks()

    def configure(self, settings: dict[str, Any]) -> dict[str, Any]:
        for key, value in settings.items():
            if key not in DEFAULTS:
                raise ValueError(f"arm settings are {sorted(DEFAULTS)}; got {key!r}")
            if key == "fic_write_delay_s" and not (isinstance(value, int | float) and value >= 0):
                raise ValueError("fic_write_delay_s: expected a number of seconds >= 0")
            if key in ("fic_page_size", "identity_page_size", "fic_limit") and not (
                isinstance(value, int) and value >= 1
            ):
                raise ValueError(f"{key}: expected an integer >= 1")
            if key == "duplicate_error_code" and not (isinstance(value, str) and value):
                raise ValueError("duplicate_error_code: expected a non-empty string")
            if key == "conflict_retry_after" and value is not None and not isinstance(value, int | str):
                raise ValueError("conflict_retry_after: expected null or seconds")
            if key in ("throttling", "msi_throttling") and not isinstance(value, bool):
                raise ValueError(f"{key}: expected true or false")
            if key.endswith("_bucket") and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{key}: expected an integer >= 1")
            if (key.endswith("_refill_per_s") or key == "time_scale") and not (
                isinstance(value, int | float) and not isinstance(value, bool) and value > 0
            ):
                raise ValueError(f"{key}: expected a number > 0")
            if key == "msi_resource" and value not in ("identity", "fic"):
                raise ValueError('msi_resource: expected "identity" or "fic"')
            self._check_aks_setting(key, value)
            if key == "time_scale":
                self.bucket_clock.set_scale(float(value))
            self.settings[key] = value
        return dict(self.settings)

    # ---- dialect --------------------------------------------------------------------------------------

    def error(self, status: int, code: str, message: str) -> Response:
        return Response(status, {"error": {"code": code, "message": message}})  # common-types v4 ErrorResponse

    def extra_headers(self) -> dict[str, str]:
        request_id = str(uuid.uuid4())
        return {"x-ms-request-id": request_id, "x-ms-correlation-request-id": request_id}

    def authenticate(self, req: Request) -> None:
        header = req.headers.get("Authorization")
        try:
            self.platform.entra.verify_bearer(header, AUDIENCE)
        except TokenRejected as exc:
            if exc.reason != "audience" or claims_of(header).get("aud") not in ALLOWED_AUDIENCES:
                raise self._unauthorized(exc.reason, header) from None
        check_api_version(req, AKS_API_VERSION if req.op.startswith("aks.") else API_VERSION)

    # ---- throttling (throttle.py: sources, the clock, Retry-After) ----------------------------------------

    def admit(self, req: Request) -> None:
        """ARM's subscription buckets first; a request they let through reaches the resource provider (and has
        spent its token) even when Microsoft.ManagedIdentity's own limit then refuses it."""
        if self.settings["throttling"]:
            self._arm_buckets(req)
        if self.settings["msi_throttling"] and not req.op.startswith("aks."):
            self._msi_buckets(req)

    @staticmethod
    def _check_aks_setting(key: str, value: Any) -> None:
        if key == "binding_lro_seconds" and not (
            isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        ):
            raise ValueError("binding_lro_seconds: expected a number of seconds >= 0")
        if key in ("binding_retry_after", "binding_page_size") and not (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1
        ):
            raise ValueError(f"{key}: expected an integer >= 1")
        if key == "binding_fic_limit_phase" and value not in ("async", "sync"):
            raise ValueError('binding_fic_limit_phase: expected "async" or "sync"')
        if key == "api_server_vnet_integration" and not isinstance(value, bool):
            raise ValueError("api_server_vnet_integration: expected true or false")

    def _arm_buckets(self, req: Request) -> None:
        kind, sub = kind_of(req.method), req.params["sub"].lower()
        claims = claims_of(req.headers.get("Authorization"))
        actor = str(claims.get("oid") or claims.get("appid") or "unknown")
        prefix = _KIND_SETTINGS[kind]
        size, rate = float(self.settings[f"{prefix}_bucket"]), float(self.settings[f"{prefix}_refill_per_s"])
        admitted, left, wait = self.buckets.take(
            [
                (("arm", sub, actor, kind), size, rate),  # per subscription, principal and operation type
                (("arm", sub, "*", kind), size * GLOBAL_FACTOR, rate * GLOBAL_FACTOR),  # all principals
            ]
        )
        req.response_headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = str(left[0])
        req.response_headers[f"x-ms-ratelimit-remaining-subscription-global-{kind}"] = str(left[1])
        if not admitted:
            after = self.bucket_clock.real_seconds(wait)
            message = (
                f"Number of '{kind[:-1]}' requests for subscription '{sub}' actor '{actor}' exceeded. Please try "
                f"again after '{after}' seconds after additional tokens are available. Refer to "
                "https://aka.ms/arm-throttling for additional information."
            )  # [field] velero-io/velero#9171
            body = {"error": {"code": "SubscriptionRequestsThrottled", "message": message}}
            raise HttpError(429, body, {"Retry-After": str(after)})

    def _msi_buckets(self, req: Request) -> None:
        op = req.op.rsplit(".", 1)[-1]
        op = "list" if op.startswith("list") else op
        per_subscription, per_resource = MSI_LIMITS[op]
        p = {k: v.lower() for k, v in req.params.items()}
        resource = "/".join(p.get(k, "") for k in ("rg", "name"))
        if self.settings["msi_resource"] == "fic" and "fic" in p:
            resource += "/" + p["fic"]
        sub = p["sub"]
        admitted, _, wait = self.buckets.take(
            [
                (("msi", sub, op), max(1.0, per_subscription), per_subscription),  # burst: one second's worth
                (("msi", sub, op, resource), max(1.0, per_resource), per_resource),
            ]
        )
        if not admitted:
            after = self.bucket_clock.real_seconds(wait)
            # [doc] "If you exceed a throttling limit, you receive an HTTP 429 error"; the body is [unconfirmed]
            message = (
                f"Too many '{op}' requests for Microsoft.ManagedIdentity. Please try again after '{after}' seconds."
            )
            raise HttpError(
                429, {"error": {"code": "TooManyRequests", "message": message}}, {"Retry-After": str(after)}
            )

    def _unauthorized(self, reason: str, header: str | None) -> HttpError:
        # authorization_uri names this platform's Entra, not login.windows.net, so a client that follows it stays local
        authorization_uri = f"{self.platform.entra.url}/{self.platform.baseline.tenant_id}"
        return unauthorized(reason, header, self.platform.clock.now(), authorization_uri)

    # ---- identities -----------------------------------------------------------------------------------

    @route(
        "GET", _SUB + r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities", "identity.list_by_subscription"
    )
    def list_identities_in_subscription(self, req: Request) -> Response:
        self._subscription(req)
        with self.lock:
            items = [self._identity_json(i) for i in self.identities.values()]
        return page(req, items, int(self.settings["identity_page_size"]))

    @route("GET", _IDS, "identity.list")
    def list_identities(self, req: Request) -> Response:
        rg = self._resource_group(req)
        with self.lock:
            items = [self._identity_json(i) for (g, _), i in self.identities.items() if g == rg.lower()]
        return page(req, items, int(self.settings["identity_page_size"]))

    @route("GET", _ONE, "identity.get")
    def get_identity(self, req: Request) -> Response:
        with self.lock:
            return Response(200, self._identity_json(self._identity(req)))

    @route("PUT", _ONE, "identity.put")
    def put_identity(self, req: Request) -> Response:
        rg, name = self._resource_group(req), req.params["name"]
        location, tags, scope = identity_properties(req)
        with self.lock:
            key = (rg.lower(), name.lower())
            existing = self.identities.get(key)
            if existing is not None and existing["location"].lower() != location.lower():
                raise bad_request(
                    f"The resource '{name}' already exists in location '{existing['location']}' in resource group "
                    f"'{rg}'. A resource with the same name cannot be created in location '{location}'.",
                    "InvalidResourceLocation",
                )
            ident = existing or self.seed_identity(rg, name, location)  # new identities get fresh uuids
            ident["tags"], ident["isolation_scope"] = dict(tags), scope
            return Response(200 if existing else 201, self._identity_json(ident))

    @route("DELETE", _ONE, "identity.delete")
    def delete_identity(self, req: Request) -> Response:
        rg = self._resource_group(req)
        with self.lock:
            gone = self.identities.pop((rg.lower(), req.params["name"].lower()), None)
        return Response(200 if gone else 204)

    # ---- federated identity credentials ---------------------------------------------------------------

    @route("GET", _FICS, "fic.list")
    def list_fics(self, req: Request) -> Response:
        with self.lock:
            ident = self._parent(req)
            items = [self._fic_json(ident, f) for f in ident["fics"].values()]
        return page(req, items, int(self.settings["fic_page_size"]))

    @route("GET", _FICS + r"/(?P<fic>[^/]+)", "fic.get")
    def get_fic(self, req: Request) -> Response:
        name = fic_name(req)
        with self.lock:
            ident = self._parent(req)
            fic = ident["fics"].get(name.lower())
            if fic is None:
                raise not_found(f"Federated Identity Credential '{name}' not found.")  # [unconfirmed] text
            return Response(200, self._fic_json(ident, fic))

    @route("PUT", _FICS + r"/(?P<fic>[^/]+)", "fic.put")
    def put_fic(self, req: Request) -> Response:
        name = fic_name(req)
        props = fic_properties(req)
        with self.lock:
            key = self._key(self._parent(req))
        with self._writing_to(key), self.lock:
            ident = self._parent(req)
            existing = ident["fics"].get(name.lower())
            self._check_room(ident, existing)
            self._check_unique(ident, name, props)
            fic, existed = self.write_fic(ident, name, props)
            return Response(200 if existed else 201, self._fic_json(ident, fic))

    @route("DELETE", _FICS + r"/(?P<fic>[^/]+)", "fic.delete")
    def delete_fic(self, req: Request) -> Response:
        name = fic_name(req)
        with self.lock:
            key = self._key(self._parent(req))
        with self._writing_to(key), self.lock:
            gone = self._parent(req)["fics"].pop(name.lower(), None)
        return Response(200 if gone else 204)

    @contextmanager
    def _writing_to(self, key: tuple[str, str]) -> Iterator[None]:
        """Hold the identity for the write's processing time; an overlapping write on it gets the 409."""
        with self.lock:
            if key in self._writing:
                raise self._conflict(key)
            self._writing.add(key)
            delay = float(self.settings["fic_write_delay_s"])
        try:
            time.sleep(delay)  # outside the lock: other identities and reads proceed in parallel
            yield
        finally:
            with self.lock:
                self._writing.discard(key)

    def _conflict(self, key: tuple[str, str]) -> HttpError:
        ident = self.identities[key]
        resource_id = self._identity_id(ident).lower()  # NOTES §1.4: the real message lower-cases the id
        headers = {}
        if self.settings["conflict_retry_after"] is not None:
            headers["Retry-After"] = str(self.settings["conflict_retry_after"])
        message = (
            f"Too many Federated Identity Credentials are written concurrently for the managed identity "
            f"'{resource_id}'. Concurrent Federated Identity Credentials writes under the same managed identity "
            "are not supported."
        )
        body = {
            "error": {
                "code": "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
                "message": message,
            }
        }
        return HttpError(409, body, headers)

    def _check_room(self, ident: dict[str, Any], existing: dict[str, Any] | None) -> None:
        limit = int(self.settings["fic_limit"])
        check_room(ident, existing, limit, self._identity_id(ident))

    def _check_unique(self, ident: dict[str, Any], name: str, props: dict[str, Any]) -> None:
        check_unique(ident, name, props, str(self.settings["duplicate_error_code"]))
