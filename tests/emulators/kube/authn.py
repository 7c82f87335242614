"""authentication.k8s.io/v1 TokenReview, and service-account JWTs as bearer tokens, for the Kubernetes emulator:
what OpenBao's `kubernetes` auth method calls to check a pod's token (tests/emulators/vault/).

Sources (kubernetes/kubernetes):
- pkg/registry/authentication/tokenreview/storage.go: `spec.token` is required (400 `token is required for
  TokenReview in authentication`); the audiences are `spec.audiences`, else the API server's own; the answer
  is the review with `status.authenticated`, `status.error`, `status.user` and `status.audiences` (the
  intersection of the requested and the token's audiences); an authenticated review is always 201.
- staging/src/k8s.io/api/authentication/v1/types.go: TokenReview, TokenReviewStatus, UserInfo (`extra`).
- pkg/serviceaccount/jwt.go, claims.go: the issuer must be the cluster's; signature; `token audiences %q is
  invalid for the target audiences %q` (Go %q of a []string prints `["a" "b"]`); exp/nbf/iat with go-jose's
  one-minute leeway (`public.Validate(jwt.Expected{Time: now})`: `service account token has expired`, `... is
  not valid yet`, and for an `iat` in the future the opaque `... could not be validated due to unexpected
  validation error`); the ServiceAccount must still exist (the getter's NotFound) with the uid in the token
  (`service account UID (%s) does not match claim (%s)`); the user is `system:serviceaccount:<ns>:<name>`,
  uid the ServiceAccount's, groups `system:serviceaccounts`, `system:serviceaccounts:<ns>` (and
  `system:authenticated`), extra `authentication.kubernetes.io/credential-id` = `JTI=<jti>` when the token
  has a `jti` (Kubernetes >= 1.29).
- The API server's union authenticator words a refused bearer token `[invalid bearer token, <reason>]` (as
  quoted from kube-apiserver logs in kubernetes/kubernetes#135450).
- plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go: `system:auth-delegator` grants `create` on
  `tokenreviews`; without it the API server answers 403 `tokenreviews.authentication.k8s.io is forbidden:
  User "<user>" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster
  scope` (the RBAC authorizer's wording, staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters).
Not modelled: bound-object (pod, secret, node) claims, the `warnafter` stale-token metric, other authenticators
(OIDC, webhooks). Who may call TokenReview is RBAC's answer (authz.py), the reviewer's binding bootstrap.py's.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import jwt

from tests.emulators.core import HttpError, Request, Response, route
from tests.emulators.kube import meta as m

if TYPE_CHECKING:
    from tests.emulators.kube.emulator import KubeEmulator

API_AUDIENCES = ["https://kubernetes.default.svc.cluster.local"]  # also TokenRequest's default audience
LEEWAY = 60  # go-jose jwt.DefaultLeeway, which claims.go's Validate applies to exp, nbf and iat
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


def go_quote_list(values: list[str]) -> str:
    """Go's %q of a []string: `["a" "b"]`."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


class Refused(Exception):
    """A token the service-account authenticator refuses; the text is its error."""


class AuthnApi:
    """Mixed into KubeEmulator, which supplies lock, platform, objects and error()."""

    def reset_authn(self) -> None:
        """No state: who may call TokenReview is RBAC's answer (authz.py; system:auth-delegator in bootstrap.py)."""

    # ---- the service-account token authenticator ---------------------------------------------------------

    def authenticate_service_account(self: KubeEmulator, token: str, audiences: list[str]) -> dict[str, Any]:
        """The user a service-account JWT stands for, with `audiences` (the intersection). Raises Refused."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise Refused("invalid bearer token") from None  # not a JWT: no authenticator claims it
        if unverified.get("iss") != self.platform.baseline.oidc_issuer:
            raise Refused("invalid bearer token")  # another issuer's token: not a service-account token
        try:
            claims = jwt.decode(
                token,
                self.platform.cluster_key.public_pem,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError:
            raise Refused("[invalid bearer token, go-jose/go-jose: error in cryptographic primitive]") from None
        token_auds = claims.get("aud") or []
        token_auds = [token_auds] if isinstance(token_auds, str) else list(token_auds)
        matched = [a for a in audiences if a in token_auds]
        if not matched:
            raise Refused(
                f"[invalid bearer token, token audiences {go_quote_list(token_auds)} is invalid for the target "
                f"audiences {go_quote_list(audiences)}]"
            )
        self._check_times(claims)
        return {"user": self._service_account_user(claims), "audiences": matched}

    def _check_times(self: KubeEmulator, claims: dict[str, Any]) -> None:
        now = self.platform.clock.timestamp()
        if "exp" in claims and now - LEEWAY > float(claims["exp"]):
            raise Refused("[invalid bearer token, service account token has expired]")
        if "nbf" in claims and now + LEEWAY < float(claims["nbf"]):
            raise Refused("[invalid bearer token, service account token is not valid yet]")
        if "iat" in claims and now + LEEWAY < float(
            claims["iat"]
        ):  # go-jose's ErrIssuedInTheFuture: claims.go's default
            raise Refused(
                "[invalid bearer token, service account token claims could not be validated due to unexpected "
                "validation error]"
            )

    def _service_account_user(self: KubeEmulator, claims: dict[str, Any]) -> dict[str, Any]:
        private = claims.get("kubernetes.io") or {}
        ns, ref = private.get("namespace", ""), private.get("serviceaccount") or {}
        with self.lock:
            account = self.objects["serviceaccounts"].get((ns, ref.get("name", "")))
        if account is None:
            raise Refused(f'[invalid bearer token, serviceaccounts "{ref.get("name", "")}" not found]')
        uid = account["metadata"]["uid"]
        if uid != ref.get("uid"):
            raise Refused(
                f"[invalid bearer token, service account UID ({uid}) does not match claim ({ref.get('uid')})]"
            )
        extra = {CREDENTIAL_ID: [f"JTI={claims['jti']}"]} if claims.get("jti") else {}
        return {
            "username": f"system:serviceaccount:{ns}:{ref['name']}",
            "uid": uid,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
            **({"extra": extra} if extra else {}),
        }

    # ---- TokenReview ----------------------------------------------------------------------------------------

    @route("POST", r"/apis/authentication\.k8s\.io/v1/tokenreviews", "tokenreview.create")
    def token_review(self: KubeEmulator, req: Request) -> Response:
        body = m.json_body(self, req)
        spec = body.get("spec") or {}
        if not spec.get("token"):
            raise m.status_error(self, 400, "BadRequest", "token is required for TokenReview in authentication")
        audiences = list(spec.get("audiences") or API_AUDIENCES)
        try:
            result = self.authenticate_service_account(str(spec["token"]), audiences)
            status: dict[str, Any] = {"authenticated": True, **result}
        except Refused as refused:
            status = {"user": {}, "error": str(refused)}
        review = {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        return Response(201, review)

    def bearer_user(self: KubeEmulator, token: str) -> str:
        """The user a bearer token authenticates as (the API server's audience); raises HttpError 401."""
        try:
            return str(self.authenticate_service_account(token, API_AUDIENCES)["user"]["username"])
        except Refused:
            raise HttpError(401, self.error(401, "Unauthorized", "Unauthorized").body) from None
