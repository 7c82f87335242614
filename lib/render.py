"""Plans and reports as a readable table or one JSON document. Every cell and section is scrubbed before it is
formatted (a JSON-encoded section escapes quotes and non-ASCII, so a registered secret would no longer match
after), and the whole text once more at the end, for the token shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lib.model import Action, Outcome, Plan, Report, action_counts, finding_counts, outcome_counts
from lib.redact import scrub, to_json


def rfc3339(value: datetime | None) -> str:
    """The one timestamp format of plans, reports and findings: UTC to the second, `Z`; "" for none."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


SCHEMA_VERSION = 1  # of the JSON documents (docs/output.schema.json); bumped when a key changes meaning


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "(none)"  # an empty list, told apart from an absent value (-)
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], empty: str = "(none)") -> str:
    """Cells are scrubbed first: padding and joining then work on text that holds no secret."""
    if not rows:
        return empty
    rows = [{str(k): scrub(_cell(v)) for k, v in row.items()} for row in rows]
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r.get(c, "").ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)


def action_document(action: Action) -> dict[str, Any]:
    """One action as JSON, with the same keys in every job: `kind`, `target`, `reason`, `changes` (a list of
    `{field, before, after}`, empty unless the action updates something), then the job's own typed fields.
    An action's `document()` gives those; without one its `describe()` columns are used as they are."""
    own = getattr(action, "document", None)
    fields: dict[str, Any] = dict(own()) if callable(own) else dict(action.describe())
    fields.pop("action", None)
    fields.pop("kind", None)
    return {
        "kind": action.kind,
        "target": str(fields.pop("target", "")),
        "reason": str(fields.pop("reason", "")),
        "changes": list(fields.pop("changes", [])),
        **fields,
    }


def _outcome_row(outcome: Outcome) -> dict[str, str]:
    return {**outcome.action.describe(), "result": outcome.result, "detail": outcome.detail}


def _outcome_document(outcome: Outcome) -> dict[str, Any]:
    return {**action_document(outcome.action), "result": outcome.result, "detail": outcome.detail}


def counted(counts: Mapping[str, int]) -> str:
    """`12 create, 1 delete`: a count per kind (or kind.result) as a person writes it, not a dict."""
    return ", ".join(f"{n} {kind.replace('.', ' ')}" for kind, n in counts.items())


def _changes_text(actions: Sequence[Action]) -> list[str]:
    lines = [
        f"  {doc['target']}: {c['field']}: {_cell(c['before'])} -> {_cell(c['after'])}"
        for doc in (action_document(a) for a in actions)
        for c in doc["changes"]
    ]
    return ["\nchanges (before -> after):", *lines] if lines else []


def _sections_text(sections: Mapping[str, Any]) -> list[str]:
    parts = []
    for name, value in sections.items():
        if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
            parts += [f"\n{name}:", table(value)]
        else:
            parts += [f"\n{name}: {to_json(value)}"]
    return parts


def plan_text(job: str, plan: Plan) -> str:
    count = len(plan.actions)
    parts = [
        f"{job} plan: {count} action{'' if count == 1 else 's'}"
        + (f": {counted(action_counts(plan))}" if count else ""),
        table([a.describe() for a in plan.actions]),
        *_changes_text(plan.actions),
    ]
    if plan.findings:
        parts += ["\nfindings:", table([f.describe() for f in plan.findings])]
    parts += _sections_text(plan.sections)
    if plan.refusal:
        parts += [f"\nREFUSED: {plan.refusal}"]
    return scrub("\n".join(parts))


def plan_json(job: str, plan: Plan, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`context`: what the run knows about itself (version, run_id, as_of, dry_run, settings)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "job": job,
        "kind": "plan",
        **dict(context or {}),
        "counts": {"actions": action_counts(plan), "findings": finding_counts(plan.findings)},
        "actions": [action_document(a) for a in plan.actions],
        "findings": [f.describe() for f in plan.findings],
        "refusal": plan.refusal,
        **dict(plan.sections),
    }


def report_text(job: str, report: Report) -> str:
    parts = [
        f"{job} report: {counted(outcome_counts(report)) or 'nothing to do'}",
        table([_outcome_row(o) for o in report.outcomes], empty="(no actions)"),
        *_changes_text([o.action for o in report.outcomes]),
    ]
    if report.all_findings:
        parts += ["\nfindings:", table([f.describe() for f in report.all_findings])]
    parts += _sections_text({**report.plan.sections, **report.sections})
    return scrub("\n".join(parts))


def report_json(job: str, report: Report, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "job": job,
        "kind": "report",
        **dict(context or {}),
        "outcomes": [_outcome_document(o) for o in report.outcomes],
        "findings": [f.describe() for f in report.all_findings],
        "counts": {"outcomes": outcome_counts(report), "findings": finding_counts(report.all_findings)},
        **dict(report.plan.sections),
        **dict(report.sections),
    }


def as_json(document: Mapping[str, Any]) -> str:
    return to_json(document, indent=2)
