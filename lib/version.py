"""The version of coder-wi-jobs, from the installed distribution's metadata (pyproject.toml is the one source)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version

DISTRIBUTION = "coder-wi-jobs"


@cache
def version() -> str:
    try:
        return distribution_version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
