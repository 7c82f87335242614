"""Settings: one frozen dataclass per job, every field reachable as a flag and as an env var.

Precedence is flag > env var > default. Every problem becomes a ConfigError whose one-line message
names the flag, the env var and what was expected, so the harness can exit 2 before any request.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

S = TypeVar("S")


class ConfigError(Exception):
    """Bad usage or configuration: exit 2, nothing written."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """Each problem on its own (one line each): a run reports every bad setting at once, not one per try."""
        return (self,)


class ConfigErrors(ConfigError):
    """Several settings are missing or invalid; str() is one line per setting."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        flat = tuple(e for error in errors for e in error.errors)
        super().__init__(", ".join(e.setting for e in flat), "; ".join(e.problem for e in flat))
        self.args = ("\n".join(str(e) for e in flat),)
        self._errors = flat

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return self._errors


def raise_all(errors: Sequence[ConfigError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()


# --help groups, in the order they print; a setting without a group is the job's own (printed first).
COMMON, AZURE, KUBERNETES, VAULT, CODER, SAFETY, OUTPUT = (
    "common", "Azure", "Kubernetes", "Vault", "Coder", "safety", "output",
)  # fmt: skip
GROUP_TITLES = {
    AZURE: "Azure",
    KUBERNETES: "Kubernetes",
    VAULT: "Vault",
    CODER: "Coder",
    SAFETY: "safety (what a run may write or delete)",
    OUTPUT: "output, logs and metrics",
    COMMON: "common (every job)",
}


@dataclass(frozen=True)
class Spec:
    flag: str
    env: str
    help: str
    parse: Callable[[str], Any]
    default: Any
    repeatable: bool = False
    switch: bool = False  # a flag without a value (store_true); its env var takes true/false
    sensitive: bool = False  # a URL or secret-like value: never echoed in an error (a URL can be a credential)
    group: str = ""  # a GROUP_TITLES key; "" is the job's own group
    metavar: str = ""  # what the value is (DURATION, URL, FILE); "" derives it from the parser
    secret: bool = False  # the value is a credential (a Slack webhook URL): logs show only whether it is set

    @property
    def label(self) -> str:
        return f"{self.flag} ({self.env})"


def default_env(flag: str) -> str:
    return "CWJ_" + flag.lstrip("-").upper().replace("-", "_")


def setting(
    flag: str,
    help: str,
    *,
    env: str | None = None,
    parse: Callable[[str], Any] = str,
    default: Any = REQUIRED,
    repeatable: bool = False,
    sensitive: bool | None = None,
    group: str = "",
    metavar: str = "",
    secret: bool = False,
) -> Any:
    """`sensitive` defaults to true for the URL parsers: their errors never show the value (see `_withhold`).
    `secret` (implies sensitive): the value is a credential, logged only as whether it is set (lib/cli.py)."""
    hidden = is_url_parser(parse) if sensitive is None else sensitive
    spec = Spec(
        flag,
        env or default_env(flag),
        help,
        parse,
        default,
        repeatable,
        sensitive=hidden or secret,
        group=group,
        metavar=metavar,
        secret=secret,
    )
    return field(metadata={"cwj": spec})


def switch(flag: str, help: str, *, env: str | None = None, group: str = "") -> Any:
    spec = Spec(flag, env or default_env(flag), help, parse_bool, False, switch=True, group=group)
    return field(metadata={"cwj": spec})


def specs(cls: type[Any]) -> list[tuple[str, Spec]]:
    return [(f.name, f.metadata["cwj"]) for f in dataclasses.fields(cls) if "cwj" in f.metadata]


# ---- parsers: raise ValueError("expected ...") and the loader adds the setting's name -----------------


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


# ---- URLs: https only, and never echoed ------------------------------------------------------------------
#
# Every URL a job sends a credential to (Vault: the service-account JWT and the Vault token; Coder: the
# session token; Key Vault and ARM: Entra bearer tokens; the webhook: its URL is the credential; the
# Pushgateway: basic auth or a network position) must be https. Plain http is allowed for Vault, the webhook
# and the Pushgateway only when the run says --allow-insecure-http AND the host is loopback: a local test
# server on 127.0.0.1, never a pod network. Coder, Key Vault, ARM and the issuer are https with no override
# (the emulators speak TLS; azure-core refuses bearer tokens over http anyway). Errors name the setting and
# what was expected; they show at most the scheme and host of a value that parsed as an http(s) URL, never
# its path, query or userinfo (a Slack webhook's path is its secret; a URL can carry user:pw@ or ?token=).

INSECURE_OVERRIDE = "--allow-insecure-http (CWJ_ALLOW_INSECURE_HTTP)"


@dataclass(frozen=True)
class _Url:
    scheme: str
    host: str  # hostname[:port], without userinfo; "" when there is none
    hostname: str


def _url(raw: str) -> _Url | None:
    """The parts we may show, or None for text that is not an absolute URL with a host."""
    try:
        parsed = urlparse(raw.strip())
        port = parsed.port  # urlparse checks the port only when asked
    except ValueError:
        return None
    if not parsed.scheme or not parsed.hostname:
        return None
    hostname = parsed.hostname
    shown = f"[{hostname}]" if ":" in hostname else hostname
    return _Url(parsed.scheme.lower(), shown + (f":{port}" if port is not None else ""), hostname)


def is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _checked_url(raw: str) -> _Url:
    url = _url(raw)
    if url is None:
        raise ValueError("expected an https:// URL with a host (the value is not shown: a URL can hold a credential)")
    if url.scheme not in {"http", "https"}:
        raise ValueError("expected an https:// URL, got another scheme (the value is not shown)")
    return url


def parse_https_url(raw: str) -> str:
    """https only, no override: Coder, the issuer (an identity Entra compares, https by rule) and the Azure
    endpoints (azure-core refuses to send a bearer token over http anyway)."""
    url = _checked_url(raw)
    if url.scheme != "https":
        raise ValueError(f"expected an https:// URL, got http:// for {url.host}")
    return raw.strip()


def parse_service_url(raw: str) -> str:
    """https, or http:// to a loopback host when the run allows it (checked by `resolve`, which knows)."""
    _checked_url(raw)
    return raw.strip().rstrip("/")


def optional(parse: Callable[[str], Any], empty: Any = None) -> Callable[[str], Any]:
    """Blank text means unset (`empty`); anything else goes through `parse`. Keeps `parse`'s URL-ness."""

    def parse_optional(raw: str) -> Any:
        return parse(raw) if raw.strip() else empty

    parse_optional.url_parser = parse  # type: ignore[attr-defined]
    return parse_optional


def _service_url_parser(parse: Callable[[str], Any]) -> bool:
    return parse is parse_service_url or getattr(parse, "url_parser", None) is parse_service_url


def is_url_parser(parse: Callable[[str], Any]) -> bool:
    return parse in (parse_https_url, parse_service_url) or getattr(parse, "url_parser", None) is not None


def check_transport(spec: Spec, value: Any, allow_insecure_http: bool) -> None:
    """Refuse http:// unless the run allows it and the host is loopback; ConfigError names the setting."""
    if not _service_url_parser(spec.parse) or not isinstance(value, str):
        return
    url = _url(value)
    if url is None or url.scheme == "https":
        return
    if not allow_insecure_http:
        raise ConfigError(
            spec.label,
            f"expected an https:// URL, got http:// for {url.host}: http would carry credentials in clear text "
            f"({INSECURE_OVERRIDE} admits http:// to a loopback host, for local tests only)",
        )
    if not is_loopback(url.hostname):
        raise ConfigError(
            spec.label,
            f"expected an https:// URL, got http:// for {url.host}: {INSECURE_OVERRIDE} admits http:// only to a "
            "loopback host (127.0.0.0/8, ::1, localhost)",
        )


@dataclass(frozen=True)
class _AtLeast:
    minimum: int

    def __call__(self, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number >= {self.minimum}, got {raw!r}") from None
        if value < self.minimum:
            raise ValueError(f"expected a whole number >= {self.minimum}, got {raw!r}")
        return value


def int_at_least(minimum: int) -> Callable[[str], int]:
    return _AtLeast(minimum)


@dataclass(frozen=True)
class _OneOf:
    choices: tuple[str, ...]  # shown in --help as {a,b,c}

    def __call__(self, raw: str) -> str:
        if raw not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {raw!r}")
        return raw


@dataclass(frozen=True)
class _Between:
    minimum: int
    maximum: int

    def __call__(self, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = self.minimum - 1
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"expected a whole number from {self.minimum} to {self.maximum}, got {raw!r}")
        return value


def int_between(minimum: int, maximum: int) -> Callable[[str], int]:
    return _Between(minimum, maximum)


def one_of(*choices: str) -> Callable[[str], str]:
    return _OneOf(tuple(choices))


def parse_uuid(raw: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", raw):
        raise ValueError(f"expected a UUID, got {raw!r}")
    return raw.lower()


def parse_json_string_list(raw: str) -> tuple[str, ...]:
    """An ordered, non-empty JSON array of unique non-empty strings (order is part of the contract)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected a JSON array of strings, got invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise ValueError("expected a JSON array of strings, got JSON nested too deeply") from None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("expected a JSON array of non-empty strings")
    if not value:
        raise ValueError("expected a non-empty JSON array")
    seen: set[str] = set()
    for item in value:
        if item.lower() in seen:
            raise ValueError(f"expected unique entries, {item!r} appears twice")
        seen.add(item.lower())
    return tuple(value)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}


def parse_duration(raw: str) -> timedelta:
    """Go-style durations (`720h`, `1h30m`) plus day, week and year units (`30d`)."""
    text = raw.strip()
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"expected a duration such as 30d, 720h or 1h30m, got {raw!r}")
    try:
        return timedelta(seconds=total)
    except OverflowError:
        raise ValueError(f"expected a duration under {timedelta.max.days} days, got {raw!r}") from None


def parse_seconds(raw: str) -> float:
    """A duration above zero (`30s`, `500ms`, `2m`) in seconds."""
    seconds = parse_duration(raw).total_seconds()
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero such as 30s, got {raw!r}")
    return seconds


def parse_positive_seconds(raw: str) -> float:
    """A plain number of seconds above zero (`480`, `7.5`): what a chart computes from activeDeadlineSeconds."""
    value = float(raw) if raw.strip().replace(".", "", 1).isdigit() else -1.0
    if value <= 0:
        raise ValueError(f"expected a number of seconds above zero, got {raw!r}")
    return value


def parse_rate(raw: str) -> float:
    """A finite rate above zero (requests per second)."""
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"expected a rate above zero (requests per second), got {raw!r}")
    return value


def parse_timestamp(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected an RFC 3339 timestamp, got {raw!r}") from None
    if value.tzinfo is None:
        raise ValueError(f"expected an RFC 3339 timestamp with a time zone, got {raw!r}")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted past the calendar's ends
        raise ValueError(f"expected an RFC 3339 timestamp between years 1 and 9999 in UTC, got {raw!r}") from None


def parse_kv_path(raw: str) -> str:
    """A Vault mount or KV path as hvac joins it: no leading, trailing or doubled '/'."""
    if not raw or raw.startswith("/") or raw.endswith("/") or "//" in raw:
        raise ValueError(f"expected a KV path without leading, trailing or doubled '/', got {raw!r}")
    return raw


def parse_cluster_name(raw: str) -> str:
    """A name that is safe as a Prometheus label value and as a Pushgateway path segment."""
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?", raw):
        raise ValueError(f"expected 1-63 letters, digits, '.', '_' or '-', alphanumeric at both ends, got {raw!r}")
    return raw


def parse_readable_file(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError(f"expected a readable file, {raw!r} does not exist")
    return path


# ---- options every job shares ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = switch("--dry-run", "observe and print the plan; write nothing", group=SAFETY)
    output: str = setting(
        "--output",
        "the plan or report: a table (text) or one JSON document (json) on stdout after the last log line, or "
        "one run.report / run.plan record among the JSON logs (log), for log pipelines",
        parse=one_of("text", "json", "log"),
        default="text",
        group=OUTPUT,
    )
    log_format: str = setting(
        "--log-format",
        "log format on stderr (auto: JSON lines unless stderr is a terminal)",
        parse=one_of("auto", "json", "console"),
        default="auto",
        group=OUTPUT,
    )
    log_level: str = setting(
        "--log-level",
        "lowest level logged",
        parse=one_of("debug", "info", "warning", "error"),
        default="info",
        group=OUTPUT,
    )
    cluster: str = setting(
        "--cluster",
        "this cluster's name: the `cluster` label and Pushgateway group of every metric pushed, so clusters "
        "sharing one Pushgateway never overwrite each other",
        parse=parse_cluster_name,
        default="default",
        group=OUTPUT,
    )
    now: datetime | None = setting(
        "--now",
        "judge time-based rules as of this RFC 3339 instant (rehearsal); default the system clock",
        parse=parse_timestamp,
        default=None,
        group=COMMON,
    )
    request_timeout: float | None = setting(
        "--request-timeout",
        "longest wait for one HTTP request to connect or answer, e.g. 10s; default each client's own (5-60s)",
        parse=parse_seconds,
        default=None,
        group=COMMON,
    )
    retry_deadline: float | None = setting(
        "--retry-deadline",
        "most time one call spends retrying transient errors, e.g. 30s; default each call's own (45-120s)",
        parse=parse_seconds,
        default=None,
        group=COMMON,
    )
    allow_insecure_http: bool = switch(
        "--allow-insecure-http",
        "local tests only: admit http:// to a loopback host (127.0.0.0/8, ::1, localhost) for the Vault, webhook "
        "and Pushgateway URLs; every other URL stays https",
        group=SAFETY,
    )


def _resolve(spec: Spec, from_flag: Any, environ: Mapping[str, str]) -> Any:
    if from_flag is not None:
        raws = from_flag if spec.repeatable else [from_flag]
    elif spec.env in environ:
        env_value = environ[spec.env]
        raws = [p for p in (s.strip() for s in env_value.split(",")) if p] if spec.repeatable else [env_value]
    elif spec.default is REQUIRED:
        raise ConfigError(spec.label, "is required")
    else:
        return spec.default
    try:
        values = [spec.parse(raw) for raw in raws]
    except ValueError as exc:
        problem = _withhold(str(exc), raws) if spec.sensitive else str(exc)
        raise ConfigError(spec.label, problem) from None
    return tuple(values) if spec.repeatable else values[0]


WITHHELD = "[value withheld]"


def _withhold(problem: str, raws: Sequence[str]) -> str:
    """The net under the parsers' own care: a sensitive setting's raw text (or its repr) never reaches an error."""
    for raw in raws:
        for form in {raw, raw.strip(), repr(raw), repr(raw.strip())}:
            if len(form) >= 4:
                problem = problem.replace(form, WITHHELD)
    return problem


def resolve(
    cls: type[S], parsed: argparse.Namespace, environ: Mapping[str, str], *, allow_insecure_http: bool = False
) -> S:
    """Every field, then the cross-field rules; every missing or invalid field is reported at once
    (ConfigErrors), a single one as a plain ConfigError. http:// URLs pass only under `allow_insecure_http`
    to a loopback host."""
    values, errors = {}, []
    for name, spec in specs(cls):
        try:
            values[name] = _resolve(spec, getattr(parsed, name), environ)
            check_transport(spec, values[name], allow_insecure_http)
        except ConfigError as exc:
            errors.append(exc)
    raise_all(errors)
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if callable(check):
        check()  # cross-field rules; raises ConfigError
    return instance


def resolve_run(cls: type[S], parsed: argparse.Namespace, environ: Mapping[str, str]) -> tuple[RunOptions, S]:
    """RunOptions and the job's settings, every error of both gathered into one ConfigErrors. The run's
    --allow-insecure-http decides the job's URLs (off when RunOptions itself is bad)."""
    errors: list[ConfigError] = []
    options: RunOptions | None = None
    try:
        options = resolve(RunOptions, parsed, environ)
    except ConfigError as exc:
        errors.append(exc)
    allow_http = options.allow_insecure_http if options is not None else False
    try:
        settings = resolve(cls, parsed, environ, allow_insecure_http=allow_http)
    except ConfigError as exc:
        errors.append(exc)
    raise_all(errors)
    assert options is not None  # raise_all raised otherwise
    return options, settings


def label_of(cls: type[Any], name: str) -> str:
    """`--flag (ENV)` for a field, for ConfigErrors raised after parsing (cross-field or remote checks)."""
    return dict(specs(cls))[name].label
