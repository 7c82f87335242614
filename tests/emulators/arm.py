"""ARM Microsoft.ManagedIdentity, api-version 2024-11-30: user-assigned identities and their federated
identity credentials (FICs), the way azure-mgmt-msi 7.1.0 sees them.

Sources: shared/api-specs/azure/msi/2024-11-30 (routes, shapes, examples) and NOTES.md §1 (status codes,
error texts, the 20-FIC cap, issuer+subject uniqueness, the concurrent-write 409, paging), §4 (429).
Operations (fault/request-log names): identity.list_by_subscription, identity.list, identity.get,
identity.put, identity.delete, fic.list, fic.get, fic.put, fic.delete. Not modelled: PATCH, RBAC,
system-assigned identities, the per-identity write token bucket (inject 429s with a Fault instead).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import jwt

from tests.emulators.core import Emulator, HttpError, Request, Response, route
from tests.emulators.entra import TokenRejected

API_VERSION = "2024-11-30"
AUDIENCE = "https://management.azure.com"
# ARM accepts either management audience, with or without the slash ([field] InvalidAuthenticationTokenAudience text)
ALLOWED_AUDIENCES = (
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    AUDIENCE + "/",
    AUDIENCE,
)
IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
FIC_TYPE = IDENTITY_TYPE + "/federatedIdentityCredentials"
FIC_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}")  # spec path pattern; the SDK does not check it
API_VERSION_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
MAX_PROPERTY_CHARS = 600  # [doc] issuer/subject/audience limits; the error text is not documented

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
}


def bad_request(message: str, code: str = "BadRequest") -> HttpError:
    return HttpError(400, {"error": {"code": code, "message": message}})


def not_found(message: str, code: str = "NotFound") -> HttpError:
    return HttpError(404, {"error": {"code": code, "message": message}})


class ArmEmulator(Emulator):
    service = "arm"
    case_insensitive_paths = True

    def reset(self) -> None:
        self.settings = dict(DEFAULTS)
        self.resource_groups: dict[str, str] = {}
        self.identities: dict[tuple[str, str], dict[str, Any]] = {}
        self._writing: set[tuple[str, str]] = set()
        b = self.platform.baseline
        for i in range(b.pool_size):
            name = b.pool_identity_name(i)
            self.seed_identity(b.pool_resource_group, name, client_id=b.client_id(name))
        self.seed_identity(b.jobs_resource_group, b.jobs_identity, client_id=b.jobs_client_id)
        subject = f"system:serviceaccount:{b.jobs_namespace}:{b.jobs_service_account}"
        self.seed_fic(b.jobs_resource_group, b.jobs_identity, b.jobs_service_account, b.oidc_issuer, subject)

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
            self.settings[key] = value
        return dict(self.settings)

    # ---- seeding and the contract entra.py calls ------------------------------------------------------

    def seed_identity(
        self,
        rg: str,
        name: str,
        location: str | None = None,
        client_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create (or return) an identity directly, with a deterministic client id when one is given."""
        with self.lock:
            self.resource_groups.setdefault(rg.lower(), rg)
            key = (rg.lower(), name.lower())
            if key not in self.identities:
                b = self.platform.baseline
                self.identities[key] = {
                    "name": name,
                    "resource_group": self.resource_groups[rg.lower()],
                    "location": location or b.location,
                    "tags": dict(tags or {}),
                    "tenant_id": b.tenant_id,
                    "principal_id": b.principal_id(name) if client_id else str(uuid.uuid4()),
                    "client_id": client_id or str(uuid.uuid4()),
                    "isolation_scope": "None",
                    "fics": {},
                }
            return self.identities[key]

    def seed_fic(self, rg: str, identity: str, name: str, issuer: str, subject: str, audiences: Any = None) -> None:
        with self.lock:
            ident = self.identities[(rg.lower(), identity.lower())]
            ident["fics"][name.lower()] = {
                "name": name,
                "issuer": issuer,
                "subject": subject,
                "audiences": list(audiences or ["api://AzureADTokenExchange"]),
            }

    def identity_by_client_id(self, client_id: str) -> dict[str, Any] | None:
        with self.lock:
            for ident in self.identities.values():
                if ident["client_id"].lower() == client_id.lower():
                    return {k: v for k, v in ident.items() if k != "fics"}
        return None

    def federated_credentials_of(self, client_id: str) -> list[dict[str, Any]]:
        with self.lock:
            for ident in self.identities.values():
                if ident["client_id"].lower() == client_id.lower():
                    return [{**f, "audiences": list(f["audiences"])} for f in ident["fics"].values()]
        return []

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
            if exc.reason != "audience" or self._claims(header).get("aud") not in ALLOWED_AUDIENCES:
                raise self._unauthorized(exc.reason, header) from None
        api_version = _query(req, "api-version")
        if api_version is None:
            # [field] ARM's text, quoted in many clients: "The api-version query parameter (?api-version=) ..."
            raise bad_request(
                "The api-version query parameter (?api-version=) is required for all requests.",
                "MissingApiVersionParameter",
            )
        if api_version != API_VERSION:
            # [field] "The api-version '2020-11-01' is invalid. The supported versions are '...'."
            raise bad_request(
                f"The api-version '{api_version}' is invalid. The supported versions are '{API_VERSION}'.",
                "InvalidApiVersionParameter",
            )

    def _claims(self, header: str | None) -> dict[str, Any]:
        try:
            token = (header or "").removeprefix("Bearer ").strip()
            claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
            return claims
        except jwt.InvalidTokenError:
            return {}

    def _unauthorized(self, reason: str, header: str | None) -> HttpError:
        """ARM's 401s ([field] codes and texts as quoted in azure-sdk-for-go tests and client error maps)."""
        claims = self._claims(header)
        now = self.platform.clock.now()
        code, message = {
            "missing": ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."),
            "expired": (
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{_utc(claims.get('exp', 0))}' is earlier than current UTC "
                f"time '{now:%m/%d/%Y %I:%M:%S %p}'.",
            ),
            "audience": (
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{claims.get('aud')}'. It should "
                "exactly match with one of the allowed audiences "
                + ",".join(f"'{a}'" for a in ALLOWED_AUDIENCES)
                + ".",
            ),
        }.get(reason, ("InvalidAuthenticationToken", "The access token is invalid."))
        description = (
            "The authentication failed because of missing 'Authorization' header." if reason == "missing" else message
        )
        # authorization_uri names this platform's Entra, not login.windows.net, so a client that follows it stays local
        challenge = (
            f'Bearer authorization_uri="{self.platform.entra.url}/{self.platform.baseline.tenant_id}", '
            f'error="invalid_token", error_description="{description}"'
        )
        return HttpError(401, {"error": {"code": code, "message": message}}, {"WWW-Authenticate": challenge})

    # ---- identities -----------------------------------------------------------------------------------

    @route(
        "GET", _SUB + r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities", "identity.list_by_subscription"
    )
    def list_identities_in_subscription(self, req: Request) -> Response:
        self._subscription(req)
        with self.lock:
            items = [self._identity_json(i) for i in self.identities.values()]
        return self._page(req, items, int(self.settings["identity_page_size"]))

    @route("GET", _IDS, "identity.list")
    def list_identities(self, req: Request) -> Response:
        rg = self._resource_group(req)
        with self.lock:
            items = [self._identity_json(i) for (g, _), i in self.identities.items() if g == rg.lower()]
        return self._page(req, items, int(self.settings["identity_page_size"]))

    @route("GET", _ONE, "identity.get")
    def get_identity(self, req: Request) -> Response:
        with self.lock:
            return Response(200, self._identity_json(self._identity(req)))

    @route("PUT", _ONE, "identity.put")
    def put_identity(self, req: Request) -> Response:
        rg, name = self._resource_group(req), req.params["name"]
        body = _json_object(req)
        location, tags = body.get("location"), body.get("tags") or {}
        if not isinstance(location, str) or not location:
            # [field] ARM's text for a tracked resource without a location
            raise bad_request("The location property is required for this definition.", "LocationRequired")
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise bad_request(
                "The request content was invalid: 'tags' must map strings to strings.", "InvalidRequestContent"
            )
        scope = (body.get("properties") or {}).get("isolationScope", "None")
        if scope not in ("None", "Regional"):
            raise bad_request(f"The isolation scope '{scope}' is invalid. Expected 'None' or 'Regional'.")
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
        return self._page(req, items, int(self.settings["fic_page_size"]))

    @route("GET", _FICS + r"/(?P<fic>[^/]+)", "fic.get")
    def get_fic(self, req: Request) -> Response:
        name = _fic_name(req)
        with self.lock:
            ident = self._parent(req)
            fic = ident["fics"].get(name.lower())
            if fic is None:
                raise not_found(f"Federated Identity Credential '{name}' not found.")  # [unconfirmed] text
            return Response(200, self._fic_json(ident, fic))

    @route("PUT", _FICS + r"/(?P<fic>[^/]+)", "fic.put")
    def put_fic(self, req: Request) -> Response:
        name = _fic_name(req)
        props = _fic_properties(req)
        with self.lock:
            key = self._key(self._parent(req))
        with self._writing_to(key), self.lock:
            ident = self._parent(req)
            existing = ident["fics"].get(name.lower())
            self._check_room(ident, existing)
            self._check_unique(ident, name, props)
            fic = {"name": existing["name"] if existing else name, **props}
            ident["fics"][name.lower()] = fic
            return Response(200 if existing else 201, self._fic_json(ident, fic))

    @route("DELETE", _FICS + r"/(?P<fic>[^/]+)", "fic.delete")
    def delete_fic(self, req: Request) -> Response:
        name = _fic_name(req)
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
        if existing is None and len(ident["fics"]) >= limit:
            # [unconfirmed] NOTES §1.4: the over-limit text is not public; 400 BadRequest as suggested there
            raise bad_request(
                f"Too many Federated Identity Credentials for the managed identity '{self._identity_id(ident)}'. "
                f"A maximum of {limit} Federated Identity Credentials is supported per managed identity."
            )

    def _check_unique(self, ident: dict[str, Any], name: str, props: dict[str, Any]) -> None:
        for other in ident["fics"].values():
            same = other["issuer"] == props["issuer"] and other["subject"] == props["subject"]
            if same and other["name"].lower() != name.lower():
                # [doc] considerations §Errors; the code is configurable (NOTES §1.4)
                raise bad_request(
                    "Issuer and subject combination already exists for this Managed Identity.",
                    str(self.settings["duplicate_error_code"]),
                )

    # ---- lookups --------------------------------------------------------------------------------------

    def _subscription(self, req: Request) -> None:
        sub = req.params["sub"]
        try:
            uuid.UUID(sub)
        except ValueError:
            raise bad_request(
                f"The provided subscription identifier '{sub}' is malformed or invalid.", "InvalidSubscriptionId"
            ) from None
        if sub.lower() != self.platform.baseline.subscription_id:
            raise not_found(f"The subscription '{sub}' could not be found.", "SubscriptionNotFound")  # [field]

    def _resource_group(self, req: Request) -> str:
        self._subscription(req)
        rg = req.params["rg"]
        with self.lock:
            if rg.lower() not in self.resource_groups:
                raise not_found(f"Resource group '{rg}' could not be found.", "ResourceGroupNotFound")  # [field]
            return self.resource_groups[rg.lower()]

    def _identity(self, req: Request) -> dict[str, Any]:
        rg, name = self._resource_group(req), req.params["name"]
        ident = self.identities.get((rg.lower(), name.lower()))
        if ident is None:
            # [field] ARM's generic text, e.g. az CLI "(ResourceNotFound) The Resource '...' under resource group"
            raise not_found(
                f"The Resource '{IDENTITY_TYPE}/{name}' under resource group '{rg}' was not found. "
                "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                "ResourceNotFound",
            )
        return ident

    def _parent(self, req: Request) -> dict[str, Any]:
        self._resource_group(req)
        ident = self.identities.get((req.params["rg"].lower(), req.params["name"].lower()))
        if ident is None:
            raise not_found("The parent user-assigned identity doesn't exist.")  # [doc] considerations §Errors
        return ident

    def _key(self, ident: dict[str, Any]) -> tuple[str, str]:
        return (ident["resource_group"].lower(), ident["name"].lower())

    # ---- rendering ------------------------------------------------------------------------------------

    def _identity_id(self, ident: dict[str, Any]) -> str:
        sub = self.platform.baseline.subscription_id
        return (
            f"/subscriptions/{sub}/resourcegroups/{ident['resource_group']}/providers/{IDENTITY_TYPE}/{ident['name']}"
        )

    def _identity_json(self, ident: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self._identity_id(ident),
            "name": ident["name"],
            "type": IDENTITY_TYPE,
            "location": ident["location"],
            "tags": dict(ident["tags"]),
            "properties": {
                "tenantId": ident["tenant_id"],
                "principalId": ident["principal_id"],
                "clientId": ident["client_id"],
                "isolationScope": ident["isolation_scope"],
            },
        }

    def _fic_json(self, ident: dict[str, Any], fic: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"{self._identity_id(ident)}/federatedIdentityCredentials/{fic['name']}",
            "name": fic["name"],
            "type": FIC_TYPE,
            "properties": {"issuer": fic["issuer"], "subject": fic["subject"], "audiences": list(fic["audiences"])},
        }

    def _page(self, req: Request, items: list[dict[str, Any]], default_size: int) -> Response:
        """One page and, when more remain, an absolute `nextLink` back to this emulator (NOTES §1.5)."""
        top_text, token = _query(req, "$top"), _query(req, "$skiptoken")
        if top_text is not None and not (top_text.isdigit() and int(top_text) >= 1):
            raise bad_request(
                f"The value '{top_text}' of the query parameter '$top' is invalid; expected an integer >= 1."
            )
        size = int(top_text) if top_text is not None else default_size
        start = _decode_skiptoken(token) if token is not None else 0
        body: dict[str, Any] = {"value": items[start : start + size]}
        if start + size < len(items):
            query = f"api-version={API_VERSION}" + (f"&$top={size}" if top_text else "")
            body["nextLink"] = f"{req.base_url}{req.path}?{query}&$skiptoken={_encode_skiptoken(start + size)}"
        return Response(200, body)


