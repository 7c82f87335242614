"""ARM's request checks and error bodies for Microsoft.ManagedIdentity: the api-version, the bearer token's
401s, resource names, request bodies, the 20-FIC cap and issuer+subject uniqueness.

Sources: shared/api-specs/azure/msi/2024-11-30 and NOTES.md §1 (status codes, error texts, the 20-FIC cap,
issuer+subject uniqueness). Tags: [doc] documented, [field] quoted from real responses, [unconfirmed] guessed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import jwt

from tests.emulators.core import HttpError, Request

API_VERSION = "2024-11-30"
AUDIENCE = "https://management.azure.com"
# ARM accepts either management audience, with or without the slash ([field] InvalidAuthenticationTokenAudience text)
ALLOWED_AUDIENCES = (
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    AUDIENCE + "/",
    AUDIENCE,
)
FIC_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}")  # spec path pattern; the SDK does not check it
API_VERSION_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
MAX_PROPERTY_CHARS = 600  # [doc] issuer/subject/audience limits; the error text is not documented


def bad_request(message: str, code: str = "BadRequest") -> HttpError:
    return HttpError(400, {"error": {"code": code, "message": message}})


def not_found(message: str, code: str = "NotFound") -> HttpError:
    return HttpError(404, {"error": {"code": code, "message": message}})


# ---- api-version and the bearer token -------------------------------------------------------------------


def check_api_version(req: Request, expected: str = API_VERSION) -> None:
    api_version = query_param(req, "api-version")
    if api_version is None:
        # [field] ARM's text, quoted in many clients: "The api-version query parameter (?api-version=) ..."
        raise bad_request(
            "The api-version query parameter (?api-version=) is required for all requests.",
            "MissingApiVersionParameter",
        )
    if api_version != expected:
        # [field] "The api-version '2020-11-01' is invalid. The supported versions are '...'."
        raise bad_request(
            f"The api-version '{api_version}' is invalid. The supported versions are '{expected}'.",
            "InvalidApiVersionParameter",
        )


def claims_of(header: str | None) -> dict[str, Any]:
    try:
        token = (header or "").removeprefix("Bearer ").strip()
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        return claims
    except jwt.InvalidTokenError:
        return {}


def unauthorized(reason: str, header: str | None, now: datetime, authorization_uri: str) -> HttpError:
    """ARM's 401s ([field] codes and texts as quoted in azure-sdk-for-go tests and client error maps)."""
    claims = claims_of(header)
    code, message = {
        "missing": ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."),
        "expired": (
            "ExpiredAuthenticationToken",
            f"The access token expiry UTC time '{utc_text(claims.get('exp', 0))}' is earlier than current UTC "
            f"time '{now:%m/%d/%Y %I:%M:%S %p}'.",
        ),
        "audience": (
            "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource '{claims.get('aud')}'. It should "
            "exactly match with one of the allowed audiences " + ",".join(f"'{a}'" for a in ALLOWED_AUDIENCES) + ".",
        ),
    }.get(reason, ("InvalidAuthenticationToken", "The access token is invalid."))
    description = (
        "The authentication failed because of missing 'Authorization' header." if reason == "missing" else message
    )
    challenge = (
        f'Bearer authorization_uri="{authorization_uri}", error="invalid_token", error_description="{description}"'
    )
    return HttpError(401, {"error": {"code": code, "message": message}}, {"WWW-Authenticate": challenge})


def query_param(req: Request, name: str) -> str | None:
    """ARM reads query parameter names case-insensitively (the examples write `$skipToken`)."""
    for key, values in req.query.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


def utc_text(timestamp: Any) -> str:
    return f"{datetime.fromtimestamp(float(timestamp or 0), UTC):%m/%d/%Y %I:%M:%S %p}"


# ---- names and bodies ------------------------------------------------------------------------------------


def json_object(req: Request) -> dict[str, Any]:
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


def fic_name(req: Request) -> str:
    name = req.params["fic"]
    if not FIC_NAME.fullmatch(name):
        raise bad_request(f"Federated Identity Credential name '{name}' is invalid.")  # [doc] considerations §Errors
    return name


def identity_properties(req: Request) -> tuple[str, dict[str, Any], str]:
    """The identity PUT body: (location, tags, isolation scope)."""
    body = json_object(req)
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
    return location, tags, scope


def fic_properties(req: Request) -> dict[str, Any]:
    """The body checks of NOTES §1.4, in the order a client most likely trips them."""
    props = json_object(req).get("properties")
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


def check_room(ident: dict[str, Any], existing: dict[str, Any] | None, limit: int, identity_id: str) -> None:
    if existing is None and len(ident["fics"]) >= limit:
        # [unconfirmed] NOTES §1.4: the over-limit text is not public; 400 BadRequest as suggested there
        raise bad_request(
            f"Too many Federated Identity Credentials for the managed identity '{identity_id}'. "
            f"A maximum of {limit} Federated Identity Credentials is supported per managed identity."
        )


def check_unique(ident: dict[str, Any], name: str, props: dict[str, Any], duplicate_code: str) -> None:
    for other in ident["fics"].values():
        same = other["issuer"] == props["issuer"] and other["subject"] == props["subject"]
        if same and other["name"].lower() != name.lower():
            # [doc] considerations §Errors; the code is configurable (NOTES §1.4)
            raise bad_request(
                "Issuer and subject combination already exists for this Managed Identity.",
                duplicate_code,
            )
