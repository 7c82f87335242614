"""Key Vault's per-vault service limits for secrets, as token buckets (the clock and the buckets are ARM's:
tests/emulators/arm/throttle.py, so `time_scale` works the same way).

Sources:
- [doc] "Azure Key Vault service limits" (learn.microsoft.com/azure/key-vault/general/service-limits; MicrosoftDocs/
  azure-docs includes/key-vault-limits.md, ms.date 05/28/2021): "Secrets, managed storage account keys, and vault
  transactions", maximum transactions allowed in 10 seconds, per vault per region: "Secret CREATE secret 300",
  "All other transactions 4,000"; "A subscription-wide limit for all transaction types is five times per key
  vault limit" (not modelled: the platform has two vaults).
- [doc] "Azure Key Vault throttling guidance" (overview-throttling): over a threshold Key Vault "returns HTTP
  status code 429 (Too many requests)"; "Failed requests that return a 429 do not count towards the throttle
  limits" (so a refused request takes no token).
- [field] the 429 body, vcsjones/AzureSignTool#219 (2023-12): `{"error":{"code":"Throttled","message":"Request was
  not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"}}`. That answer
  carried no Retry-After; azure-core and this project's retry honour one when it is there, and the guidance
  asks clients to back off exponentially when it is not, so `retry_after` (default on) chooses.

A 10-second window is modelled as a bucket of the window's size refilled at size/10 per second: a client that
spends the whole bucket at once then waits for the refill, as the documented "in 10 seconds" allows.
"""

from __future__ import annotations

from typing import Any

from tests.emulators.arm.throttle import Buckets, ScaledClock
from tests.emulators.core import HttpError
from tests.emulators.keyvault import rules

WINDOW_S = 10.0
DEFAULTS: dict[str, Any] = {
    "throttling": True,
    "create_per_10s": 300,  # PUT /secrets/{name}: a new version
    "other_per_10s": 4000,  # every other secrets transaction
    "time_scale": 1.0,  # emulated bucket seconds per real second
    "retry_after": True,  # send Retry-After with the 429
}
MESSAGE = "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"


def validate(key: str, value: Any) -> None:
    if key in ("throttling", "retry_after") and not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false")
    if key.endswith("_per_10s") and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{key}: expected an integer >= 1")
    if key == "time_scale" and not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
        raise ValueError("time_scale: expected a number > 0")


class VaultThrottle:
    def __init__(self) -> None:
        self.clock = ScaledClock(1.0)
        self.buckets = Buckets(self.clock)

    def admit(self, op: str, settings: dict[str, Any]) -> None:
        if not settings["throttling"] or op in ("challenge", "unsupported"):
            return
        kind = "create" if op == "secret.set" else "other"
        size = float(settings[f"{kind}_per_10s"])
        admitted, _, wait = self.buckets.take([((kind,), size, size / WINDOW_S)])
        if not admitted:
            headers = {"Retry-After": str(self.clock.real_seconds(wait))} if settings["retry_after"] else {}
            resp = rules.error_response(429, "Throttled", MESSAGE, None, headers)
            raise HttpError(resp.status, resp.body, resp.headers, resp.content_type)
