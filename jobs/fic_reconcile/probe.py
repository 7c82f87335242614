"""fic-reconcile's readiness probe (`--probe`, off by default): can a namespace whose FIC this run created get an
Azure token yet?

Why: ARM answers a FIC PUT at once, but Entra honours the FIC only once it has propagated ("several minutes";
`AADSTS70021` meanwhile: learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations, "Time
for federated credential changes to propagate"). Time to credential (writes.py) stops at the PUT; a workspace can
use Azure only once Entra grants its exchange. So for the namespaces this run created a FIC for (a sample of
`--probe-max-namespaces`), the probe does what the workspace's pods do: a TokenRequest for the namespace's
`--service-account` with the audience `api://AzureADTokenExchange` (what the Workload Identity webhook projects),
then the client-assertion grant at Entra as the pool identity the FIC is on, tried again on a backoff until granted
or the bound (`--probe-seconds`, cut to what the run budget has left). The minted token is a workspace credential:
registered with the redactor when it arrives (lib/clients/kube.py), held in memory, never logged or reported.

Pure: which namespaces (`choose`), when to try (`attempt_offsets`, `next_offset`), what the results say
(`ProbeResult`). I/O: `run` (the rounds; the TokenRequest and the exchange passed in) and `probe_created` (wires
lib/clients/kube.py and lib/clients/azure_auth.py).
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from jobs.fic_reconcile.settings import FicSettings
from lib.model import Finding
from lib.retry import log_retry

EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
FLOOR_S, FRACTION, CAP_S = 2.0, 0.2, 15.0  # the backoff: attempt_offsets
REQUEST_TIMEOUT_S, LATE_S = 10.0, 0.5


@dataclass(frozen=True)
class Created:
    """A FIC this run created, as the probe needs it."""

    namespace: str
    identity: str
    client_id: str
    written_at: float  # time.monotonic() when ARM answered the PUT
    credential_after_s: float | None = None  # time to credential: namespace creation -> that answer


@dataclass(frozen=True)
class Attempt:
    at: float  # time.monotonic() when the answer came
    granted: bool = False
    refusal: str = ""  # one line: Entra's AADSTS code and text, or the TokenRequest's error
    final: bool = False  # trying again cannot help: the job may not mint tokens (401/403)


@dataclass(frozen=True)
class Probed:
    target: Created
    attempts: tuple[Attempt, ...] = ()

    @property
    def usable_after_s(self) -> float | None:
        """Seconds from the FIC's PUT to the first grant (an upper bound: Entra granted at most this late)."""
        granted = [a.at for a in self.attempts if a.granted]
        return round(granted[0] - self.target.written_at, 3) if granted else None

    @property
    def refused_until_s(self) -> float | None:
        """Seconds from the PUT to the last refusal (a lower bound on propagation)."""
        refused = [a.at for a in self.attempts if not a.granted]
        return round(refused[-1] - self.target.written_at, 3) if refused else None

    @property
    def time_to_usable_s(self) -> float | None:
        """Namespace creation -> the first grant: time to credential plus the wait for Entra."""
        after, before = self.usable_after_s, self.target.credential_after_s
        return None if after is None or before is None else round(before + after, 3)

    @property
    def last_refusal(self) -> str:
        return next((a.refusal for a in reversed(self.attempts) if a.refusal), "")

    @property
    def forbidden(self) -> bool:
        return any(a.final for a in self.attempts)


# ---- pure ----------------------------------------------------------------------------------------------------


def choose(created: Sequence[Created], limit: int) -> tuple[tuple[Created, ...], int]:
    """(the namespaces to probe, how many are left out): the first `limit` by name, a deterministic sample."""
    ordered = sorted(created, key=lambda c: c.namespace)
    return tuple(ordered[:limit]), max(0, len(ordered) - limit)


def attempt_offsets(
    window: float, floor: float = FLOOR_S, fraction: float = FRACTION, cap: float = CAP_S
) -> tuple[float, ...]:
    """Seconds after the probe starts at which every namespace still refused is tried again: at once, then after
    waits of `fraction` of the time elapsed (so a grant is seen at most ~20% late), at least `floor` and at most
    `cap` seconds, and a last time at the bound itself. Empty when there is no time at all."""
    if window <= 0:
        return ()
    offsets = [0.0]
    while (step := offsets[-1] + min(cap, max(floor, fraction * offsets[-1]))) < window:
        offsets.append(round(step, 3))
    last = round(float(window), 3)
    return (*offsets, last) if last > offsets[-1] else tuple(offsets)


