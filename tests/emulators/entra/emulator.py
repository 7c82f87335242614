"""Entra ID: the client-assertion token grant that WorkloadIdentityCredential uses, checked the way Entra
checks it for a managed identity, and the bearer tokens the ARM and Key Vault emulators verify.

Sources: shared/api-specs/azure/NOTES.md §3 (the only request azure-identity makes is the token POST;
error bodies and AADSTS codes; case-sensitive FIC matching since Aug 2024, Azure/login#517).

FIC propagation ([doc] "Important considerations and restrictions for federated identity credentials",
learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations, §"Time for federated credential
changes to propagate"): "It takes time for the federated identity credential to be propagated throughout a region
after being initially configured. A token request made several minutes after configuring the federated identity
credential may fail ... During this time window, an authorization request might fail with error message:
`AADSTS70021: No matching federated identity record found for presented assertion.`" So a FIC created or changed
through the ARM emulator matches only `fic_propagation_seconds` (default 180: "several minutes") later on the
platform's emulated clock; until then Entra matches what it had before (nothing for a new FIC, the old issuer/
subject for an update) and refuses an assertion only the new FIC would match with AADSTS70021 -- as
`invalid_request`, HTTP 400, with the assertion's issuer, subject and audience, the form quoted in
Azure/azure-workload-identity docs/book/src/troubleshooting.md. Seeded FICs (the jobs' own) count as long
propagated. Real propagation fades out (the doc: "the percentage of failures will drop"); here it is one step. A
deleted FIC stops matching at once (real caches may lag); both are listed in tests/emulators/README.md.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

import jwt

from tests.emulators.core import Emulator, HttpError, Request, Response, route
from tests.emulators.platform import SigningKey

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME_S = 3599  # like the real service; < 300 would make azure-core refresh on every call


class TokenRejected(Exception):
    """A bearer token another emulator must refuse; `reason` is one of missing/invalid/expired/audience."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


DEFAULTS: dict[str, Any] = {"fic_propagation_seconds": 180.0}  # [doc] "several minutes" (module docstring)


