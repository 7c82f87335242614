"""Azure Key Vault, secrets data plane (api-version 2026-04-01), one vault per host:port.

Sources (shared/api-specs/azure/): `keyvault-secrets/2026-04-01/secrets.json` and its examples [spec];
NOTES.md §2 (SDK wire format, challenge auth, error bodies) [sdk][lab][field]. Other facts are cited where
they are used. What is not implemented (backup/restore, certificates, keys) answers 404/405.

This module holds the emulator's dialect and routes; request rules and error bodies are in rules.py,
the secret/version/deleted-secret state, JSON shapes and paging in store.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from tests.emulators.core import Emulator, HttpError, Request, Response, route
from tests.emulators.entra.emulator import TokenRejected
from tests.emulators.keyvault import rbac, rules, throttle
from tests.emulators.keyvault.store import (
    DeletedSecret,
    SecretStore,
    SecretVersion,
    StoredSecret,
    deleted_bundle,
    deleted_item,
    page_body,
    secret_bundle,
    secret_item,
)

# Eventual consistency after delete and recover, in seconds of the emulated clock. Real Key Vault shows both:
# after DELETE, GET /deletedsecrets/{name} answers 404 for seconds (azure-sdk-for-js recordings, and the SDK's
# own DeleteRecoverPollingMethod docstring) and a PUT meanwhile gets ObjectIsBeingDeleted (NOTES §2.3); after
# recover, a PUT gets ObjectIsBeingRecovered even once GET already answers 200 (terraform-provider-azurerm
# #12285, azure-sdk-for-net#31581). Writes are blocked for max(read, write) after a recover.
T = TypeVar("T")
DEFAULT_SETTINGS: dict[str, float] = {
    "delete_delay_seconds": 0.0,
    "recover_read_delay_seconds": 0.0,
    "recover_write_delay_seconds": 0.0,
}


class KeyVaultEmulator(Emulator):
    service = "keyvault"

    def reset(self) -> None:
        self.store = SecretStore()
        self.settings: dict[str, Any] = {**DEFAULT_SETTINGS, **throttle.DEFAULTS}
        self.throttle = throttle.VaultThrottle()
        # The baseline: the jobs' identity may do everything with secrets (it also seeds the vaults in tests and
        # the demo); tests narrow it to the README's roles (tests/e2e/test_keyvault_sync_rbac.py).
        principal = self.platform.baseline.principal_id(self.platform.baseline.jobs_identity)
        self.role_assignments = (rbac.Assignment(principal, "Key Vault Secrets Officer"),)

    def configure(self, settings: dict[str, Any]) -> dict[str, Any]:
        known = {*DEFAULT_SETTINGS, *throttle.DEFAULTS, "role_assignments"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"{self.service} settings are {sorted(known)}; unknown {unknown}")
        assignments = rbac.parse_assignments(settings["role_assignments"]) if "role_assignments" in settings else None
        for key, value in settings.items():
            if key in throttle.DEFAULTS:
                throttle.validate(key, value)
            elif key != "role_assignments" and (
                not isinstance(value, int | float) or isinstance(value, bool) or value < 0
            ):
                raise ValueError(f"{self.service} setting {key} must be a number of seconds >= 0, got {value!r}")
        for key, value in settings.items():
            if key == "time_scale":
                self.throttle.clock.set_scale(float(value))
            if key in DEFAULT_SETTINGS:
                self.settings[key] = float(value)
            elif key in throttle.DEFAULTS:
                self.settings[key] = value
        if assignments is not None:
            self.role_assignments = assignments
        return {**self.settings, "role_assignments": [vars(a) for a in self.role_assignments]}

    # ---- dialect: errors, challenge, api-version ----------------------------------------------------------

    def error(self, status: int, code: str, message: str, inner: str | None = None) -> Response:
        headers = {"WWW-Authenticate": self._challenge()} if status == 401 else {}
        return rules.error_response(status, code, message, inner, headers)

    def extra_headers(self) -> dict[str, str]:
        return {
            "Cache-Control": "no-cache",
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": "1.9.0.0-emulator",
        }

    def _challenge(self) -> str:
        return rules.challenge(self.platform.baseline.tenant_id)

    def authenticate(self, req: Request) -> None:
        """The bearer check comes first, before any route, body or parameter validation (NOTES §2.4: the SDK's
        first request is a body-less copy that must get the challenge, not a 400)."""
        header = req.headers.get("Authorization")
        try:
            self.platform.entra.verify_bearer(header, rules.RESOURCE)
        except TokenRejected as exc:
            if exc.reason == "missing":
                req.op = "challenge"  # the SDK's handshake, not an attempt at the operation: keeps op counts honest
            message = rules.rejection_message(exc, header, self.platform.baseline.tenant_id)
            resp = self.error(401, "Unauthorized", message)
            raise HttpError(resp.status, resp.body, resp.headers, resp.content_type) from None
        rules.check_api_version(req.q("api-version"))

    def admit(self, req: Request) -> None:
        """The vault's throttle (throttle.py), then its data-plane RBAC (rbac.py): a throttled request is refused
        before it is authorized, and neither runs the operation."""
        self.throttle.admit(req.op, self.settings)
        claims = rules.unverified_claims(req.headers.get("Authorization"))  # verified by authenticate()
        name = req.params.get("name")
        vault = f"kv-{self.service.replace('_', '-')}"
        rbac.check(self.role_assignments, req.op, name, claims, vault, self.platform.baseline.tenant_id)

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
        name = rules.valid_name(req.params["name"])
        body = rules.json_body(req)
        value = rules.secret_value(body.get("value"))
        self.platform.remember_secret(value)
        with self.lock:
            now = self._now()
            self.store.refuse_if_deleted(name, now)
            secret = self.store.secrets.get(name.lower())
            if secret is not None:
                self.store.refuse_if_recovering(secret, now)
            attrs = rules.attributes(body.get("attributes"))
            version = SecretVersion(
                version=uuid.uuid4().hex,
                value=value,
                content_type=rules.content_type(body.get("contentType")),
                tags=rules.tags(body.get("tags")),
                enabled=attrs.get("enabled", True),
                nbf=attrs.get("nbf"),
                exp=attrs.get("exp"),
                created=int(now),
                updated=int(now),
            )
            secret = self.store.add_version(name, version)
            return self._ok(secret_bundle(req.base_url, secret, version, with_value=True))

    @route("GET", r"/secrets/(?P<name>[^/]+)/?", "secret.get")
    @route("GET", r"/secrets/(?P<name>[^/]+)/(?P<version>(?!versions$)[^/]+)", "secret.get")
    def get_secret(self, req: Request) -> Response:
        with self.lock:
            secret, version = self._version(req)
            if not version.enabled:
                raise rules.secret_disabled()
            # nbf/exp are not enforced on get: "A secret's get operation will work for not-yet-valid and expired
            # secrets" [doc] azure-docs about-secrets.md.
            return self._ok(secret_bundle(req.base_url, secret, version, with_value=True))

    @route("PATCH", r"/secrets/(?P<name>[^/]+)/(?P<version>[^/]*)", "secret.update")
    def update_secret(self, req: Request) -> Response:
        body = rules.json_body(req)
        with self.lock:
            secret, version = self._version(req)
            self.store.refuse_if_recovering(secret, self._now())
            # validate the whole request before changing anything: a 400 leaves the version as it was
            attrs = rules.attributes(body.get("attributes"))
            content_type = rules.content_type(body["contentType"]) if "contentType" in body else version.content_type
            tags = rules.tags(body["tags"]) if "tags" in body else version.tags  # replaced whole, never merged
            version.content_type, version.tags = content_type, tags
            version.enabled = attrs.get("enabled", version.enabled)
            version.nbf = attrs.get("nbf", version.nbf)
            version.exp = attrs.get("exp", version.exp)
            version.updated = int(self._now())
            return self._ok(secret_bundle(req.base_url, secret, version, with_value=False))

    @route("DELETE", r"/secrets/(?P<name>[^/]+)", "secret.delete")
    def delete_secret(self, req: Request) -> Response:
        with self.lock:
            name = rules.valid_name(req.params["name"])
            now = self._now()
            secret = self.store.readable(name, now)
            self.store.refuse_if_recovering(secret, now)
            record = self.store.delete(secret, now, now + self.settings["delete_delay_seconds"])
            return self._ok(deleted_bundle(req.base_url, record))

    @route("GET", r"/secrets", "secret.list")
    def list_secrets(self, req: Request) -> Response:
        with self.lock:
            now = self._now()
            live = self.store.live(now)
            items = ((s.name.upper(), s) for s in live)
            return self._page(req, items, lambda s: secret_item(req.base_url, s, s.latest, False), "/secrets")

    @route("GET", r"/secrets/(?P<name>[^/]+)/versions", "secret.versions")
    def list_versions(self, req: Request) -> Response:
        with self.lock:
            name = rules.valid_name(req.params["name"])
            secret = self.store.listable(name, self._now())
            # A name with no live secret (never created, soft-deleted, or still being recovered) lists no versions:
            # 200 and an empty page, not 404 -- azure-sdk-for-net's live recording GetSecretVersionsNonExisting
            # (tests/api_specs/azure/keyvault-secrets/recordings/). Ordered by version id, not by time: the real
            # skiptoken encodes "secret/NAME/VERSIONID" (GetSecretVersions example).
            versions = secret.versions.values() if secret else ()
            items = ((v.version.upper(), v) for v in versions)
            path = f"/secrets/{secret.name if secret else name}/versions"
            return self._page(req, items, lambda v: secret_item(req.base_url, secret, v, True), path)

    # ---- deleted secrets --------------------------------------------------------------------------------------

    @route("GET", r"/deletedsecrets", "deleted.list")
    def list_deleted(self, req: Request) -> Response:
        with self.lock:
            now = self._now()
            visible = [d for d in self.store.deleted.values() if d.visible_at <= now]
            items = ((d.secret.name.upper(), d) for d in visible)
            return self._page(req, items, lambda d: deleted_item(req.base_url, d), "/deletedsecrets")

    @route("GET", r"/deletedsecrets/(?P<name>[^/]+)", "deleted.get")
    def get_deleted(self, req: Request) -> Response:
        with self.lock:
            return self._ok(deleted_bundle(req.base_url, self._visible_deleted(req)))

    @route("POST", r"/deletedsecrets/(?P<name>[^/]+)/recover", "deleted.recover")
    def recover_deleted(self, req: Request) -> Response:
        with self.lock:
            record = self._visible_deleted(req)
            now, s = self._now(), self.settings
            readable_at = now + s["recover_read_delay_seconds"]
            writable_at = now + max(s["recover_read_delay_seconds"], s["recover_write_delay_seconds"])
            secret = self.store.recover(record, readable_at, writable_at)
            return self._ok(secret_bundle(req.base_url, secret, secret.latest, with_value=False))

    @route("DELETE", r"/deletedsecrets/(?P<name>[^/]+)", "deleted.purge")
    def purge_deleted(self, req: Request) -> Response:
        with self.lock:
            self.store.purge(self._visible_deleted(req))
            return Response(204)

    # ---- helpers -----------------------------------------------------------------------------------------------

    def _now(self) -> float:
        now = self.platform.clock.timestamp()
        self.store.purge_expired(now)
        return now

    def _version(self, req: Request) -> tuple[StoredSecret, SecretVersion]:
        name = rules.valid_name(req.params["name"])
        return self.store.version(name, req.params.get("version", ""), self._now())

    def _visible_deleted(self, req: Request) -> DeletedSecret:
        name = rules.valid_name(req.params["name"])
        return self.store.visible_deleted(name, self._now())

    def _ok(self, body: dict[str, Any]) -> Response:
        return Response(200, body, content_type=rules.JSON_UTF8)

    def _page(
        self, req: Request, items: Iterable[tuple[str, T]], render: Callable[[T], dict[str, Any]], path: str
    ) -> Response:
        """`maxresults` 1-25 (default 25), then the page after `$skiptoken` (see keyvault_store.page_body)."""
        size = rules.max_results(req.q("maxresults"))
        marker = rules.skip_marker(req.q("$skiptoken"))
        return self._ok(page_body(req.base_url, path, items, render, size, marker))
