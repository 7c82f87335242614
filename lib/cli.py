"""The command line around the settings: --help an SRE can act on (grouped, choices and units, human
defaults, required settings marked, examples and exit codes) and the effective settings a run logs and
reports (never a secret). The settings themselves, their parsers and resolution: lib/settings.py."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lib.settings import (
    GROUP_TITLES,
    REQUIRED,
    Spec,
    parse_bool,
    parse_duration,
    parse_https_url,
    parse_json_string_list,
    parse_kv_path,
    parse_positive_seconds,
    parse_rate,
    parse_readable_file,
    parse_seconds,
    parse_service_url,
    parse_timestamp,
    parse_uuid,
    specs,
)

# ---- --help: grouped, choices and units shown, human defaults, required settings marked ----------------------

_METAVARS: dict[Callable[[str], Any], str] = {
    parse_https_url: "URL",
    parse_service_url: "URL",
    parse_duration: "DURATION",
    parse_seconds: "DURATION",
    parse_positive_seconds: "SECONDS",
    parse_rate: "PER_SECOND",
    parse_timestamp: "RFC3339",
    parse_readable_file: "FILE",
    Path: "PATH",
    parse_uuid: "UUID",
    parse_json_string_list: "JSON",
    parse_kv_path: "PATH",
    parse_bool: "BOOL",
}


def metavar(spec: Spec) -> str:
    """What the value is: {a,b} for a choice, N for a count, DURATION, URL, FILE; else the flag's name."""
    if spec.metavar:
        return spec.metavar
    choices = getattr(spec.parse, "choices", None)  # one_of()
    if choices:
        return "{" + ",".join(choices) + "}"
    if getattr(spec.parse, "minimum", None) is not None:  # int_at_least(), int_between()
        return "N"
    inner = getattr(spec.parse, "url_parser", None)  # optional(parse): what it wraps
    return _METAVARS.get(inner or spec.parse) or spec.flag.lstrip("-").upper().replace("-", "_")


def format_duration(value: timedelta) -> str:
    """As the flags take it: 90s, 1m, 1h30m, 1d (the largest units that add up exactly)."""
    seconds = value.total_seconds()
    if seconds != int(seconds) or seconds <= 0:
        return f"{seconds:g}s"
    rest, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_default(spec: Spec) -> str | None:
    """The default as a person would type it (`1d`, `600`, `on`), or None when there is none to show."""
    value = spec.default
    if value is REQUIRED or value is None or value in ((), ""):
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def _help_text(spec: Spec) -> str:
    default = format_default(spec)
    tail = [f"env {spec.env}"]
    if default is not None and not spec.switch:
        tail.append(f"default {default}")
    if spec.repeatable:
        tail.append("repeatable; the env var takes a comma-separated list")
    required = "REQUIRED. " if spec.default is REQUIRED else ""
    return f"{required}{spec.help} [{'; '.join(tail)}]".replace("%", "%%")  # argparse %-formats help


EXIT_CODES_HELP = """exit codes:
  0  converged / healthy (a dry-run: the plan can be trusted)
  1  an action failed, an `error` finding (the job could not see something), or a finding at or above
     the job's threshold; each is in the report
  2  bad usage or configuration: every bad setting is named, one line each; nothing was written
  3  a safety guard refused the plan; nothing was written"""

VALUES_HELP = """values: every option is also an env var (flag > env var > default); secrets come from files.
  DURATION  30s, 90m, 1h30m, 1d, 2w    URL  https://host[:port][/path]    RFC3339  2026-01-02T03:04:05Z
  SECONDS   a plain number of seconds (480, 7.5)    PER_SECOND  a rate above zero (2, 0.5)
  BOOL      true/false, on/off, 1/0 (the env var of a switch)"""


def build_parser(
    prog: str,
    description: str,
    classes: Sequence[type[Any]],
    *,
    version: str | None = None,
    examples: Sequence[str] = (),
) -> argparse.ArgumentParser:
    epilog = [EXIT_CODES_HELP, VALUES_HELP]
    if examples:
        epilog.insert(0, "\n".join(["examples:", *(f"  {line}" for line in examples)]))
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        usage="%(prog)s [options]",
        epilog="\n\n".join(epilog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if version is not None:
        parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    by_group: dict[str, list[tuple[str, Spec]]] = {key: [] for key in ("", *GROUP_TITLES)}
    for cls in classes:
        for name, spec in specs(cls):
            by_group[spec.group if spec.group in GROUP_TITLES else ""].append((name, spec))
    for key, members in by_group.items():
        if not members:
            continue  # no empty headings
        group = parser.add_argument_group(GROUP_TITLES.get(key, f"{prog} settings"))
        for name, spec in members:
            text = _help_text(spec)
            if spec.switch:
                group.add_argument(spec.flag, dest=name, action="store_const", const="true", help=text)
            elif spec.repeatable:
                group.add_argument(spec.flag, dest=name, action="append", metavar=metavar(spec), help=text)
            else:
                group.add_argument(spec.flag, dest=name, metavar=metavar(spec), help=text)
    return parser


# ---- the effective settings, for the start line and the JSON documents ---------------------------------------


def effective(instance: Any, parsed: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """What a run uses, by flag name, as a person would type it: durations `1d`, paths, URLs without
    `user:password@`, a parsed file as its path; a secret setting only as "(set)". Never a secret value."""
    shown: dict[str, Any] = {}
    for name, spec in specs(type(instance)):
        value = getattr(instance, name)
        if spec.secret:
            shown[spec.flag.lstrip("-")] = "(set)" if value else None
            continue
        raw = getattr(parsed, name, None)
        shown[spec.flag.lstrip("-")] = _display(value, raw if raw is not None else environ.get(spec.env))
    return shown


def _display(value: Any, raw: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _without_userinfo(value) or None  # an unset setting is null in JSON, as an absent value is
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_display(v, None) for v in value]
    return _without_userinfo(raw) if isinstance(raw, str) else type(value).__name__  # a parsed file: its path


def settings_named_in(instance: Any, text: str) -> str:
    """` [check --flag (ENV) = URL]` for every URL setting whose host (and port) the text names, so an error
    about an endpoint says which setting pointed there; "" when none does. A secret setting shows no value."""
    hints = []
    for name, spec in specs(type(instance)):
        value = getattr(instance, name)
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            continue
        netloc = urlsplit(value).netloc.rsplit("@", 1)[-1]
        if netloc and netloc in text:
            hints.append(spec.label if spec.secret else f"{spec.label} = {_without_userinfo(value)}")
    return f" [check {'; '.join(hints)}]" if hints else ""


def _without_userinfo(text: str) -> str:
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@\s]*@", r"\1", text, flags=re.I)
