"""The shapes every job shares: actions (what a plan would do), findings (what it noticed), outcomes
(what applying an action did), and the plan and report that carry them. All frozen: a plan printed by
--dry-run is the very object apply would execute."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Severity = Literal["info", "warning", "error", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "error": 2, "critical": 3}
Result = Literal["ok", "failed", "skipped", "deferred"]  # deferred: not started (run budget); not a failure


class Action(Protocol):
    @property
    def kind(self) -> str: ...

    def describe(self) -> dict[str, str]:
        """Columns for the plan table, in display order. Never a secret value."""
        ...


@dataclass(frozen=True)
class Finding:
    severity: Severity
    rule: str
    subject: str
    message: str

    def describe(self) -> dict[str, str]:
        return {
            "severity": self.severity,
            "rule": self.rule,
            "subject": self.subject,
            "message": self.message,
        }


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    findings: tuple[Finding, ...] = ()
    refusal: str | None = None  # a safety guard said no: exit 3, nothing written
    sections: Mapping[str, Any] = field(default_factory=dict)  # job-specific extras (capacity, ...)


@dataclass(frozen=True)
class Outcome:
    action: Action
    result: Result
    detail: str = ""


@dataclass(frozen=True)
class Report:
    plan: Plan
    outcomes: tuple[Outcome, ...] = ()
    findings: tuple[Finding, ...] = ()  # found while applying (drift, verification)
    sections: Mapping[str, Any] = field(default_factory=dict)

    @property
    def all_findings(self) -> tuple[Finding, ...]:
        return self.plan.findings + self.findings

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.result == "failed")


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`{field, before, after}` for every field whose value differs (all of `after` when there is no before), in
    `after`'s order: what an update changes, for the plan a change ticket quotes."""
    old = before or {}
    return [{"field": k, "before": old.get(k), "after": v} for k, v in after.items() if old.get(k) != v]


def worst_at_least(findings: tuple[Finding, ...], threshold: str) -> bool:
    if threshold == "never":
        return False
    return any(SEVERITY_ORDER[f.severity] >= SEVERITY_ORDER[threshold] for f in findings)


def has_errors(findings: tuple[Finding, ...]) -> bool:
    """An `error` finding: the job could not see or do something it must (a blind run never passes)."""
    return any(f.severity == "error" for f in findings)


def action_counts(plan: Plan) -> dict[str, int]:
    return dict(sorted(Counter(a.kind for a in plan.actions).items()))


def outcome_counts(report: Report) -> dict[str, int]:
    return dict(sorted(Counter(f"{o.action.kind}.{o.result}" for o in report.outcomes).items()))


def finding_counts(findings: tuple[Finding, ...]) -> dict[str, int]:
    return dict(sorted(Counter(f.severity for f in findings).items()))
