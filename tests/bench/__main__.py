"""`make bench`: run every tests/bench/bench_*.py module's main(); each prints its own numbers."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import tests.bench


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(tests.bench.__path__) if m.name.startswith("bench_"))
    if not names:
        print("no benchmarks yet")
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(f"tests.bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