class EntraEmulator(Emulator):
    service = "entra"

    def reset(self) -> None:
        self.settings = dict(DEFAULTS)
        if not hasattr(self, "signing_key"):
            self.signing_key = SigningKey("entra-emulator")  # kept across resets: issued tokens stay verifiable

    def configure(self, settings: dict[str, Any]) -> dict[str, Any]:
        for key, value in settings.items():
            if key not in DEFAULTS:
                raise ValueError(f"entra settings are {sorted(DEFAULTS)}; got {key!r}")
            if not (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0):
                raise ValueError(f"{key}: expected a number of seconds >= 0")
            self.settings[key] = float(value)
        return dict(self.settings)

    # ---- what the other emulators call ----------------------------------------------------------------

    def verify_bearer(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """Check an `Authorization: Bearer` header for `audience` (trailing slash ignored)."""
        if not authorization or not authorization.startswith("Bearer "):
            raise TokenRejected("missing", "The 'Authorization' header is missing.")
        token = authorization[len("Bearer ") :].strip()
        try:
            claims = self.signing_key.verify(token, None, self.platform.clock.timestamp())
        except jwt.ExpiredSignatureError:
            raise TokenRejected("expired", "The access token has expired.") from None
        except jwt.InvalidTokenError as exc:
            raise TokenRejected("invalid", f"The access token is invalid: {exc}") from None
        if str(claims.get("aud", "")).rstrip("/") != audience.rstrip("/"):
            raise TokenRejected("audience", f"The access token has an invalid audience {claims.get('aud')!r}.")
        if claims.get("tid") != self.platform.baseline.tenant_id:
            raise TokenRejected("invalid", "The access token is from the wrong issuer.")
        return claims

    # ---- the wire protocol ----------------------------------------------------------------------------

    def error(self, status: int, code: str, message: str) -> Response:
        return self._aad_error(status, code, message, 0)

    def _aad_error(self, status: int, error: str, description: str, code: int) -> Response:
        now = self.platform.clock.now()
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        text = f"{description} Trace ID: {trace} Correlation ID: {corr} Timestamp: {now:%Y-%m-%d %H:%M:%SZ}"
        return Response(
            status,
            {
                "error": error,
                "error_description": text,
                "error_codes": [code] if code else [],
                "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
                "trace_id": trace,
                "correlation_id": corr,
                "error_uri": f"{self.url}/error?code={code}",
            },
        )

    def _refuse(self, code: int, error: str, text: str) -> HttpError:
        resp = self._aad_error(400 if error != "invalid_client" else 401, error, f"AADSTS{code}: {text}", code)
        return HttpError(resp.status, resp.body)

    @route("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration", "openid_configuration")
    def openid_configuration(self, req: Request) -> Response:
        tenant = self._tenant(req.params["tenant"])
        base = f"{self.url}/{tenant}"
        return Response(
            200,
            {
                "issuer": f"{self.url}/{tenant}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
            },
        )

    @route("GET", r"/(?P<tenant>[^/]+)/discovery/v2\.0/keys", "keys")
    def keys(self, req: Request) -> Response:
        self._tenant(req.params["tenant"])
        return Response(200, {"keys": [self.signing_key.jwk()]})

    def _tenant(self, tenant: str) -> str:
        if tenant.lower() not in {self.platform.baseline.tenant_id, "organizations", "common"}:
            raise self._refuse(
                90002,
                "invalid_request",
                f"Tenant '{tenant}' not found. Check to make sure you have "
                "the correct tenant ID and are signing into the correct cloud.",
            )
        return tenant

    @route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", "token")
    def token(self, req: Request) -> Response:
        if req.params["tenant"].lower() != self.platform.baseline.tenant_id:
            self._tenant(req.params["tenant"])
        form = {
            k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()
        }  # unknown fields ignored
        if form.get("grant_type") != "client_credentials":
            raise self._refuse(70003, "unsupported_grant_type", "The app requested an unsupported grant type.")
        if form.get("client_assertion_type") != JWT_BEARER or not form.get("client_assertion"):
            raise self._refuse(
                7000218,
                "invalid_client",
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            raise self._refuse(
                1002012,
                "invalid_scope",
                f"The provided value for scope {scope} is not valid. "
                "Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
            )
        client_id = form.get("client_id", "")
        identity = self.platform.arm.identity_by_client_id(client_id)
        if identity is None:
            raise self._refuse(
                700016,
                "unauthorized_client",
                f"Application with identifier '{client_id}' was not "
                f"found in the directory '{self.platform.baseline.tenant_id}'.",
            )
        self._check_assertion(form["client_assertion"], client_id)
        mirid = (
            f"/subscriptions/{self.platform.baseline.subscription_id}/resourcegroups/{identity['resource_group']}"
            f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{identity['name']}"
        )
        return self._issue(client_id, identity["principal_id"], scope[: -len("/.default")], mirid)

    def _check_assertion(self, assertion: str, client_id: str) -> dict[str, Any]:
        try:
            issuer = str(jwt.decode(assertion, options={"verify_signature": False}).get("iss", ""))
            key = self.platform.signing_key_for(issuer)  # the cluster's, or the identity binding proxy's
            claims = key.verify(assertion, None, self.platform.clock.timestamp())
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise self._refuse(
                700024, "invalid_client", "Client assertion is not within its valid time range."
            ) from None
        except jwt.InvalidTokenError:
            raise self._refuse(50027, "invalid_request", "JWT token is invalid or malformed.") from None
        iss, sub = claims.get("iss", ""), claims.get("sub", "")
        auds = claims.get("aud", [])
        auds = [auds] if isinstance(auds, str) else list(auds)
        try:
            self._match(self.platform.arm.propagated_credentials_of(client_id), iss, sub, auds)
        except HttpError:
            if not self._matches(self.platform.arm.federated_credentials_of(client_id), iss, sub, auds):
                raise
            raise self._refuse(  # only a FIC that has not propagated yet would match (module docstring)
                70021,
                "invalid_request",
                "No matching federated identity record found for presented assertion. "
                f"Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{','.join(auds)}'.",
            ) from None
        return claims

    def _matches(self, fics: list[dict[str, Any]], iss: str, sub: str, auds: list[str]) -> bool:
        try:
            self._match(fics, iss, sub, auds)
        except HttpError:
            return False
        return True

    def _match(self, fics: list[dict[str, Any]], iss: str, sub: str, auds: list[str]) -> None:
        # Real Entra answers the FIC mismatches as invalid_client (HTTP 401); NOTES §3.2 quotes AADSTS700213 so.
        by_issuer = [f for f in fics if f["issuer"] == iss]  # exact and case-sensitive, like Entra since 2024
        if not by_issuer:
            raise self._refuse(
                700211,
                "invalid_client",
                f"No matching federated identity record found for presented assertion issuer '{iss}'. "
                "Please note that the matching is done using a case-sensitive comparison.",
            )
        by_subject = [f for f in by_issuer if f["subject"] == sub]
        if not by_subject:
            folded = any(f["subject"].lower() == sub.lower() for f in by_issuer)
            code = 7002138 if folded else 700213
            raise self._refuse(
                code,
                "invalid_client",
                f"No matching federated identity record found for presented assertion subject '{sub}'. "
                "Check your federated identity credential Subject, Audience and Issuer against the "
                "presented assertion.",
            )
        if not any(aud in f["audiences"] for f in by_subject for aud in auds):
            raise self._refuse(
                700212,
                "invalid_client",
                f"No matching federated identity record found for presented assertion audience '{','.join(auds)}'.",
            )

    def _issue(self, client_id: str, principal_id: str, resource: str, mirid: str) -> Response:
        now = int(self.platform.clock.timestamp())
        tenant = self.platform.baseline.tenant_id
        token = self.signing_key.sign(
            {
                "aud": resource,
                "iss": f"https://sts.windows.net/{tenant}/",
                "iat": now,
                "nbf": now,
                "exp": now + TOKEN_LIFETIME_S,
                "tid": tenant,
                "appid": client_id,
                "azp": client_id,
                "oid": principal_id,
                "sub": principal_id,
                "idtyp": "app",
                "xms_mirid": mirid,  # a managed identity's token names its ARM resource id
            }
        )
        self.platform.remember_secret(token)
        return Response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_S,
                "ext_expires_in": TOKEN_LIFETIME_S,
                "access_token": token,
            },
        )
