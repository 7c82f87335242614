"""Which token-expiry alerts are new in this run, and their text. Pure: now and the interval are passed in.

Alerts are stateless: a warning is new when the token's days-left crossed a threshold (14, 7, 3, 1 by
default) inside the last schedule interval, i.e. the crossing instant lies in (now - interval, now].
Consecutive runs' windows tile time, so a job on a fixed schedule alerts once per crossing, whatever the
time of day it runs, and keeps no state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobs.token_expiry_check.policy import Rules
from lib.clients.coder_types import Token
from lib.render import rfc3339

ALERT_DAYS = (14, 7, 3, 1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Alert:
    """One webhook alert, new in this run. An action: applying it posts it."""

    user: str
    token_name: str
    token_id: str
    reason: str  # "14d" ... "1d", "expired"
    expires_at: str

    @property
    def kind(self) -> str:
        return "alert"

    def describe(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "user": self.user,
            "token_name": self.token_name,
            "id": self.token_id,
            "reason": self.reason,
            "expires_at": self.expires_at,
        }

    def document(self) -> dict[str, Any]:
        return {
            "target": f"{self.user}/{self.token_name}",
            "reason": self.reason,
            "user": self.user,
            "token_name": self.token_name,
            "token_id": self.token_id,
            "expires_at": self.expires_at or None,
        }

    def text(self) -> str:
        if self.reason == "expired":
            return f"Coder token {self.user}/{self.token_name} (id {self.token_id}) expired at {self.expires_at}"
        days = self.reason.removesuffix("d")
        return (
            f"Coder token {self.user}/{self.token_name} (id {self.token_id}) expires within {days} day(s), "
            f"at {self.expires_at}"
        )


def thresholds(rules: Rules) -> tuple[int, ...]:
    """14/7/3/1 below the warn window, plus the window's own edge when it is wider."""
    return tuple(sorted({rules.warn_days, *(d for d in ALERT_DAYS if d <= rules.warn_days)} - {0}, reverse=True))


def new_alert(user: str, token: Token, rules: Rules, now: datetime, interval: timedelta) -> Alert | None:
    """The most urgent crossing in (now - interval, now], if any. A token created already inside a threshold
    crossed it when it was created."""
    expires = token.expires_at
    if expires is None:
        return None

    def crossed(instant: datetime) -> bool:
        return now - interval < instant <= now

    reason = ""
    if crossed(expires):
        reason = "expired"
    else:
        for threshold in thresholds(rules):  # descending: the last one crossed is the most urgent
            instant = expires - threshold * DAY
            if token.created_at is not None:
                instant = max(instant, token.created_at)
            if crossed(instant) and instant < expires:
                reason = f"{threshold}d"
    if not reason:
        return None
    return Alert(user, token.token_name, token.id, reason, rfc3339(expires))
