"""`make bench`: run every tests/bench/bench_*.py module's main(); each prints one figure per line with its bound
and OK/MISS (tests/bench/common.py), and the run ends with a tally: exit 1 when any line is a MISS."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import tests.bench
from tests.bench.common import tally


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(tests.bench.__path__) if m.name.startswith("bench_"))
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(f"tests.bench.{name}").main()
    return tally()


if __name__ == "__main__":
    sys.exit(main())
