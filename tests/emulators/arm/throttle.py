"""ARM's request throttling as token buckets, and Microsoft.ManagedIdentity's own (resource provider) limits.

Sources ([doc] = Microsoft documentation, [field] = real responses quoted in public issues):
- [doc] "Understand how Azure Resource Manager throttles requests",
  learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling (MicrosoftDocs/azure-docs
  articles/azure-resource-manager/management/request-limits-and-throttling.md, ms.date 05/28/2025): since 2024 a
  token-bucket algorithm, limits per region; subscription (and tenant) reads bucket 250 refilled 25/s, deletes
  200 / 10/s, writes 200 / 10/s; "The subscription limits apply per subscription, per service principal, and per
  operation type"; "global subscription limits that are equivalent to 15 times the individual service principal
  limits ... across all service principals"; over the limit: "HTTP status code 429 Too many requests" with a
  "Retry-After value, which specifies the number of seconds"; "If you send a request before the retry value
  elapses, your request isn't processed and a new retry value is returned" (so a refused request takes no token);
  remaining-requests headers `x-ms-ratelimit-remaining-subscription-reads|writes|deletes`.
- [field] the global headers and their values: a first read answers `...-subscription-reads: 249` and
  `...-subscription-global-reads: 3749` (= 15 x 250 - 1), a write `...-writes: 199` / `...-global-writes: 2999`
  (many public logs, e.g. Azure/terraform-provider-azapi debug output, App Service 429 reports): the headers
  carry the tokens left *after* this request.
- [field] the 429 body since the token buckets, velero-io/velero#9171 (2025-08): `{"error": {"code":
  "SubscriptionRequestsThrottled", "message": "Number of 'read' requests for subscription '<sub>' actor '<actor>'
  exceeded. Please try again after '1' seconds after additional tokens are available. Refer to
  https://aka.ms/arm-throttling for additional information."}}`.
- [doc] Microsoft.ManagedIdentity's own limits, entra-docs docs/workload-id/workload-identity-federation-
  considerations.md §"Throttling limits" (requests per second per tenant / per subscription / per resource:
  create or update 10/2/0.25, get 30/10/0.5, list 15/5/0.25, delete 10/2/0.25; "If you exceed a throttling
  limit, you receive an HTTP 429 error"); an older azure-docs copy of the same table names the operations
  FederatedIdentityCredentialPutRequest/GetRequest/ListRequest/DeleteRequest. Not documented: the bucket sizes
  (burst), whether "resource" is the FIC or its identity, and the 429 body -- so this limit is off by default.

Which clock: the buckets refill from `time.monotonic()` scaled by `time_scale`, not from the platform's emulated
wall clock. That clock jumps when a test advances it (to expire tokens or let a FIC propagate) and a jump must not
refill a bucket a job drained in real time; monotonic time never jumps. `time_scale` (default 1.0) makes emulated
bucket time run that many times faster than real time: refill per real second = documented rate x time_scale,
and `Retry-After` is the real time to wait, ceil(emulated wait / time_scale), at least 1 (ARM sends whole seconds).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

KINDS = ("reads", "writes", "deletes")
GLOBAL_FACTOR = 15  # [doc] "global subscription limits ... 15 times the individual service principal limits"


def kind_of(method: str) -> str:
    """ARM's operation types: GET (and HEAD) read, DELETE delete, everything else (PUT/PATCH/POST) writes."""
    if method in ("GET", "HEAD"):
        return "reads"
    if method == "DELETE":
        return "deletes"
    return "writes"


@dataclass
class Bucket:
    size: float
    rate: float  # tokens per emulated second
    tokens: float
    at: float  # emulated time of `tokens`

    def refill(self, now: float) -> None:
        self.tokens = min(self.size, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now

    def wait(self) -> float:
        """Emulated seconds until one whole token is there."""
        return max(0.0, (1.0 - self.tokens) / self.rate) if self.rate > 0 else math.inf


class ScaledClock:
    """Monotonic seconds x time_scale; changing the scale keeps the emulated time continuous."""

    def __init__(self, scale: float = 1.0) -> None:
        self._real0 = time.monotonic()
        self._emulated0 = 0.0
        self.scale = scale

    def now(self) -> float:
        return self._emulated0 + (time.monotonic() - self._real0) * self.scale

    def set_scale(self, scale: float) -> None:
        self._emulated0, self._real0 = self.now(), time.monotonic()
        self.scale = scale

    def real_seconds(self, emulated: float) -> int:
        """Retry-After: whole real seconds a client must sleep for `emulated` bucket seconds to pass."""
        return max(1, math.ceil(emulated / self.scale - 1e-9)) if math.isfinite(emulated) else 3600


class Buckets:
    """Token buckets by key; every bucket a request needs must hold a token, else none is taken."""

    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, ...], Bucket] = {}

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()

    def take(self, wanted: list[tuple[tuple[str, ...], float, float]]) -> tuple[bool, list[int], float]:
        """`wanted`: (key, size, rate) per bucket. Returns (admitted, whole tokens left in each bucket after this
        request, emulated seconds until all of them hold a token when refused)."""
        with self._lock:
            now = self.clock.now()
            buckets = []
            for key, size, rate in wanted:
                bucket = self._buckets.get(key)
                if bucket is None or bucket.size != size or bucket.rate != rate:  # new, or the limits changed
                    bucket = self._buckets[key] = Bucket(size, rate, size, now)
                bucket.refill(now)
                buckets.append(bucket)
            wait = max((b.wait() for b in buckets), default=0.0)
            admitted = wait <= 0.0
            if admitted:
                for bucket in buckets:
                    bucket.tokens -= 1.0
            return admitted, [max(0, math.floor(b.tokens)) for b in buckets], wait


# [doc] entra-docs considerations §"Throttling limits": requests per second per subscription and per resource
MSI_LIMITS: dict[str, tuple[float, float]] = {
    "put": (2.0, 0.25),
    "get": (10.0, 0.5),
    "list": (5.0, 0.25),
    "delete": (2.0, 0.25),
}
