"""Alert webhook: one JSON POST with a Slack-compatible `text` (Slack, Mattermost and Teams workflow
incoming webhooks all read it), bounded retries on 429/5xx/connection errors, honouring Retry-After.

A Slack webhook URL is itself a secret (its path is the credential), so the URL is registered with the
redactor and no error text here ever carries it, only the host.

A retry after a timeout or a 5xx may deliver an alert twice (the first POST may have landed). Every attempt of
one post carries the same `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header): the SHA-256 of the
payload, which the caller builds from the alerts' identity and crossing, so a receiver that honours the header
(or a relay in front of Slack) can drop the duplicate. A hash reveals nothing, and the payload holds no secret.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import requests

from lib import reach
from lib.http import make_session
from lib.redact import register_secret
from lib.retry import Backoff, call_with_retry, retry_after_seconds

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_BACKOFF = Backoff(base=1.0, cap=10.0, deadline=45.0, max_attempts=4)
IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(payload: Mapping[str, Any]) -> str:
    """The same payload, the same key: canonical JSON (sorted keys, no whitespace), SHA-256, hex."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class WebhookError(Exception):
    def __init__(self, host: str, problem: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"webhook POST to {host} failed: {problem}")
        self.status = status
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.status is None or self.status in TRANSIENT_STATUSES


class Webhook:
    def __init__(self, url: str, session: requests.Session | None = None, backoff: Backoff = DEFAULT_BACKOFF) -> None:
        register_secret(url)
        register_secret(urlparse(url).path)
        self._url = url
        self.host = urlparse(url).netloc
        self._session = session or make_session(retries=0)  # retries here, where POST is known to be safe
        self._backoff = backoff

    def post(self, payload: Mapping[str, Any]) -> None:
        """POST once, retrying transient failures; raises WebhookError after the last attempt."""
        key = idempotency_key(payload)
        call_with_retry(
            lambda: self._post_once(payload, key),
            transient=lambda e: isinstance(e, WebhookError) and e.transient,
            retry_after=lambda e: e.retry_after if isinstance(e, WebhookError) else None,
            backoff=self._backoff,
            client="webhook",
            call=f"POST {self.host}",
        )

    def _post_once(self, payload: Mapping[str, Any], key: str) -> None:
        try:
            response = self._session.post(self._url, json=dict(payload), headers={IDEMPOTENCY_HEADER: key})
        except requests.RequestException as exc:  # its text names the URL (a secret): keep the class and the kind
            kind = reach.unreachable(exc)
            raise WebhookError(self.host, type(exc).__name__ + (f" ({kind})" if kind else "")) from None
        if response.status_code >= 300:
            raise WebhookError(
                self.host, f"HTTP {response.status_code}", response.status_code, retry_after_seconds(response.headers)
            )


def slack_payload(title: str, lines: list[str], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`text` for chat tools, plus structured fields for anything that parses the JSON."""
    return {"text": "\n".join([title, *(f"- {line}" for line in lines)]), **extra}
