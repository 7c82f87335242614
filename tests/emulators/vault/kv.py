"""Vault's KV v2 secrets engine mounted at `secret/`: versions, soft delete/undelete/destroy, metadata,
check-and-set, the mount config, and the 404 warning for v1-style paths.

Sources: shared/api-specs/vault/NOTES.md §2 (KV v2), §6 (checklist) and the source it cites:
vault-plugin-secrets-kv path_data.go/path_metadata.go/backend.go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.core import Request, Response, route
from tests.emulators.vault.wire import (
    VaultDialect,
    as_list,
    go_duration,
    go_multierror,
    go_quote,
    locked,
    parse_duration,
    rfc3339,
)

KV_WARNING = (
    "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. "
    "If using the Vault CLI, use 'vault kv get' for this operation."
)


@dataclass
class KvVersion:
    data: dict[str, Any] | None
    created: float
    deletion_time: float | None = None
    destroyed: bool = False


@dataclass
class KvKey:
    created: float
    updated: float
    versions: dict[int, KvVersion] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    custom_metadata: dict[str, str] | None = None


class KvEngine(VaultDialect):
    """The KV v2 mixin: `kv` maps a secret path to its versions; `kv_config` is the mount's config."""

    kv: dict[str, KvKey]
    kv_config: dict[str, int]

    def _now(self) -> float:
        return self.platform.clock.timestamp()

    def _is_deleted(self, version: KvVersion) -> bool:
        return version.destroyed or (version.deletion_time is not None and version.deletion_time <= self._now())

    def _version_meta(self, key: KvKey, number: int) -> dict[str, Any]:
        v = key.versions[number]
        return {
            "created_time": rfc3339(v.created),
            "custom_metadata": key.custom_metadata or None,
            "deletion_time": "" if v.deletion_time is None else rfc3339(v.deletion_time),
            "destroyed": v.destroyed,
            "version": number,
        }

    @route("GET", r"/v1/secret/data/(?P<path>.+)", "kv.read")
    @locked
    def kv_read(self, req: Request) -> Response:
        key = self.kv.get(req.params["path"])
        raw = req.q("version") or "0"
        if not re.fullmatch(r"\d+", raw):
            raise self._bad(f'error converting input {raw} for field "version"')
        if key is None:
            return self._missing()
        number = int(raw) or key.current_version
        if number not in key.versions:
            return self._missing()  # never written, or purged past max_versions
        meta = self._version_meta(key, number)
        if self._is_deleted(key.versions[number]):  # NOTES §2.1: 404 *with* the envelope, no `errors`
            return self._ok({"data": None, "metadata": meta}, status=404)
        return self._ok({"data": key.versions[number].data, "metadata": meta})

    @route("POST", r"/v1/secret/data/(?P<path>.+)", "kv.write")
    @route("PUT", r"/v1/secret/data/(?P<path>.+)", "kv.write")
    @locked
    def kv_write(self, req: Request) -> Response:
        body, path, now = self._body(req), req.params["path"], self._now()
        if body.get("data") is None:
            raise self._bad("no data provided")
        if not isinstance(body["data"], dict):
            raise self._bad(
                f'error converting input for field "data": expected a map, got {type(body["data"]).__name__}'
            )
        key = self.kv.get(path) or KvKey(now, now)
        self._check_and_set(body.get("options") or {}, key)
        number = key.current_version + 1
        after = [s for s in (key.delete_version_after, self.kv_config["delete_version_after"]) if s > 0]
        key.versions[number] = KvVersion(body["data"], now, now + min(after) if after else None)
        key.current_version, key.updated = number, now
        self._purge(key)
        self.kv[path] = key
        return self._ok(self._version_meta(key, number))

    def _check_and_set(self, options: dict[str, Any], key: KvKey) -> None:
        """path_data.go validateCheckAndSetOption."""
        if not isinstance(options, dict):
            raise self._bad('error converting input for field "options"')
        if (self.kv_config["cas_required"] or key.cas_required) and "cas" not in options:
            raise self._bad("check-and-set parameter required for this call")
        if "cas" in options:
            try:
                cas = int(str(options["cas"]).strip() or 0)  # mapstructure.WeakDecode: "1" works
            except ValueError:
                raise self._bad("error parsing check-and-set parameter") from None
            if cas != key.current_version:
                raise self._bad("check-and-set parameter did not match the current version")

    def _purge(self, key: KvKey) -> None:
        limit = max(key.max_versions, int(self.kv_config["max_versions"])) or 10
        purged = sorted(key.versions)[: max(0, len(key.versions) - limit)]
        for number in purged:
            del key.versions[number]
        if purged:
            key.oldest_version = min(key.versions)

    @route("DELETE", r"/v1/secret/data/(?P<path>.+)", "kv.delete-latest")
    @locked
    def kv_delete_latest(self, req: Request) -> Response:
        key = self.kv.get(req.params["path"])
        latest = key.versions.get(key.current_version) if key else None
        if latest is not None and not self._is_deleted(latest):
            latest.deletion_time = self._now()
        return self._no_content()

    def _versions_arg(self, req: Request) -> list[int]:
        try:
            versions = [int(v) for v in as_list(self._body(req).get("versions"))]
        except ValueError:
            raise self._bad('error converting input for field "versions"') from None
        if not versions:
            raise self._bad("no version number provided")
        return versions

    @route("POST", r"/v1/secret/(?P<action>delete|undelete|destroy)/(?P<path>.+)", "kv.versions")
    @route("PUT", r"/v1/secret/(?P<action>delete|undelete|destroy)/(?P<path>.+)", "kv.versions")
    @locked
    def kv_versions(self, req: Request) -> Response:
        numbers, key, now = self._versions_arg(req), self.kv.get(req.params["path"]), self._now()
        for number in numbers:
            version = key.versions.get(number) if key else None
            if version is None or version.destroyed:
                continue
            if req.params["action"] == "delete" and not self._is_deleted(version):
                version.deletion_time = now
            elif req.params["action"] == "undelete":
                version.deletion_time = None
            elif req.params["action"] == "destroy":
                version.destroyed, version.data = True, None
        return self._no_content()

    @route("GET", r"/v1/secret/metadata/(?P<path>.+)", "kv.metadata.read")
    @locked
    def kv_metadata_read(self, req: Request) -> Response:
        key = self.kv.get(req.params["path"])
        if key is None:
            return self._missing()
        versions = {
            str(n): {
                "created_time": rfc3339(v.created),
                "deletion_time": "" if v.deletion_time is None else rfc3339(v.deletion_time),
                "destroyed": v.destroyed,
            }
            for n, v in sorted(key.versions.items())
        }
        data = {
            "cas_required": key.cas_required,
            "created_time": rfc3339(key.created),
            "current_version": key.current_version,
            "custom_metadata": key.custom_metadata or None,
            "delete_version_after": go_duration(key.delete_version_after),
            "max_versions": key.max_versions,
            "oldest_version": key.oldest_version,
            "updated_time": rfc3339(key.updated),
            "versions": versions,
        }
        return self._ok(data)

    @route("POST", r"/v1/secret/metadata/(?P<path>.+)", "kv.metadata.write")
    @route("PUT", r"/v1/secret/metadata/(?P<path>.+)", "kv.metadata.write")
    @locked
    def kv_metadata_write(self, req: Request) -> Response:
        """path_metadata.go pathMetadataWrite: only the fields present change; custom_metadata is replaced."""
        body, now = self._body(req), self._now()
        fields = {
            k: body[k] for k in ("max_versions", "cas_required", "delete_version_after", "custom_metadata") if k in body
        }
        if not fields:
            return self._no_content()  # the fast path: nothing is created
        custom = None
        if "custom_metadata" in fields:
            custom = {str(k): "" if v is None else str(v) for k, v in (fields["custom_metadata"] or {}).items()}
            problems = _custom_metadata_problems(custom)
            if problems:
                raise self._bad(go_multierror(*problems))
        try:
            dva = parse_duration(fields["delete_version_after"]) if "delete_version_after" in fields else None
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        key = self.kv.setdefault(req.params["path"], KvKey(now, now))
        key.max_versions = int(fields.get("max_versions", key.max_versions))
        key.cas_required = bool(fields.get("cas_required", key.cas_required))
        key.delete_version_after = key.delete_version_after if dva is None else dva
        key.custom_metadata = key.custom_metadata if custom is None else custom
        warnings = None
        if fields.get("cas_required") is False and self.kv_config["cas_required"]:
            warnings = ['"cas_required" set to false, but is mandated by backend config. This value will be ignored.']
        return self._ok(None, warnings=warnings) if warnings else self._no_content()

    @route("DELETE", r"/v1/secret/metadata/(?P<path>.+)", "kv.metadata.delete")
    @locked
    def kv_metadata_delete(self, req: Request) -> Response:
        self.kv.pop(req.params["path"], None)
        return self._no_content()

    @route("LIST", r"/v1/secret/metadata(?:/(?P<path>.*))?", "kv.metadata.list")
    @locked
    def kv_list(self, req: Request) -> Response:
        prefix = req.params.get("path", "")
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        rests = [k[len(prefix) :] for k in self.kv if k.startswith(prefix)]
        keys = sorted({r.split("/")[0] + "/" if "/" in r else r for r in rests})
        return self._ok({"keys": keys}) if keys else self._missing()

    @route("GET", r"/v1/secret/config", "kv.config.read")
    @locked
    def kv_config_read(self, req: Request) -> Response:
        cfg = self.kv_config
        data = {
            "cas_required": cfg["cas_required"],
            "delete_version_after": go_duration(int(cfg["delete_version_after"])),
            "max_versions": cfg["max_versions"],
        }
        return self._ok(data)

    @route("POST", r"/v1/secret/config", "kv.config.write")
    @route("PUT", r"/v1/secret/config", "kv.config.write")
    @locked
    def kv_config_write(self, req: Request) -> Response:
        body = self._body(req)
        try:
            if "delete_version_after" in body:
                self.kv_config["delete_version_after"] = parse_duration(body["delete_version_after"])
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        if "max_versions" in body:
            self.kv_config["max_versions"] = int(body["max_versions"])
        if "cas_required" in body:
            self.kv_config["cas_required"] = bool(body["cas_required"])
        return self._no_content()

    _KV_API = r"(?!(?:data|metadata|delete|undelete|destroy|config|subkeys)(?:/|$))"

    @route("GET", rf"/v1/secret/{_KV_API}.*", "kv.invalid-path")
    @route("LIST", rf"/v1/secret/{_KV_API}.*", "kv.invalid-path")
    @route("POST", rf"/v1/secret/{_KV_API}.*", "kv.invalid-path")
    @route("PUT", rf"/v1/secret/{_KV_API}.*", "kv.invalid-path")
    @route("DELETE", rf"/v1/secret/{_KV_API}.*", "kv.invalid-path")
    def kv_invalid_path(self, req: Request) -> Response:
        return self._ok(None, warnings=[KV_WARNING], status=404)  # NOTES §2.1 / §6.12, kv backend.go


def _custom_metadata_problems(custom: dict[str, str]) -> list[str]:
    """path_metadata.go validateCustomMetadata (64 keys, key <= 128, value <= 512, printable)."""
    prefix = "custom_metadata validation failed"
    if len(custom) > 64:
        return [f"{prefix}: payload must contain at most 64 keys, provided {len(custom)}"]
    problems = []
    for k, v in custom.items():
        if not 0 < len(k) <= 128:
            problems.append(f"{prefix}: length of key {go_quote(k)} is {len(k)} but must be 0 < len(key) <= 128")
        if not 0 < len(v) <= 512:
            problems.append(
                f"{prefix}: length of value for key {go_quote(k)} is {len(v)} but must be 0 < len(value) <= 512"
            )
        if not k.isprintable():
            problems.append(f"{prefix}: key {go_quote(k)} ({k}) contains unprintable characters")
        if not v.isprintable():
            problems.append(f"{prefix}: value for key {go_quote(k)} contains unprintable characters")
    return problems
