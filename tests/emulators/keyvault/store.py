"""One vault's secrets: versions, the deleted (recoverable) collection, the JSON shapes and paging.

No clock and no lock: the emulator passes `now` (emulated time) and holds its lock around every call.
Refusals come from keyvault_rules, in Key Vault's error envelope.
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.emulators.keyvault import rules

T = TypeVar("T")
RECOVERABLE_DAYS = 90
# Real nextLinks carry `:443` and an old api-version whatever the request said (every list example); the SDK
# replaces it with its own when it follows the link.
NEXT_LINK_API_VERSION = "7.2"


@dataclass
class SecretVersion:
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
class StoredSecret:
    name: str  # as first created; lookups are case-insensitive ("compare as case-insensitive strings" [doc])
    versions: dict[str, SecretVersion] = field(default_factory=dict)  # insertion order = creation order
    readable_at: float = 0.0  # recovery still propagating before these times
    writable_at: float = 0.0

    @property
    def latest(self) -> SecretVersion:
        return next(reversed(self.versions.values()))


@dataclass
class DeletedSecret:
    secret: StoredSecret
    deleted_date: int
    visible_at: float  # the deleted entry is not in the deleted collection before this time

    @property
    def scheduled_purge_date(self) -> int:
        return self.deleted_date + RECOVERABLE_DAYS * 86400


class SecretStore:
    def __init__(self) -> None:
        self.secrets: dict[str, StoredSecret] = {}
        self.deleted: dict[str, DeletedSecret] = {}

    def purge_expired(self, now: float) -> None:
        for key in [k for k, d in self.deleted.items() if d.scheduled_purge_date <= now]:
            del self.deleted[key]  # the retention period ran out: the system purges

    def live(self, now: float) -> list[StoredSecret]:
        return [s for s in self.secrets.values() if s.readable_at <= now]

    def readable(self, name: str, now: float) -> StoredSecret:
        secret = self.secrets.get(name.lower())
        if secret is None or secret.readable_at > now:
            raise rules.secret_not_found(name)
        return secret

    def listable(self, name: str, now: float) -> StoredSecret | None:
        secret = self.secrets.get(name.lower())
        return secret if secret is not None and secret.readable_at <= now else None

    def version(self, name: str, wanted: str, now: float) -> tuple[StoredSecret, SecretVersion]:
        """`wanted` as the URL spelled it; empty = the latest version."""
        secret = self.readable(name, now)
        if not wanted:
            return secret, secret.latest
        version = secret.versions.get(wanted.lower())
        if version is None:
            raise rules.secret_not_found(f"{name}/{wanted}")
        return secret, version

    def add_version(self, name: str, version: SecretVersion) -> StoredSecret:
        secret = self.secrets.setdefault(name.lower(), StoredSecret(name))
        secret.versions[version.version] = version
        return secret

    def visible_deleted(self, name: str, now: float) -> DeletedSecret:
        record = self.deleted.get(name.lower())
        if record is None or record.visible_at > now:  # [field] azure-sdk-for-js recordings
            raise rules.deleted_secret_not_found(name)
        return record

    def refuse_if_deleted(self, name: str, now: float) -> None:
        record = self.deleted.get(name.lower())
        if record is None:
            return
        if record.visible_at > now:
            raise rules.being_deleted(name)
        raise rules.deleted_but_recoverable(name)

    @staticmethod
    def refuse_if_recovering(secret: StoredSecret, now: float) -> None:
        if secret.writable_at > now:
            raise rules.being_recovered(secret.name)

    def delete(self, secret: StoredSecret, now: float, visible_at: float) -> DeletedSecret:
        del self.secrets[secret.name.lower()]
        record = DeletedSecret(secret, int(now), visible_at)
        self.deleted[secret.name.lower()] = record
        return record

    def recover(self, record: DeletedSecret, readable_at: float, writable_at: float) -> StoredSecret:
        secret = record.secret
        secret.readable_at = readable_at
        secret.writable_at = writable_at
        del self.deleted[secret.name.lower()]
        self.secrets[secret.name.lower()] = secret
        return secret

    def purge(self, record: DeletedSecret) -> None:
        del self.deleted[record.secret.name.lower()]


# ---- shapes ----------------------------------------------------------------------------------------------------


def attributes_of(v: SecretVersion) -> dict[str, Any]:
    attrs: dict[str, Any] = {"enabled": v.enabled}
    attrs.update({k: t for k, t in (("nbf", v.nbf), ("exp", v.exp)) if t is not None})
    attrs.update(
        created=v.created,
        updated=v.updated,
        recoveryLevel="Recoverable+Purgeable",
        recoverableDays=RECOVERABLE_DAYS,
    )
    return attrs


def secret_item(base_url: str, s: StoredSecret, v: SecretVersion, versioned: bool) -> dict[str, Any]:
    """SecretItem: never a value; id without version in the secrets list, with it in the versions list."""
    item: dict[str, Any] = {"id": f"{base_url}/secrets/{s.name}" + (f"/{v.version}" if versioned else "")}
    item["attributes"] = attributes_of(v)
    if v.tags:
        item["tags"] = dict(v.tags)
    if v.content_type is not None:
        item["contentType"] = v.content_type
    return item


def secret_bundle(base_url: str, s: StoredSecret, v: SecretVersion, with_value: bool) -> dict[str, Any]:
    bundle: dict[str, Any] = {"value": v.value} if with_value else {}
    bundle.update(secret_item(base_url, s, v, versioned=True))
    return bundle


def _deleted_fields(base_url: str, d: DeletedSecret) -> dict[str, Any]:
    return {
        "recoveryId": f"{base_url}/deletedsecrets/{d.secret.name}",
        "deletedDate": d.deleted_date,
        "scheduledPurgeDate": d.scheduled_purge_date,
    }


def deleted_bundle(base_url: str, d: DeletedSecret) -> dict[str, Any]:
    return {**_deleted_fields(base_url, d), **secret_bundle(base_url, d.secret, d.secret.latest, with_value=False)}


def deleted_item(base_url: str, d: DeletedSecret) -> dict[str, Any]:
    return {**_deleted_fields(base_url, d), **secret_item(base_url, d.secret, d.secret.latest, versioned=False)}


def page_body(
    base_url: str,
    path: str,
    items: Iterable[tuple[str, T]],
    render: Callable[[T], dict[str, Any]],
    size: int,
    marker: str | None,
) -> dict[str, Any]:
    """`size` items after `marker`; the skiptoken is an opaque marker (the last sort key returned), so a write
    between pages neither repeats nor skips an item; `nextLink` is absolute and points back to `path`. `items`
    are (sort key, object) and only the page's own objects are rendered: a page costs one pass over the keys,
    not N JSON shapes and a sort (5,000 secrets are 200 pages; the bench lists them at Key Vault's pace)."""
    remaining = [item for item in items if marker is None or item[0] > marker]
    page = heapq.nsmallest(size + 1, remaining, key=lambda i: i[0])
    body: dict[str, Any] = {"value": [render(obj) for _, obj in page[:size]], "nextLink": None}
    if len(page) > size:
        page = page[:size]
        token = base64.urlsafe_b64encode(page[-1][0].encode()).decode().rstrip("=")
        body["nextLink"] = f"{base_url}{path}?api-version={NEXT_LINK_API_VERSION}&$skiptoken={token}&maxresults={size}"
    return body
