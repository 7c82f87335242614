from __future__ import annotations

import importlib
import sys
import tempfile
import time
from pathlib import Path

from tests.demo import Demo, base_env
from tests.emulators.platform import Platform

JOBS = ("fic_reconcile", "keyvault_sync", "coder_token_mint", "token_expiry_check")


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cwj-demo-") as tmp:
        platform = Platform(Path(tmp)).start()
        try:
            demo = Demo(platform, base_env(platform))
            print("coder-wi-jobs demo: the emulated platform is up")
            for service, url in sorted((e.service, e.url) for e in platform.emulators):
                print(f"  {service:16} {url}")
            for job in JOBS:
                platform.reset()
                demo.say(job.replace("_", "-"))
                importlib.import_module(f"tests.demo.{job}").run(demo)
        finally:
            platform.stop()
    print(f"\ndemo finished in {time.monotonic() - started:.1f}s")
    if demo.failures:
        print("demo FAILED:\n  " + "\n  ".join(demo.failures))
        return 1
    print("demo OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
