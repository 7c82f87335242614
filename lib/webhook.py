"""Alert webhook: one JSON POST with a Slack-compatible `text` (Slack, Mattermost and Teams workflow
incoming webhooks all read it), bounded retries on 429/5xx/connection errors, honouring Retry-After.

A Slack webhook URL is itself a secret (its path is the credential), so the URL is registered with the
redactor and no error text here ever carries it, only the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import requests

from lib.http import make_session
from lib.redact import register_secret
from lib.retry import Backoff, call_with_retry, retry_after_seconds

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_BACKOFF = Backoff(base=1.0, cap=10.0, deadline=45.0, max_attempts=4)


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
        call_with_retry(
            lambda: self._post_once(payload),
            transient=lambda e: isinstance(e, WebhookError) and e.transient,
            retry_after=lambda e: e.retry_after if isinstance(e, WebhookError) else None,
            backoff=self._backoff,
        )

    def _post_once(self, payload: Mapping[str, Any]) -> None:
        try:
            response = self._session.post(self._url, json=dict(payload))
        except requests.RequestException as exc:  # its text names the URL: keep only the class
            raise WebhookError(self.host, type(exc).__name__) from None
        if response.status_code >= 300:
            raise WebhookError(
                self.host, f"HTTP {response.status_code}", response.status_code, retry_after_seconds(response.headers)
            )


def slack_payload(title: str, lines: list[str], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`text` for chat tools, plus structured fields for anything that parses the JSON."""
    return {"text": "\n".join([title, *(f"- {line}" for line in lines)]), **extra}
