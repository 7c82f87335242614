"""fic-reconcile: not implemented yet (see its issue); exits 2 so a CronJob never mistakes it for success."""

from __future__ import annotations

import sys


def main() -> None:
    print("fic-reconcile: not implemented yet", file=sys.stderr)
    sys.exit(2)
