"""`python -m tests.emulators up --env-file PATH [--state-dir DIR]`: start the local platform, write the
env file, print `ready`, and run until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

from tests.emulators.platform import Platform


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start every emulator and write the env file")
    up.add_argument("--env-file", required=True, type=Path, help="where to write KEY=VALUE lines")
    up.add_argument("--state-dir", type=Path, help="CA, tokens and kubeconfig (default: a temporary directory)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="cwj-platform-") as tmp:
        platform = Platform(args.state_dir or Path(tmp)).start()
        try:
            platform.write_env_file(args.env_file)
            print("ready", flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            platform.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
