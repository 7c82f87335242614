"""`--help` of the four jobs from two source trees, interleaved, with this venv's interpreter: which tree starts
faster, measured so that other load on a shared machine falls on both alike. Not part of `make bench`.

Run: `git archive main | tar -x -C /tmp/cwj-main` then
`.venv/bin/python -m tests.bench.help_compare /tmp/cwj-main [rounds]`. Prints per job and variant the median
and fastest wall and the median and least CPU (user + sys) of `rounds` runs (default 11). Variants: the given
tree, this tree, and this tree with `rich` unimportable (the image does not ship it; structlog.dev imports it
when present). Each run's working directory and PYTHONPATH are the tree, ahead of the editable install.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.bench.bench_startup import JOBS
from tests.bench.common import median
from tests.docgen import JOBS as MODULES

HERE = Path(__file__).resolve().parents[2]
NO_RICH = "sys.modules['rich'] = None; "  # `import rich` then raises ImportError, as where it is not installed


def one_help(tree: Path, job: str, prelude: str) -> tuple[float, float]:
    """(wall, CPU) of one `<job> --help` importing the job from `tree`."""
    code = f"import sys; {prelude}sys.argv = [{job!r}, '--help']; from {MODULES[job]} import main; sys.exit(main())"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **_from(tree)
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{job} --help from {tree} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_utime + usage.ru_stime


def _from(tree: Path) -> dict[str, Any]:
    # `python -c` puts its working directory first on sys.path, ahead of PYTHONPATH: run it in the tree too
    return {"cwd": tree, "env": {**os.environ, "PYTHONPATH": str(tree)}}


def check_source(tree: Path) -> None:
    where = subprocess.run(
        [sys.executable, "-c", "import jobs; print(jobs.__file__)"], capture_output=True, text=True, **_from(tree)
    )
    if not where.stdout.startswith(f"{tree}/"):
        raise SystemExit(f"jobs imports from {where.stdout.strip() or where.stderr}, not from {tree}")


def main(other: Path, rounds: int) -> None:
    for tree in (other, HERE):
        check_source(tree)
    variants = {"given": (other, ""), "this": (HERE, ""), "this-no-rich": (HERE, NO_RICH)}
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {(v, j): [] for v in variants for j in JOBS}
    for tree, prelude in variants.values():
        for job in JOBS:
            one_help(tree, job, prelude)  # writes the tree's .pyc files before anything is timed
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    for _ in range(rounds):
        for job in JOBS:
            for name, (tree, prelude) in variants.items():
                runs[(name, job)].append(one_help(tree, job, prelude))
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{'job':20} {'tree':13} {'wall median':>11} {'fastest':>8} {'CPU median':>10} {'least':>6}")
    for job in JOBS:
        for name in variants:
            walls, cpus = zip(*runs[(name, job)], strict=True)
            print(
                f"{job:20} {name:13} {median(list(walls)):11.3f} {min(walls):8.3f} {median(list(cpus)):10.3f} "
                f"{min(cpus):6.3f}"
            )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]).resolve(), int(sys.argv[2]) if len(sys.argv) > 2 else 11)
