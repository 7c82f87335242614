"""Key Vault's request rules and error bodies: what a secrets request may carry and how the vault refuses it.

Stateless (no store, no clock): every refusal is an `HttpError` in Key Vault's envelope, raised here so the
emulator's handlers stay about state. Sources as in emulator.py: [spec] `keyvault-secrets/2026-04-01`,
[doc]/[sdk]/[lab]/[field] per NOTES.md §2; facts are cited where they are used.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.emulators.core import HttpError, Request, Response
from tests.emulators.entra.emulator import TokenRejected

RESOURCE = "https://vault.azure.net"
JSON_UTF8 = "application/json; charset=utf-8"
# azure-keyvault-secrets 4.12.0 `ApiVersion`: every version the pinned SDK can send.
API_VERSIONS = ("2026-04-01", "2025-07-01", "7.6", "7.5", "7.4", "7.3", "7.2", "7.1", "7.0", "2016-10-01")
NAME_RE = re.compile(r"[0-9a-zA-Z-]{1,127}")  # spec PUT pattern; 1-127 chars [doc] about-keys-secrets-certificates
MAX_VALUE_CHARS = 25_600  # "25 KB"; az CLI: "Secret is beyond the maximum permitted length of 25600 characters."
MAX_CONTENT_TYPE, MAX_TAGS, MAX_TAG_CHARS = 255, 15, 256  # [doc] about-secrets.md
MAX_PAGE = 25  # spec: maxresults minimum 1, maximum 25
NOT_FOUND_HELP = (
    "If you recently deleted this secret you may be able to recover it using the correct recovery command. "
    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)


# ---- the error envelope --------------------------------------------------------------------------------------


def error_response(
    status: int, code: str, message: str, inner: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    if status == 429 and code == "TooManyRequests":  # the core's generic default; KV says "Throttled"
        code = "Throttled"
    body: dict[str, Any] = {"code": code, "message": message}
    if inner:
        body["innererror"] = {"code": inner}
    return Response(status, {"error": body}, dict(headers or {}), JSON_UTF8)


def fail(status: int, code: str, message: str, inner: str | None = None) -> HttpError:
    """A refusal that needs no challenge header (anything but 401: the emulator words those itself)."""
    resp = error_response(status, code, message, inner)
    return HttpError(resp.status, resp.body, resp.headers, resp.content_type)


def secret_not_found(what: str) -> HttpError:
    return fail(
        404, "SecretNotFound", f"A secret with (name/id) {what} was not found in this key vault. {NOT_FOUND_HELP}"
    )


def deleted_secret_not_found(name: str) -> HttpError:  # [field] azure-sdk-for-js recordings
    return fail(404, "SecretNotFound", f"Deleted Secret not found: {name}")


def secret_disabled() -> HttpError:  # [field] azure-sdk-for-js recording "cantgetadisabledsecret"
    return fail(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")


def being_deleted(name: str) -> HttpError:  # NOTES §2.3
    return fail(409, "Conflict", f"Secret {name} is currently being deleted.", "ObjectIsBeingDeleted")


def deleted_but_recoverable(name: str) -> HttpError:
    return fail(
        409,
        "Conflict",
        f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
        "in this state, the secret can only be recovered or purged.",
        "ObjectIsDeletedButRecoverable",
    )


def being_recovered(name: str) -> HttpError:  # text [field] terraform-provider-azurerm#12285
    return fail(
        409,
        "Conflict",
        f"Secret {name} is currently being recovered and cannot be re-created; retry later.",
        "ObjectIsBeingRecovered",
    )


# ---- authentication wording ----------------------------------------------------------------------------------


def challenge(tenant: str) -> str:
    return f'Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="{RESOURCE}"'


def rejection_message(exc: TokenRejected, header: str | None, tenant: str) -> str:
    claims = unverified_claims(header)
    if exc.reason == "missing":  # [field] azure-sdk-for-python#24557, azure-sdk-for-js recordings
        return "AKV10000: Request is missing a Bearer or PoP token."
    if exc.reason == "audience":  # [field] many write-ups quote this exact text
        return f"AKV10022: Invalid audience. Expected {RESOURCE}, found: {claims.get('aud')}."
    if claims.get("tid") not in (None, tenant):  # [field] azure-sdk-for-net recorded body
        expected = f"https://sts.windows.net/{tenant}/"
        return f"AKV10032: Invalid issuer. Expected one of {expected}, found {claims.get('iss')}."
    return f"Token validation failed: {exc}"  # expired or bad signature; text [unconfirmed]


def unverified_claims(header: str | None) -> dict[str, Any]:
    """The token's claims without checking anything: only to word a rejection like Key Vault does."""
    try:
        payload = (header or "").split(" ", 1)[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def check_api_version(version: str | None) -> None:
    if not version:  # KV requires it, "there is no default" [doc]; message text [unconfirmed]
        raise fail(400, "BadParameter", "The 'api-version' query parameter is missing.")
    if version not in API_VERSIONS:  # text from azure-sdk-for-python#28595 (a real vault's answer)
        raise fail(
            400,
            "BadParameter",
            f"The specified version ({version}) is not recognized. "
            f"Consider using the latest supported version ({API_VERSIONS[0]}).",
        )


# ---- request validation --------------------------------------------------------------------------------------


def valid_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):  # [field] the exact text appears in many public issues
        raise fail(400, "BadParameter", f"The request URI contains an invalid name: {name}")
    return name