def _query(req: Request, name: str) -> str | None:
    """ARM reads query parameter names case-insensitively (the examples write `$skipToken`)."""
    for key, values in req.query.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_skiptoken(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, offset = text.partition(":")
        if prefix == "offset" and offset.isdigit():
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise bad_request(f"The skip token '{token}' is invalid.")  # [unconfirmed] text


def _utc(timestamp: Any) -> str:
    return f"{datetime.fromtimestamp(float(timestamp or 0), UTC):%m/%d/%Y %I:%M:%S %p}"


def _json_object(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError as exc:
        # [field] ARM's text for an undeserialisable body
        raise bad_request(
            f"The request content was invalid and could not be deserialized: '{exc}'.", "InvalidRequestContent"
        ) from None
    if not isinstance(body, dict):
        raise bad_request("The request content was invalid and could not be deserialized.", "InvalidRequestContent")
    return body


def _fic_name(req: Request) -> str:
    name = req.params["fic"]
    if not FIC_NAME.fullmatch(name):
        raise bad_request(f"Federated Identity Credential name '{name}' is invalid.")  # [doc] considerations §Errors
    return name


def _fic_properties(req: Request) -> dict[str, Any]:
    """The body checks of NOTES §1.4, in the order a client most likely trips them."""
    props = _json_object(req).get("properties")
    if not isinstance(props, dict) or not props:
        raise bad_request("Federated Identity Credential from HTTP body has empty properties")  # [doc]
    issuer, subject, audiences = props.get("issuer"), props.get("subject"), props.get("audiences")
    if not issuer or not subject or not audiences:
        raise bad_request(  # [field] zioproto/istio-aks-example#6
            "The request format was unexpected. Federated Identity Credential must specify "
            "'issuer', 'subject' and 'audience'."
        )
    if not isinstance(issuer, str) or not isinstance(subject, str) or not isinstance(audiences, list):
        raise bad_request("The request content was invalid and could not be deserialized.", "InvalidRequestContent")
    if len(audiences) != 1 or not isinstance(audiences[0], str) or not audiences[0]:
        raise bad_request("Federated identity credentials must have exactly one audience.")  # [doc]
    for label, value in (("issuer", issuer), ("subject", subject), ("audience", audiences[0])):
        if len(value) > MAX_PROPERTY_CHARS:
            raise bad_request(f"Federated Identity Credential {label} is longer than {MAX_PROPERTY_CHARS} characters.")
    parts = urlsplit(issuer)
    if parts.scheme != "https" or not parts.netloc or issuer != issuer.strip():
        # [unconfirmed] text; OIDC issuers are https URLs and Entra cannot fetch discovery from anything else
        raise bad_request(f"Federated Identity Credential issuer '{quote(issuer, safe=':/')}' must be an https URL.")
    return {"issuer": issuer, "subject": subject, "audiences": [audiences[0]]}
