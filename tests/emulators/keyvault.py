"""Azure Key Vault, secrets data plane (api-version 2026-04-01), one vault per host:port.

Sources (shared/api-specs/azure/): `keyvault-secrets/2026-04-01/secrets.json` and its examples [spec];
NOTES.md §2 (SDK wire format, challenge auth, error bodies) [sdk][lab][field]. Other facts are cited where
they are used. What is not implemented (backup/restore, certificates, keys) answers 404/405.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.core import Emulator, HttpError, Request, Response, route
from tests.emulators.entra import TokenRejected

RESOURCE = "https://vault.azure.net"
JSON_UTF8 = "application/json; charset=utf-8"
# azure-keyvault-secrets 4.12.0 `ApiVersion`: every version the pinned SDK can send.
API_VERSIONS = ("2026-04-01", "2025-07-01", "7.6", "7.5", "7.4", "7.3", "7.2", "7.1", "7.0", "2016-10-01")
# Real nextLinks carry `:443` and an old api-version whatever the request said (every list example); the SDK
# replaces it with its own when it follows the link.
NEXT_LINK_API_VERSION = "7.2"
NAME_RE = re.compile(r"[0-9a-zA-Z-]{1,127}")  # spec PUT pattern; 1-127 chars [doc] about-keys-secrets-certificates
MAX_VALUE_CHARS = 25_600  # "25 KB"; az CLI: "Secret is beyond the maximum permitted length of 25600 characters."
MAX_CONTENT_TYPE, MAX_TAGS, MAX_TAG_CHARS = 255, 15, 256  # [doc] about-secrets.md
MAX_PAGE = 25  # spec: maxresults minimum 1, maximum 25
RECOVERABLE_DAYS = 90
NOT_FOUND_HELP = (
    "If you recently deleted this secret you may be able to recover it using the correct recovery command. "
    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)
# Eventual consistency after delete and recover, in seconds of the emulated clock. Real Key Vault shows both:
# after DELETE, GET /deletedsecrets/{name} answers 404 for seconds (azure-sdk-for-js recordings, and the SDK's
# own DeleteRecoverPollingMethod docstring) and a PUT meanwhile gets ObjectIsBeingDeleted (NOTES §2.3); after
# recover, a PUT gets ObjectIsBeingRecovered even once GET already answers 200 (terraform-provider-azurerm
# #12285, azure-sdk-for-net#31581). Writes are blocked for max(read, write) after a recover.
DEFAULT_SETTINGS: dict[str, float] = {
    "delete_delay_seconds": 0.0,
    "recover_read_delay_seconds": 0.0,
    "recover_write_delay_seconds": 0.0,
}


@dataclass
class _Version:
    version: str
    value: str
    content_type: str | None
    tags: dict[str, str]
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int


@dataclass
class _Secret:
    name: str  # as first created; lookups are case-insensitive ("compare as case-insensitive strings" [doc])
    versions: dict[str, _Version] = field(default_factory=dict)  # insertion order = creation order
    readable_at: float = 0.0  # recovery still propagating before these times
    writable_at: float = 0.0

    @property
    def latest(self) -> _Version:
        return next(reversed(self.versions.values()))


@dataclass
class _Deleted:
    secret: _Secret
    deleted_date: int
    visible_at: float  # the deleted entry is not in the deleted collection before this time

    @property
    def scheduled_purge_date(self) -> int:
        return self.deleted_date + RECOVERABLE_DAYS * 86400


class KeyVaultEmulator(Emulator):
    service = "keyvault"

    def reset(self) -> None:
        self.secrets: dict[str, _Secret] = {}
        self.deleted: dict[str, _Deleted] = {}
        self.settings = dict(DEFAULT_SETTINGS)

    def configure(self, settings: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
        if unknown:
            raise ValueError(f"{self.service} settings are {sorted(DEFAULT_SETTINGS)}; unknown {unknown}")
        for key, value in settings.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{self.service} setting {key} must be a number of seconds >= 0, got {value!r}")
            self.settings[key] = float(value)
        return dict(self.settings)

    # ---- dialect: errors, challenge, api-version ----------------------------------------------------------

    def error(self, status: int, code: str, message: str, inner: str | None = None) -> Response:
        if status == 429 and code == "TooManyRequests":  # the core's generic default; KV says "Throttled"
            code = "Throttled"
        body: dict[str, Any] = {"code": code, "message": message}
        if inner:
            body["innererror"] = {"code": inner}
        headers = {"WWW-Authenticate": self._challenge()} if status == 401 else {}
        return Response(status, {"error": body}, headers, JSON_UTF8)

    def extra_headers(self) -> dict[str, str]:
        return {
            "Cache-Control": "no-cache",
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": "1.9.0.0-emulator",
        }

    def _fail(self, status: int, code: str, message: str, inner: str | None = None) -> HttpError:
        resp = self.error(status, code, message, inner)
        return HttpError(resp.status, resp.body, resp.headers, resp.content_type)

    def _challenge(self) -> str:
        tenant = self.platform.baseline.tenant_id
        return f'Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="{RESOURCE}"'

    def authenticate(self, req: Request) -> None:
        """The bearer check comes first, before any route, body or parameter validation (NOTES §2.4: the SDK's
        first request is a body-less copy that must get the challenge, not a 400)."""
        try:
            self.platform.entra.verify_bearer(req.headers.get("Authorization"), RESOURCE)
        except TokenRejected as exc:
            if exc.reason == "missing":
                req.op = "challenge"  # the SDK's handshake, not an attempt at the operation: keeps op counts honest
            raise self._fail(401, "Unauthorized", self._rejection(exc, req.headers.get("Authorization"))) from None
        version = req.q("api-version")
        if not version:  # KV requires it, "there is no default" [doc]; message text [unconfirmed]
            raise self._fail(400, "BadParameter", "The 'api-version' query parameter is missing.")
        if version not in API_VERSIONS:  # text from azure-sdk-for-python#28595 (a real vault's answer)
            raise self._fail(
                400,
                "BadParameter",
                f"The specified version ({version}) is not recognized. "
                f"Consider using the latest supported version ({API_VERSIONS[0]}).",
            )

    def _rejection(self, exc: TokenRejected, header: str | None) -> str:
        claims = _unverified_claims(header)
        tenant = self.platform.baseline.tenant_id
        if exc.reason == "missing":  # [field] azure-sdk-for-python#24557, azure-sdk-for-js recordings
            return "AKV10000: Request is missing a Bearer or PoP token."
        if exc.reason == "audience":  # [field] many write-ups quote this exact text
            return f"AKV10022: Invalid audience. Expected {RESOURCE}, found: {claims.get('aud')}."
        if claims.get("tid") not in (None, tenant):  # [field] azure-sdk-for-net recorded body
            expected = f"https://sts.windows.net/{tenant}/"
            return f"AKV10032: Invalid issuer. Expected one of {expected}, found {claims.get('iss')}."
        return f"Token validation failed: {exc}"  # expired or bad signature; text [unconfirmed]

    def not_found(self, req: Request) -> Response:
        return self._unless_unauthenticated(req) or self.error(404, "NotFound", f"No route for {req.path}")

    def method_not_allowed(self, req: Request) -> Response:
        return self._unless_unauthenticated(req) or self.error(
            405, "MethodNotAllowed", f"The requested resource does not support http method '{req.method}'."
        )

    def _unless_unauthenticated(self, req: Request) -> Response | None:
        try:
            self.authenticate(req)
        except HttpError as exc:
            return exc.response
        return None

    # ---- secrets ----------------------------------------------------------------------------------------------

    @route("PUT", r"/secrets/(?P<name>[^/]+)", "secret.set")
    def set_secret(self, req: Request) -> Response:
        name = _valid_name(self, req.params["name"])
        body = self._body(req)
        value = body.get("value")
        if not isinstance(value, str):
            raise self._fail(400, "BadParameter", "Property 'value' is required and must be a string.")
        if len(value) > MAX_VALUE_CHARS:
            raise self._fail(400, "BadParameter", f"Secret value exceeds the maximum length of {MAX_VALUE_CHARS}.")
        self.platform.remember_secret(value)
        with self.lock:
            now = self._now()
            self._refuse_if_deleted(name)
            secret = self.secrets.get(name.lower())
            if secret is not None:
                self._refuse_if_recovering(secret, now)
            attrs = _attributes(self, body.get("attributes"))
            version = _Version(
                version=uuid.uuid4().hex,
                value=value,
                content_type=_content_type(self, body.get("contentType")),
                tags=_tags(self, body.get("tags")),
                enabled=attrs.get("enabled", True),
                nbf=attrs.get("nbf"),
                exp=attrs.get("exp"),
                created=int(now),
                updated=int(now),
            )
            secret = self.secrets.setdefault(name.lower(), _Secret(name))
            secret.versions[version.version] = version
            return self._ok(self._bundle(req, secret, version, with_value=True))

    @route("GET", r"/secrets/(?P<name>[^/]+)/?", "secret.get")
    @route("GET", r"/secrets/(?P<name>[^/]+)/(?P<version>(?!versions$)[^/]+)", "secret.get")
    def get_secret(self, req: Request) -> Response:
        with self.lock:
            secret, version = self._version(req)
            if not version.enabled:  # [field] azure-sdk-for-js recording "cantgetadisabledsecret"
                raise self._fail(
                    403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled"
                )
            # nbf/exp are not enforced on get: "A secret's get operation will work for not-yet-valid and expired
            # secrets" [doc] azure-docs about-secrets.md.
            return self._ok(self._bundle(req, secret, version, with_value=True))

    @route("PATCH", r"/secrets/(?P<name>[^/]+)/(?P<version>[^/]*)", "secret.update")
    def update_secret(self, req: Request) -> Response:
        body = self._body(req)
        with self.lock:
            secret, version = self._version(req)
            self._refuse_if_recovering(secret, self._now())
            attrs = _attributes(self, body.get("attributes"))
            if "contentType" in body:
                version.content_type = _content_type(self, body["contentType"])
            if "tags" in body:
                version.tags = _tags(self, body["tags"])  # tags are replaced as a whole, never merged
            version.enabled = attrs.get("enabled", version.enabled)
            version.nbf = attrs.get("nbf", version.nbf)
            version.exp = attrs.get("exp", version.exp)
            version.updated = int(self._now())
            return self._ok(self._bundle(req, secret, version, with_value=False))

    @route("DELETE", r"/secrets/(?P<name>[^/]+)", "secret.delete")
    def delete_secret(self, req: Request) -> Response:
        with self.lock:
            name = _valid_name(self, req.params["name"])
            now = self._now()
            secret = self._readable(name, now)
            self._refuse_if_recovering(secret, now)
            del self.secrets[name.lower()]
            record = _Deleted(secret, int(now), now + self.settings["delete_delay_seconds"])
            self.deleted[name.lower()] = record
            return self._ok(self._deleted_bundle(req, record))

    @route("GET", r"/secrets", "secret.list")
    def list_secrets(self, req: Request) -> Response:
        with self.lock:
            now = self._now()
            items = [(s.name.upper(), self._item(req, s, s.latest, versioned=False)) for s in self._live(now)]
            return self._page(req, items, "/secrets")

    @route("GET", r"/secrets/(?P<name>[^/]+)/versions", "secret.versions")
    def list_versions(self, req: Request) -> Response:
        with self.lock:
            secret = self._readable(_valid_name(self, req.params["name"]), self._now())
            # Ordered by version id, not by time: the real skiptoken encodes "secret/NAME/VERSIONID" (example).
            items = [(v.version.upper(), self._item(req, secret, v, versioned=True)) for v in secret.versions.values()]
            return self._page(req, items, f"/secrets/{secret.name}/versions")

    # ---- deleted secrets --------------------------------------------------------------------------------------

    @route("GET", r"/deletedsecrets", "deleted.list")
    def list_deleted(self, req: Request) -> Response:
        with self.lock:
            now = self._now()
            visible = [d for d in self.deleted.values() if d.visible_at <= now]
            items = [(d.secret.name.upper(), self._deleted_item(req, d)) for d in visible]
            return self._page(req, items, "/deletedsecrets")

    @route("GET", r"/deletedsecrets/(?P<name>[^/]+)", "deleted.get")
    def get_deleted(self, req: Request) -> Response:
        with self.lock:
            return self._ok(self._deleted_bundle(req, self._visible_deleted(req)))

    @route("POST", r"/deletedsecrets/(?P<name>[^/]+)/recover", "deleted.recover")
    def recover_deleted(self, req: Request) -> Response:
        with self.lock:
            record = self._visible_deleted(req)
            now, s = self._now(), self.settings
            secret = record.secret
            secret.readable_at = now + s["recover_read_delay_seconds"]
            secret.writable_at = now + max(s["recover_read_delay_seconds"], s["recover_write_delay_seconds"])
            del self.deleted[secret.name.lower()]
            self.secrets[secret.name.lower()] = secret
            return self._ok(self._bundle(req, secret, secret.latest, with_value=False))

    @route("DELETE", r"/deletedsecrets/(?P<name>[^/]+)", "deleted.purge")
    def purge_deleted(self, req: Request) -> Response:
        with self.lock:
            record = self._visible_deleted(req)
            del self.deleted[record.secret.name.lower()]
            return Response(204)

    # ---- state lookups ---------------------------------------------------------------------------------------

    def _now(self) -> float:
        now = self.platform.clock.timestamp()
        for key in [k for k, d in self.deleted.items() if d.scheduled_purge_date <= now]:
            del self.deleted[key]  # the retention period ran out: the system purges
        return now

    def _live(self, now: float) -> list[_Secret]:
        return [s for s in self.secrets.values() if s.readable_at <= now]

    def _readable(self, name: str, now: float) -> _Secret:
        secret = self.secrets.get(name.lower())
        if secret is None or secret.readable_at > now:
            raise self._not_found(name)
        return secret

    def _version(self, req: Request) -> tuple[_Secret, _Version]:
        name = _valid_name(self, req.params["name"])
        secret = self._readable(name, self._now())
        wanted = req.params.get("version", "").lower()
        if not wanted:
            return secret, secret.latest
        version = secret.versions.get(wanted)
        if version is None:
            raise self._not_found(f"{name}/{req.params['version']}")
        return secret, version

    def _visible_deleted(self, req: Request) -> _Deleted:
        name = _valid_name(self, req.params["name"])
        now = self._now()
        record = self.deleted.get(name.lower())
        if record is None or record.visible_at > now:  # [field] azure-sdk-for-js recordings
            raise self._fail(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return record

    def _refuse_if_deleted(self, name: str) -> None:
        record = self.deleted.get(name.lower())
        if record is None:
            return
        if record.visible_at > self._now():
            raise self._fail(409, "Conflict", f"Secret {name} is currently being deleted.", "ObjectIsBeingDeleted")
        raise self._fail(
            409,
            "Conflict",
            f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
            "in this state, the secret can only be recovered or purged.",
            "ObjectIsDeletedButRecoverable",
        )

    def _refuse_if_recovering(self, secret: _Secret, now: float) -> None:
        if secret.writable_at > now:  # text [field] terraform-provider-azurerm#12285
            raise self._fail(
                409,
                "Conflict",
                f"Secret {secret.name} is currently being recovered and cannot be re-created; retry later.",
                "ObjectIsBeingRecovered",
            )

    def _not_found(self, what: str) -> HttpError:
        return self._fail(
            404, "SecretNotFound", f"A secret with (name/id) {what} was not found in this key vault. {NOT_FOUND_HELP}"
        )

    def _body(self, req: Request) -> dict[str, Any]:
        try:
            body = req.json()
        except ValueError:
            raise self._fail(400, "BadParameter", "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise self._fail(400, "BadParameter", "The request body must be a JSON object.")
        return body

    # ---- shapes ----------------------------------------------------------------------------------------------

    def _ok(self, body: dict[str, Any]) -> Response:
        return Response(200, body, content_type=JSON_UTF8)

    def _attrs(self, v: _Version) -> dict[str, Any]:
        attrs: dict[str, Any] = {"enabled": v.enabled}
        attrs.update({k: t for k, t in (("nbf", v.nbf), ("exp", v.exp)) if t is not None})
        attrs.update(
            created=v.created,
            updated=v.updated,
            recoveryLevel="Recoverable+Purgeable",
            recoverableDays=RECOVERABLE_DAYS,
        )
        return attrs

    def _item(self, req: Request, s: _Secret, v: _Version, versioned: bool) -> dict[str, Any]:
        """SecretItem: never a value; id without version in the secrets list, with it in the versions list."""
        item: dict[str, Any] = {"id": f"{req.base_url}/secrets/{s.name}" + (f"/{v.version}" if versioned else "")}
        item["attributes"] = self._attrs(v)
        if v.tags:
            item["tags"] = dict(v.tags)
        if v.content_type is not None:
            item["contentType"] = v.content_type
        return item

    def _bundle(self, req: Request, s: _Secret, v: _Version, with_value: bool) -> dict[str, Any]:
        bundle: dict[str, Any] = {"value": v.value} if with_value else {}
        bundle.update(self._item(req, s, v, versioned=True))
        return bundle

    def _deleted_fields(self, req: Request, d: _Deleted) -> dict[str, Any]:
        return {
            "recoveryId": f"{req.base_url}/deletedsecrets/{d.secret.name}",
            "deletedDate": d.deleted_date,
            "scheduledPurgeDate": d.scheduled_purge_date,
        }

    def _deleted_bundle(self, req: Request, d: _Deleted) -> dict[str, Any]:
        return {**self._deleted_fields(req, d), **self._bundle(req, d.secret, d.secret.latest, with_value=False)}

    def _deleted_item(self, req: Request, d: _Deleted) -> dict[str, Any]:
        return {**self._deleted_fields(req, d), **self._item(req, d.secret, d.secret.latest, versioned=False)}

    def _page(self, req: Request, items: list[tuple[str, dict[str, Any]]], path: str) -> Response:
        """`maxresults` 1-25 (default 25); the skiptoken is an opaque marker (the last sort key returned), so a
        write between pages neither repeats nor skips an item; `nextLink` is absolute and points back here."""
        size = _max_results(self, req.q("maxresults"))
        marker = _decode_marker(self, req.q("$skiptoken"))
        remaining = sorted((item for item in items if marker is None or item[0] > marker), key=lambda i: i[0])
        page = remaining[:size]
        body: dict[str, Any] = {"value": [item for _, item in page], "nextLink": None}
        if len(remaining) > size:
            token = base64.urlsafe_b64encode(page[-1][0].encode()).decode().rstrip("=")
            body["nextLink"] = (
                f"{req.base_url}{path}?api-version={NEXT_LINK_API_VERSION}&$skiptoken={token}&maxresults={size}"
            )
        return self._ok(body)


# ---- request validation (module functions: they need only the emulator's error dialect) ---------------------


def _valid_name(emu: KeyVaultEmulator, name: str) -> str:
    if not NAME_RE.fullmatch(name):  # [field] the exact text appears in many public issues
        raise emu._fail(400, "BadParameter", f"The request URI contains an invalid name: {name}")
    return name


def _attributes(emu: KeyVaultEmulator, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise emu._fail(400, "BadParameter", "Property 'attributes' must be an object.")
    out: dict[str, Any] = {}
    if raw.get("enabled") is not None:
        if not isinstance(raw["enabled"], bool):
            raise emu._fail(400, "BadParameter", "Property 'attributes.enabled' must be a boolean.")
        out["enabled"] = raw["enabled"]
    for key in ("nbf", "exp"):
        if raw.get(key) is not None:
            if not isinstance(raw[key], int) or isinstance(raw[key], bool):
                raise emu._fail(400, "BadParameter", f"Property 'attributes.{key}' must be a unix time integer.")
            out[key] = raw[key]
    return out


def _content_type(emu: KeyVaultEmulator, raw: Any) -> str | None:
    if raw is not None and (not isinstance(raw, str) or len(raw) > MAX_CONTENT_TYPE):
        raise emu._fail(400, "BadParameter", f"Property 'contentType' must be a string of at most {MAX_CONTENT_TYPE}.")
    return raw


def _tags(emu: KeyVaultEmulator, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise emu._fail(400, "BadParameter", "Property 'tags' must map strings to strings.")
    if len(raw) > MAX_TAGS:
        raise emu._fail(400, "BadParameter", f"The number of tags exceeds the maximum of {MAX_TAGS}.")
    if any(len(k) > MAX_TAG_CHARS or len(v) > MAX_TAG_CHARS for k, v in raw.items()):
        raise emu._fail(400, "BadParameter", f"Tag names and values are limited to {MAX_TAG_CHARS} characters.")
    return dict(raw)


def _max_results(emu: KeyVaultEmulator, raw: str | None) -> int:
    if raw is None:
        return MAX_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:  # text [unconfirmed]; the limit is [spec]
        raise emu._fail(400, "BadParameter", f"The value of parameter 'maxresults' must be between 1 and {MAX_PAGE}.")
    return int(raw)


def _decode_marker(emu: KeyVaultEmulator, token: str | None) -> str | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise emu._fail(400, "BadParameter", "The skip token is invalid.") from None


def _unverified_claims(header: str | None) -> dict[str, Any]:
    """The token's claims without checking anything: only to word a rejection like Key Vault does."""
    try:
        payload = (header or "").split(" ", 1)[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
