"""Plans and reports as a readable table or one JSON document. Every cell and section is scrubbed before it is
formatted (a JSON-encoded section escapes quotes and non-ASCII, so a registered secret would no longer match
after), and the whole text once more at the end, for the token shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lib.model import Outcome, Plan, Report, action_counts, finding_counts, outcome_counts
from lib.redact import scrub, to_json


def rfc3339(value: datetime | None) -> str:
    """The one timestamp format of plans, reports and findings: UTC to the second, `Z`; "" for none."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def table(rows: Sequence[Mapping[str, Any]], empty: str = "(none)") -> str:
    """Cells are scrubbed first: padding and joining then work on text that holds no secret."""
    if not rows:
        return empty
    rows = [{str(k): scrub(str(v)) for k, v in row.items()} for row in rows]
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)


def _outcome_row(outcome: Outcome) -> dict[str, str]:
    return {**outcome.action.describe(), "result": outcome.result, "detail": outcome.detail}


def _sections_text(sections: Mapping[str, Any]) -> list[str]:
    parts = []
    for name, value in sections.items():
        if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
            parts += [f"\n{name}:", table(value)]
        else:
            parts += [f"\n{name}: {to_json(value)}"]
    return parts


def plan_text(job: str, plan: Plan) -> str:
    parts = [
        f"{job} plan: {len(plan.actions)} action(s) {action_counts(plan)}",
        table([a.describe() for a in plan.actions]),
    ]
    if plan.findings:
        parts += ["\nfindings:", table([f.describe() for f in plan.findings])]
    parts += _sections_text(plan.sections)
    if plan.refusal:
        parts += [f"\nREFUSED: {plan.refusal}"]
    return scrub("\n".join(parts))


def plan_json(job: str, plan: Plan) -> dict[str, Any]:
    return {
        "job": job,
        "kind": "plan",
        "actions": [a.describe() for a in plan.actions],
        "findings": [f.describe() for f in plan.findings],
        "refusal": plan.refusal,
        **dict(plan.sections),
    }


def report_text(job: str, report: Report) -> str:
    parts = [
        f"{job} report: {outcome_counts(report) or 'nothing to do'}",
        table([_outcome_row(o) for o in report.outcomes], empty="(no actions)"),
    ]
    if report.all_findings:
        parts += ["\nfindings:", table([f.describe() for f in report.all_findings])]
    parts += _sections_text({**report.plan.sections, **report.sections})
    return scrub("\n".join(parts))


def report_json(job: str, report: Report) -> dict[str, Any]:
    return {
        "job": job,
        "kind": "report",
        "outcomes": [_outcome_row(o) for o in report.outcomes],
        "findings": [f.describe() for f in report.all_findings],
        "counts": {"outcomes": outcome_counts(report), "findings": finding_counts(report.all_findings)},
        **dict(report.plan.sections),
        **dict(report.sections),
    }


def as_json(document: Mapping[str, Any]) -> str:
    return to_json(document, indent=2)
