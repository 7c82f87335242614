# coder-wi-jobs: one image, four CronJob entrypoints (fic-reconcile, keyvault-sync, coder-token-mint,
# token-expiry-check). The Helm chart picks the job with the container's `command`; this image fixes none.
#
# The build installs nothing from the network: the pinned dependencies arrive as wheels in build/wheels/
# (made on the host, for linux/amd64 CPython 3.11, by `python -m tests.container.build wheels`), checked
# against the sha256 hashes in requirements-image.txt, and pip runs with --no-index. So a build is
# reproducible from the lock file alone, and no proxy, CA bundle or credential ever reaches the build.
# docs/container.md has the whole procedure.
#
#   python -m tests.container.build wheels
#   docker build --build-arg VERSION=0.1.0 -t coder-wi-jobs:0.1.0 .
#
# BASE_IMAGE + BASE_DIGEST: any Debian bookworm image with CPython 3.11, `python3 -m venv` and useradd, always
# pinned by digest: both stages start FROM ${BASE_IMAGE}@${BASE_DIGEST}, so a build without a digest fails
# ("invalid reference format") instead of taking whatever the tag points at today, and a digest the registry
# (or local storage) does not hold fails too. The default is the official slim image; its digest is the
# multi-arch index of python:3.11.14-slim-bookworm (docs/container.md says how to move it). The tag in
# BASE_IMAGE is for readers only: the digest decides.
# The offline CI build passes BASE_IMAGE=localhost/base:bookworm and BASE_DIGEST=<its manifest digest>, a minbase
# Debian made with mmdebstrap from the Debian mirror (python3, python3-venv, ca-certificates), because no
# container registry is reachable there; the same FROM line resolves it by digest.
#
# checkov findings that do not apply, each with its reason (tests/unit/test_dockerfile_scan.py runs checkov):
# checkov:skip=CKV_DOCKER_2:no HEALTHCHECK: each container is a CronJob run that exits; there is no long-running process to probe
# checkov:skip=CKV_DOCKER_7:FROM is ${BASE_IMAGE}@${BASE_DIGEST}, pinned by digest (tested); checkov does not expand ARGs and sees no tag
ARG BASE_IMAGE=docker.io/library/python:3.11.14-slim-bookworm
ARG BASE_DIGEST=sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# ---- build stage: a venv with the project, from local wheels only; thrown away after the copy below ----
FROM ${BASE_IMAGE}@${BASE_DIGEST} AS venv
ARG VERSION=0.1.0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1
COPY requirements-image.txt /requirements-image.txt
COPY build/wheels/ /wheels/
# --require-hashes: every dependency, transitive ones included, is pinned with its wheel's sha256 in
# requirements-image.txt; a wheel that differs or a dependency not in the lock fails the build.
# --no-index: every wheel must be in build/wheels (a missing one fails the build rather than reaching out).
# The project itself goes in with --no-deps at the exact VERSION (a stale wheel fails), then `pip check`
# proves the lock covers everything it requires. pip and setuptools are removed from the venv afterwards (and the
# build fails if either is still importable): nothing at run time installs packages (the root filesystem is
# read-only anyway), and an installer is one more thing to patch.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels --require-hashes \
      --requirement /requirements-image.txt \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps "/wheels/coder_wi_jobs-${VERSION}-py3-none-any.whl" \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools \
 && /opt/venv/bin/python -c "import importlib.util as u, sys; left = [m for m in ('pip', 'setuptools', 'wheel') if u.find_spec(m)]; sys.exit(f'still in the venv: {left}' if left else 0)" \
 && /opt/venv/bin/python -c "import jobs.fic_reconcile.job, jobs.keyvault_sync.job, jobs.coder_token_mint.job, jobs.token_expiry_check.job"

# ---- runtime image: the base plus the venv; no pip, no ensurepip, no wheels, no compiler ----
FROM ${BASE_IMAGE}@${BASE_DIGEST}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG BASE_IMAGE
ARG BASE_DIGEST
LABEL org.opencontainers.image.title="coder-wi-jobs" \
      org.opencontainers.image.description="CronJobs that keep Coder workspaces on AKS authenticated: fic-reconcile, keyvault-sync, coder-token-mint, token-expiry-check" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.base.digest="${BASE_DIGEST}" \
      org.opencontainers.image.documentation="docs/container.md"

# The base's own installers go: nothing at run time installs packages, and pip, setuptools, their wheels and
# ensurepip (which would bootstrap pip into a writable HOME) are code to patch and a way to fetch and run more.
# On Debian's python3 (the CI base) they are packages, purged through dpkg so its database stays true
# (python3-venv is only needed to build the venv, in the stage above); on the official python image they sit
# in /usr/local, outside dpkg. The last command fails the build if any of them is still importable.
# A fixed numeric uid/gid: the chart sets runAsUser/runAsGroup/fsGroup 10001 and runAsNonRoot, and the
# kubelet can only verify runAsNonRoot against a numeric USER. No home directory exists or is needed.
RUN if dpkg-query --status python3.11-venv >/dev/null 2>&1; then \
      dpkg --purge python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl; \
    fi \
 && purelib="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && stdlib="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" \
 && rm -rf "${purelib}"/pip "${purelib}"/pip-*.dist-info "${purelib}"/setuptools "${purelib}"/setuptools-*.dist-info \
      "${purelib}"/pkg_resources "${purelib}"/_distutils_hack "${purelib}"/distutils-precedence.pth \
      "${purelib}"/wheel "${purelib}"/wheel-*.dist-info "${stdlib}"/ensurepip /usr/share/python-wheels \
      /usr/local/bin/pip /usr/local/bin/pip3 /usr/local/bin/pip3.* /usr/local/bin/wheel \
 && python3 -c "import importlib.util as u, sys; left = [m for m in ('pip', 'ensurepip', 'setuptools', 'wheel') if u.find_spec(m)]; sys.exit(f'still in the image: {left}' if left else 0)" \
 && groupadd --gid 10001 cwj \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin cwj

# The venv's python is a symlink to the base's python3, which is why both stages use the same BASE_IMAGE.
# Owned by root and not writable by uid 10001, like everything but /tmp.
COPY --from=venv /opt/venv /opt/venv

# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in the pod (bytecode was compiled at install).
# HOME=/tmp: the only writable path in the pod (the chart mounts an emptyDir there), so a library that
# wants a cache or config directory under ~ gets a writable one instead of an error.
# PATH is spelled out because an imported base (the CI one) carries no PATH to extend.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

USER 10001:10001
WORKDIR /tmp

# No ENTRYPOINT: each CronJob sets `command` to its console script. Without one, say so and exit 2 (usage)
# instead of inheriting the base image's python REPL.
CMD ["/bin/sh", "-c", "echo 'coder-wi-jobs: give the job as the command: fic-reconcile | keyvault-sync | coder-token-mint | token-expiry-check' >&2; exit 2"]