def json_body(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        raise fail(400, "BadParameter", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise fail(400, "BadParameter", "The request body must be a JSON object.")
    return body


def secret_value(raw: Any) -> str:
    if not isinstance(raw, str):
        raise fail(400, "BadParameter", "Property 'value' is required and must be a string.")
    if len(raw) > MAX_VALUE_CHARS:
        raise fail(400, "BadParameter", f"Secret value exceeds the maximum length of {MAX_VALUE_CHARS}.")
    return raw


def attributes(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise fail(400, "BadParameter", "Property 'attributes' must be an object.")
    out: dict[str, Any] = {}
    if raw.get("enabled") is not None:
        if not isinstance(raw["enabled"], bool):
            raise fail(400, "BadParameter", "Property 'attributes.enabled' must be a boolean.")
        out["enabled"] = raw["enabled"]
    for key in ("nbf", "exp"):
        if raw.get(key) is not None:
            if not isinstance(raw[key], int) or isinstance(raw[key], bool):
                raise fail(400, "BadParameter", f"Property 'attributes.{key}' must be a unix time integer.")
            out[key] = raw[key]
    return out


def content_type(raw: Any) -> str | None:
    if raw is not None and (not isinstance(raw, str) or len(raw) > MAX_CONTENT_TYPE):
        raise fail(400, "BadParameter", f"Property 'contentType' must be a string of at most {MAX_CONTENT_TYPE}.")
    return raw


def tags(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise fail(400, "BadParameter", "Property 'tags' must map strings to strings.")
    if len(raw) > MAX_TAGS:
        raise fail(400, "BadParameter", f"The number of tags exceeds the maximum of {MAX_TAGS}.")
    if any(len(k) > MAX_TAG_CHARS or len(v) > MAX_TAG_CHARS for k, v in raw.items()):
        raise fail(400, "BadParameter", f"Tag names and values are limited to {MAX_TAG_CHARS} characters.")
    return dict(raw)


def max_results(raw: str | None) -> int:
    if raw is None:
        return MAX_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:  # text [unconfirmed]; the limit is [spec]
        raise fail(400, "BadParameter", f"The value of parameter 'maxresults' must be between 1 and {MAX_PAGE}.")
    return int(raw)


def skip_marker(token: str | None) -> str | None:
    """The `$skiptoken` back to the sort key it encodes (see keyvault_store.page_body)."""
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise fail(400, "BadParameter", "The skip token is invalid.") from None
