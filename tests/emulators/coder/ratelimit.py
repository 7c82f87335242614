"""Coder's API rate limit: `--api-rate-limit` requests per minute (default 512; <= 0 turns it off).

Sources (coder/coder and go-chi/httprate, the library Coder uses):
- coderd/httpmw/ratelimit.go `RateLimit(count, window)`: httprate.Limit with the key functions "the API key's
  user id, else the client IP" and `httprate.KeyByEndpoint` (the request path), composed, so each user has a
  budget per path; an Owner sending `X-Coder-Bypass-Ratelimit: true` gets a random key (no limit), anyone else
  sending it gets httprate's error answer (428, text: `"X-Coder-Bypass-Ratelimit" provided but user is not
  owner`). Over the limit: 429 `{"message": "You've been rate limited for sending more than 512 requests in
  1m0s."}`.
- go-chi/httprate limiter.go: a sliding window counter. rate = previous window's count x (window - time into the
  current window) / window + current count; a request is refused when round(rate) + 1 > limit (and then not
  counted). Windows are aligned (`time.Now().Truncate(window)`). Every answer carries `X-RateLimit-Limit`,
  `X-RateLimit-Remaining` and `X-RateLimit-Reset` (the current window's end, Unix seconds); a refusal adds
  `Retry-After` = the window in seconds (60), whatever is left of it.

`key` "user+path" is Coder's; "user" (one budget per user, as Coder's docs phrase the flag: "per user") is a
harsher setting for benches. The counter runs on real monotonic time x `time_scale` (as the ARM emulator's
buckets do), not on the emulated clock, so advancing that clock (to expire a token) never refills a budget, and
`time_scale` 10 makes a minute pass in 6 real seconds; `Retry-After` is then the real wait, ceil(60 / scale).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class Verdict:
    allowed: bool
    headers: dict[str, str]


class SlidingWindow:
    def __init__(self, limit: int, window_s: float = 60.0, time_scale: float = 1.0) -> None:
        self.limit, self.window_s, self.scale = limit, window_s, time_scale
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._origin = time.monotonic()

    def _now(self) -> float:
        """Scaled seconds since an origin aligned to a window boundary (the emulated minute starts at zero)."""
        return (time.monotonic() - self._origin) * self.scale

    def check(self, key: str) -> Verdict:
        now = self._now()
        window = int(now // self.window_s)
        into = now - window * self.window_s
        with self._lock:
            current = self._counts.get((key, window), 0)
            previous = self._counts.get((key, window - 1), 0)
            rate = round(previous * (self.window_s - into) / self.window_s + current)
            reset = time.time() + (self.window_s - into) / self.scale
            headers = {"X-Ratelimit-Limit": str(self.limit), "X-Ratelimit-Reset": str(int(reset))}
            if rate + 1 > self.limit:
                headers["X-Ratelimit-Remaining"] = str(max(self.limit - rate, 0))
                headers["Retry-After"] = str(max(1, math.ceil(self.window_s / self.scale)))
                return Verdict(False, headers)
            self._counts[(key, window)] = current + 1
            for old in [k for k in self._counts if k[1] < window - 1]:
                del self._counts[old]
            headers["X-Ratelimit-Remaining"] = str(self.limit - rate - 1)
            return Verdict(True, headers)


def go_minutes(window_s: float) -> str:
    """time.Duration.String() of the window, as the 429 message prints it (`1m0s`)."""
    minutes, seconds = divmod(int(window_s), 60)
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
