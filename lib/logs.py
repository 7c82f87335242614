"""structlog setup: JSON lines on stderr in a pod, a console renderer on a TTY, redaction on every line.

The SDKs' own stdlib logging goes through the same processors, so an azure-core warning is a JSON line
with `job` and `run_id` too, and is scrubbed like ours.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from lib.redact import scrub_obj

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


_RUN_FIELDS: dict[str, str] = {}


def _add_run_fields(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # a module global, not contextvars: worker threads (one per identity) must carry job and run_id too
    for key, value in _RUN_FIELDS.items():
        event_dict.setdefault(key, value)
    return event_dict


def _redact(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    scrubbed: dict[str, Any] = scrub_obj(event_dict)
    return scrubbed


def _renderer(log_format: str, stream: TextIO) -> Any:
    console = log_format == "console" or (log_format == "auto" and stream.isatty())
    if console:
        return structlog.dev.ConsoleRenderer(colors=stream.isatty())
    return structlog.processors.JSONRenderer(sort_keys=False)


def configure(
    job: str, run_id: str, log_format: str = "auto", level: str = "info", stream: TextIO | None = None
) -> None:
    out = stream or sys.stderr
    shared: list[Any] = [
        _add_run_fields,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,  # exception text becomes a string before it is scrubbed
        _redact,
    ]
    structlog.configure(
        processors=[*shared, _renderer(log_format, out)],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    _RUN_FIELDS.clear()
    _RUN_FIELDS.update(job=job, run_id=run_id)

    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _renderer(log_format, out),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)  # the SDKs are chatty at INFO (every HTTP request); keep their warnings
    # but not urllib3's "Retrying (Retry(total=3, ...))": every retry is logged once, as event `retry`, by the
    # client that retries (lib/retry.py, lib/http.py)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger().bind(**bound)
