"""Where the official API descriptions live: `shared/api-specs/` beside the repository (as in CI), or
wherever CWJ_SHARED_DIR points."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CWJ_SHARED_DIR", REPO.parent / "shared"))
API_SPECS = SHARED / "api-specs"
assert API_SPECS.is_dir(), f"api-specs not found at {API_SPECS}: set CWJ_SHARED_DIR to the shared/ folder"
