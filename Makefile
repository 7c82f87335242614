# Every target bootstraps .venv itself, so `make demo` and `make test` work on a fresh clone with only
# Python 3.11+ and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: venv test test-image lint demo bench wheels image lock clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# The image tests need buildah, podman, runc and mmdebstrap (Debian packages, root to install): they run
# in `make test-image`, which .ci/run adds after installing them; `make test` needs only Python and make.
test: venv
	$(BIN)/python -m pytest -q --ignore=tests/container

test-image: venv
	$(BIN)/python -m pytest -q tests/container

wheels: venv
	$(BIN)/python -m tests.container.build wheels

image: venv
	$(BIN)/python -m tests.container.build image

# Regenerate requirements-image.txt (pins + hashes) from the tested venv after changing a dependency.
lock: venv
	$(BIN)/python -m tests.container.build lock

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