def next_offset(offsets: Sequence[float], elapsed: float) -> float | None:
    """The next round after `elapsed` seconds; a round that ran long skips the offsets it overran."""
    return next((o for o in offsets if o > elapsed), None)


def spread(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of a run's measurements (none: {})."""
    ordered = sorted(seconds)
    if not ordered:
        return {}
    p99 = statistics.quantiles(ordered, n=100, method="inclusive")[98] if len(ordered) > 1 else ordered[0]
    return {"p50_s": round(statistics.median(ordered), 3), "p99_s": round(p99, 3), "max_s": round(ordered[-1], 3)}


@dataclass(frozen=True)
class ProbeResult:
    probed: tuple[Probed, ...]
    left_out: int  # created, but beyond --probe-max-namespaces
    window: float  # seconds the probe had: --probe-seconds, or less when the run budget had less left

    def rows(self) -> list[dict[str, Any]]:
        """Typed for the JSON document (issue 22 point 6): counts as integers, seconds as numbers, null for none."""

        def seconds(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return [
            {
                "namespace": p.target.namespace,
                "identity": p.target.identity,
                "result": "usable" if p.usable_after_s is not None else "not usable",
                "attempts": len(p.attempts),
                "refused_until_s": seconds(p.refused_until_s),
                "usable_after_s": seconds(p.usable_after_s),
                "time_to_usable_s": seconds(p.time_to_usable_s),
                "last_refusal": p.last_refusal,
            }
            for p in self.probed
        ]

    def summary(self) -> dict[str, float | int]:
        usable = [p for p in self.probed if p.usable_after_s is not None]
        counts = {"probed": len(self.probed), "usable": len(usable), "not_usable": len(self.probed) - len(usable)}
        measured = [p.time_to_usable_s for p in usable if p.time_to_usable_s is not None]
        return {**counts, "not_probed": self.left_out, "window_s": round(self.window, 1), **spread(measured)}

    def findings(self) -> list[Finding]:
        """Not usable within the bound is a warning (Entra may take longer; the FIC exists and the next exchange
        may well succeed); a job that may not mint tokens at all is an error (the probe asked for cannot run)."""
        if self.probed and self.window <= 0:
            message = f"run budget spent before the probe: {len(self.probed)} namespace(s) not probed"
            return [Finding("warning", "probe-skipped", "probe", message)]
        forbidden = [p for p in self.probed if p.forbidden]
        findings = [
            Finding(
                "warning",
                "not-usable",
                p.target.namespace,
                f"{p.target.identity}: no token within {self.window:.0f} s of probing ({len(p.attempts)} "
                f"attempt(s)); last: {p.last_refusal or 'no attempt'}",
            )
            for p in self.probed
            if p.usable_after_s is None and not p.forbidden
        ]
        if forbidden:
            reason = next(a.refusal for a in forbidden[0].attempts if a.final)
            message = (
                f"{len(forbidden)} namespace(s) not probed: {reason}; the probe needs create on serviceaccounts/token"
            )
            findings.append(Finding("error", "probe-failed", "probe", message))
        return findings


# ---- I/O -----------------------------------------------------------------------------------------------------


class Refused(Exception):
    """One attempt that did not get a grant; `final` when trying again cannot help."""

    def __init__(self, reason: str, final: bool = False) -> None:
        super().__init__(reason)
        self.final = final


Mint = Callable[[str, float], str]  # (namespace, timeout) -> the ServiceAccount's token
Exchange = Callable[[str, str, float], None]  # (client id, token, timeout); raises Refused


def run(
    targets: Sequence[Created],
    window: float,
    mint: Mint,
    exchange: Exchange,
    concurrency: int,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[Created, Attempt, int, float], None] | None = None,
) -> tuple[Probed, ...]:
    """Rounds at attempt_offsets(window): every namespace not yet granted is tried, `concurrency` at a time. No
    attempt starts more than LATE_S after the window (the last round is due at its very end), and none waits longer
    than what is left of it, at least 1 s: the probe ends within a few seconds of its window, inside the reserve
    the run budget keeps after it (lib/budget.py, at least 5 s)."""
    start = clock()
    end, offsets = start + window, attempt_offsets(window)
    tokens: dict[str, str] = {}  # one TokenRequest per namespace, valid past the window
    attempts: dict[str, list[Attempt]] = {t.namespace: [] for t in targets}

    def attempt(t: Created) -> Attempt | None:
        if clock() > end + LATE_S:  # a round that started late: what is left of it waits for nothing
            return None
        timeout = min(REQUEST_TIMEOUT_S, max(1.0, end - clock()))
        try:
            if t.namespace not in tokens:
                tokens[t.namespace] = mint(t.namespace, timeout)
            exchange(t.client_id, tokens[t.namespace], timeout)
        except Refused as exc:
            return Attempt(clock(), refusal=str(exc), final=exc.final)
        return Attempt(clock(), granted=True)

    pending, offset = list(targets), next_offset(offsets, -1.0)
    with ThreadPoolExecutor(max_workers=concurrency) as workers:
        while pending and offset is not None:
            sleep(max(0.0, start + offset - clock()))
            tried = list(workers.map(attempt, pending))
            for t, a in zip(pending, tried, strict=True):
                attempts[t.namespace] += [a] if a is not None else []
            pending = [t for t, a in zip(pending, tried, strict=True) if a and not (a.granted or a.final)]
            offset = next_offset(offsets, clock() - start)
            if on_retry is not None and offset is not None:  # each refused namespace is tried again then
                wait = max(0.0, start + offset - clock())
                for t in pending:
                    on_retry(t, attempts[t.namespace][-1], len(attempts[t.namespace]), wait)
    return tuple(Probed(t, tuple(attempts[t.namespace])) for t in targets)


AADSTS = re.compile(r"AADSTS\d+:.*?(?= Trace ID:|$)")


def entra_refusal(exc: Exception) -> str:
    """Entra's answer in one line, `AADSTS70021: No matching federated identity record ...`, without the trace and
    correlation ids; any other failure as its HTTP status (when there was an answer), type and first line."""
    text = str(getattr(exc, "message", None) or exc)
    found = AADSTS.search(text.replace("\n", " "))
    if found:
        return found.group(0).strip()
    first = (text.splitlines() or [""])[0].split(" Trace ID:")[0]
    status = getattr(exc, "status_code", None)
    return f"{'HTTP ' + str(status) + ' ' if status else ''}{type(exc).__name__}: {first}"


def probe_created(
    created: Sequence[Created], s: FicSettings, budget_left: float, tenant_id: str, scope: str
) -> ProbeResult:
    """Probe a sample of this run's creates for at most --probe-seconds, or what the run budget has left."""
    from jobs.fic_reconcile.cluster import kube_api
    from lib.clients.azure_auth import exchange_assertion
    from lib.clients.kube import MIN_TOKEN_SECONDS, KubeError, request_token

    targets, left_out = choose(created, s.probe_max_namespaces)
    window = max(0.0, min(s.probe_seconds, budget_left))
    if not targets or window <= 0:
        return ProbeResult(tuple(Probed(t) for t in targets), left_out, window)
    try:
        api = kube_api(s)
    except Exception as exc:  # the writes are done and reported; the probe that cannot start says so
        failed = Attempt(time.monotonic(), refusal=f"no Kubernetes client: {entra_refusal(exc)}", final=True)
        return ProbeResult(tuple(Probed(t, (failed,)) for t in targets), left_out, window)
    seconds = max(MIN_TOKEN_SECONDS, math.ceil(window) + 60)  # outlives every attempt; the API's minimum

    def mint(namespace: str, timeout: float) -> str:
        try:
            return request_token(api, namespace, s.service_account, EXCHANGE_AUDIENCE, seconds, timeout)
        except KubeError as exc:
            raise Refused(f"TokenRequest {namespace}/{s.service_account}: {exc}", exc.status in (401, 403)) from None
        except Exception as exc:  # whatever it is, one namespace's attempt: recorded, never the run's end
            raise Refused(f"TokenRequest {namespace}/{s.service_account}: {entra_refusal(exc)}") from None

    def exchange(client_id: str, token: str, timeout: float) -> None:
        try:
            exchange_assertion(tenant_id, client_id, token, scope, timeout)
        except Exception as exc:  # ClientAuthenticationError (Entra refused), a connection error, a timeout
            raise Refused(entra_refusal(exc)) from None

    def on_retry(t: Created, last: Attempt, attempt: int, wait: float) -> None:
        # the retry shape every client logs; debug: a refusal while Entra propagates a new FIC is the normal course
        log_retry("entra", f"exchange {t.namespace} as {t.identity}", attempt, wait, reason=last.refusal, level="debug")

    return ProbeResult(run(targets, window, mint, exchange, s.concurrency, on_retry=on_retry), left_out, window)
