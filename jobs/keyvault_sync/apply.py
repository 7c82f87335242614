"""keyvault-sync's writes: the plan's actions against the two vaults, `--write-concurrency` at a time.

- Actions start in the plan's order and are reported in the plan's order, whatever finished first.
- One pace for new versions, shared by every worker (the run budget's token bucket at
  `--keyvault-creates-per-second`: Key Vault's smallest limit is CREATE secret, 300 per 10 s per vault). PATCH,
  delete and recover count against the vault's larger "all other transactions" limit and are not paced.
  Retries (429 honouring Retry-After, 5xx) stay within the budget's time left.
- The budget (`--max-run-seconds`, lib/budget.py): no action and no write starts once the time left would not
  cover the reserve. What did not start is `deferred`, and so is a call Key Vault still throttled when its
  retries ran out of time: not a failure; the next run observes afresh and continues.
- Permissions: the cluster vault's role is granted on the whole vault, so its first 403 ForbiddenByRbac means
  every later action would be refused the same way: after it no action and no write starts; those are
  `failed`, "not attempted". The first action runs alone, so a wrong assignment there is refused once. A
  request already sent when the refusal arrives (at most write-concurrency - 1 of them) finishes and reports
  its own answer; an action between two of its requests sends no further write. The seed vault's read grants
  are per secret (README "Azure"): its ForbiddenByRbac fails that entry alone (a name slipped into the
  allowlist without its grant), before any write for it, and the others go on.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from jobs.keyvault_sync.detect import marker
from jobs.keyvault_sync.plan import (
    MAX_TAGS,
    Adopt,
    Copy,
    Prune,
    RecoverCopy,
    UpdateProperties,
    decide_adoption,
    desired_props,
    patch_can_reach,
)
from jobs.keyvault_sync.settings import Settings
from lib.budget import RunBudget, deferral_findings
from lib.clients.keyvault_types import KeyVaultError, Props
from lib.model import Action, Finding, Outcome, Plan, Report, Result

if TYPE_CHECKING:
    from lib.clients.keyvault import KeyVault

Done = tuple[Outcome, tuple[Finding, ...]]
Refreshed = tuple[Literal["ok", "skipped"], str]
DEFERRED = "run budget spent: the next run continues"


@dataclass(frozen=True)
class Clients:
    source: KeyVault
    target: KeyVault
    budget: RunBudget  # started in connect, before the first call


class NotStarted(Exception):
    """A write the gate did not let start: deferred (the budget) or not attempted (a refusal)."""

    def __init__(self, result: Result, detail: str) -> None:
        super().__init__(detail)
        self.result, self.detail = result, detail


class Gate:
    """What every worker asks before an action and before each write: the run's first refusal by the vault whose
    role is vault-wide (`stops_on`, the cluster vault's label) and its budget."""

    def __init__(self, budget: RunBudget, stops_on: str) -> None:
        self.budget, self.stops_on = budget, stops_on
        self._refused: KeyVaultError | None = None
        self._lock = threading.Lock()

    def saw(self, exc: KeyVaultError) -> None:
        if exc.inner == "ForbiddenByRbac" and exc.vault == self.stops_on:
            with self._lock:
                self._refused = self._refused or exc

    def _not_refused(self) -> None:
        with self._lock:
            refused = self._refused
        if refused is not None:
            raise NotStarted("failed", f"not attempted: {refused}")

    def start(self) -> None:
        """An action, or a write that is not a new version (PATCH, delete, recover)."""
        self._not_refused()
        if not self.budget.can_start():
            raise NotStarted("deferred", DEFERRED)

    def create(self) -> None:
        """A new version: waits for the shared pace; a refusal that came meanwhile still stops it."""
        self._not_refused()
        if not self.budget.take_write():
            raise NotStarted("deferred", DEFERRED)
        self._not_refused()

    def left(self) -> float:
        return self.budget.left()


def apply(the_plan: Plan, clients: Clients, settings: Settings) -> Report:
    gate = Gate(clients.budget, stops_on=clients.target.label)
    actions = the_plan.actions

    def run(action: Action) -> Done:
        return run_action(action, clients, settings, gate)

    done = [run(actions[0])] if actions else []  # alone: a wrong role is refused once, not once per worker
    with ThreadPoolExecutor(max_workers=settings.write_concurrency) as workers:
        done += workers.map(run, actions[1:])  # started in plan order, results in plan order
    outcomes = tuple(outcome for outcome, _ in done)
    findings = [f for _, found in done for f in found]
    return Report(the_plan, outcomes, tuple([*findings, *deferral_findings(outcomes)]))


def run_action(action: Action, clients: Clients, settings: Settings, gate: Gate) -> Done:
    findings: list[Finding] = []
    try:
        gate.start()
        outcome = HANDLERS[type(action)](action, clients, settings, gate, findings)
    except NotStarted as stop:
        outcome = Outcome(action, stop.result, stop.detail)
    except KeyVaultError as exc:
        gate.saw(exc)
        # Still throttled when its retries ran out of time: the vault is busy, the next run continues.
        outcome = Outcome(action, "deferred" if exc.status == 429 else "failed", str(exc))
    return outcome, tuple(findings)


def _write_copy(clients: Clients, gate: Gate, source: str, target: str) -> str:
    """Read the seed's current version and write it to the target. Returns the seed version copied. The pace's
    token is taken first: a copy the budget defers has read no value."""
    gate.create()
    seen_at = clients.source.server_time  # before the read is sent: detect.settled
    seed = clients.source.read(source, within=gate.left())
    props = desired_props(seed.meta.props, seed.meta.version, marker(seed.meta.updated, seen_at))
    if len(props.tags) > MAX_TAGS:
        raise KeyVaultError(f"{source} has {len(seed.meta.props.tags)} tags; the target would exceed {MAX_TAGS}")
    clients.target.set(target, seed.value, props, within=gate.left())
    return str(seed.meta.version)


def _refresh(
    clients: Clients, gate: Gate, source: str, target: str, carried: str | None, current: Props | None
) -> Refreshed:
    """Bring a target up to date with the seed's current version: when it already holds that version's value
    (the read names it), PATCH its properties (or nothing); otherwise write a new version."""
    if carried is not None and current is not None:
        seen_at = clients.source.server_time
        seed = clients.source.read(source, within=gate.left())  # the lists could not tell; the read names it
        if seed.meta.version == carried:
            desired = desired_props(seed.meta.props, carried, marker(seed.meta.updated, seen_at))
            if desired == current:
                return "skipped", f"already carries seed version {carried}"
            if patch_can_reach(current, desired):
                gate.start()
                clients.target.update(target, None, desired, within=gate.left())
                return "ok", f"already carries seed version {carried}: properties updated"
    return "ok", f"new version from seed version {_write_copy(clients, gate, source, target)}"


def _copy(action: Copy, clients: Clients, settings: Settings, gate: Gate, findings: list[Finding]) -> Outcome:
    current = action.current_source_version
    result, detail = _refresh(clients, gate, action.source, action.target, current, action.target_props)
    return Outcome(action, result, detail)


def _recover_copy(
    action: RecoverCopy, clients: Clients, settings: Settings, gate: Gate, findings: list[Finding]
) -> Outcome:
    clients.target.recover(action.target, within=gate.left())
    if action.current:
        return Outcome(action, "ok", "recovered; its tags show the seed's current version and properties")
    # Started: the recovery is finished whatever the budget says (a recovered secret must answer).
    clients.target.wait_until_recovered(action.target, settings.recover_timeout.total_seconds())
    _, detail = _refresh(clients, gate, action.source, action.target, action.carried_version, action.target_props)
    return Outcome(action, "ok", f"recovered, then {detail}")


def _adopt(action: Adopt, clients: Clients, settings: Settings, gate: Gate, findings: list[Finding]) -> Outcome:
    seen_at = clients.source.server_time
    seed = clients.source.read(action.source, within=gate.left())
    current = clients.target.read(action.target, within=gate.left())
    equal = hmac.compare_digest(seed.value.encode(), current.value.encode())  # in memory only, never logged
    decision = decide_adoption(equal, action.overwrite)
    if decision == "refuse":
        message = "exists, was not written by this job and holds a different value; rerun with --adopt to overwrite"
        findings.append(Finding("error", "unmanaged-conflict", action.target, message))
        return Outcome(action, "skipped", "refused: value differs from the seed")
    desired = desired_props(seed.meta.props, seed.meta.version, marker(seed.meta.updated, seen_at))
    if decision == "tag" and patch_can_reach(current.meta.props, desired):
        gate.start()
        clients.target.update(action.target, current.meta.version, desired, within=gate.left())
        return Outcome(action, "ok", "equal value: tagged as ours, no new version")
    version = _write_copy(clients, gate, action.source, action.target)
    why = "value differs, overwritten (--adopt)" if decision == "overwrite" else "equal value, properties need one"
    return Outcome(action, "ok", f"{why}: new version from seed version {version}")


def _update(
    action: UpdateProperties, clients: Clients, settings: Settings, gate: Gate, findings: list[Finding]
) -> Outcome:
    clients.target.update(action.target, None, action.props, within=gate.left())
    return Outcome(action, "ok", "properties updated, no new version")


def _prune(action: Prune, clients: Clients, settings: Settings, gate: Gate, findings: list[Finding]) -> Outcome:
    clients.target.soft_delete(action.target, within=gate.left())
    return Outcome(action, "ok", "soft-deleted (recoverable)")


HANDLERS: dict[type, Callable[..., Outcome]] = {
    Copy: _copy,
    RecoverCopy: _recover_copy,
    Adopt: _adopt,
    UpdateProperties: _update,
    Prune: _prune,
}
