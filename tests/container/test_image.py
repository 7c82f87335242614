"""The image, built the way CI builds it (tests/container/build.py) and run the way the chart runs it.

Built once per session with buildah in a throw-away storage dir under .ctr/; every container runs as the
image's USER with a read-only root filesystem, only /tmp writable, no capabilities and no network.
buildah, podman, runc and mmdebstrap are required, not optional: without them these tests fail and say
which apt-get command installs them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import re
import shutil
from pathlib import Path

import pytest

from tests import lock
from tests.container import build
from tests.container.conftest import Image, report_line

# Budget for the CI image (minbase Debian + venv), measured 2026-11-23 with `podman image inspect --format
# {{.Size}}`: 399.7 MB = 209.4 MB base + 190.4 MB added (the venv: kubernetes alone is 74 MB of source plus
# its bytecode). About 10 % headroom on each, so real bloat (a dev tool, a cache, a second venv) fails.
MAX_IMAGE_BYTES = 440_000_000
MAX_ADDED_BYTES = 210_000_000  # the layers this Dockerfile adds on top of the base
ENTRYPOINTS = ("fic-reconcile", "keyvault-sync", "coder-token-mint", "token-expiry-check")
RUNTIME_DEPS = ("azure-identity", "azure-mgmt-msi", "azure-keyvault-secrets", "hvac", "requests", "kubernetes")

# Runs inside the container as the image's user: who it is, what it can write, what is installed.
PROBE = r"""
import errno, importlib.metadata as md, importlib.util, json, os, sys
import certifi
def write_errno(path):
    try:
        with open(path, "w") as f:
            f.write("x")
    except OSError as exc:
        return errno.errorcode[exc.errno]
    os.remove(path)
    return "ok"
def read(path):
    return open(path).read() if os.path.exists(path) else ""
owned = [os.path.join(top, n) for top, dirs, files in os.walk("/opt/venv") for n in dirs + files
         if os.lstat(os.path.join(top, n)).st_uid == os.getuid()]
cas = "/usr/local/share/ca-certificates"
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "prefix": sys.prefix,
    "write_root": write_errno("/probe"), "write_venv": write_errno("/opt/venv/probe"),
    "write_tmp": write_errno("/tmp/probe"), "owned_by_me": owned[:20],
    "pip_importable": importlib.util.find_spec("pip") is not None,
    "versions": {d.metadata["Name"].lower(): d.version for d in md.distributions()},
    "local_cas": os.listdir(cas) if os.path.isdir(cas) else [],
    "bundles": {"system": read("/etc/ssl/certs/ca-certificates.crt"), "certifi": read(certifi.where())},
}))
"""

# Runs as root with CAP_DAC_READ_SEARCH (still read-only, no network) so that no directory is unreadable
# (/root and apt's partial/ directories are mode 0700).
SCAN = r"""
import glob, json, os, re, shutil
errors, caches, wheels, installers = [], [], [], []
# pip, setuptools and wheel (package, dist-info, console script), ensurepip, Debian's wheel store for it
INSTALLER = re.compile(r"(pip|pip3(\.\d+)?|setuptools|wheel|_distutils_hack|ensurepip|python-wheels)"
                       r"|(pip|setuptools|wheel)-[^/]*\.(dist|egg)-info|distutils-precedence\.pth")
for top, dirs, files in os.walk("/", onerror=lambda e: errors.append(str(e))):
    if top in ("/proc", "/sys", "/dev", "/tmp"):
        dirs[:] = []
        continue
    caches += [os.path.join(top, d) for d in dirs if d in (".cache", "wheels", "pip-wheel-metadata")]
    wheels += [os.path.join(top, f) for f in files if f.endswith(".whl")]
    installers += [os.path.join(top, n) for n in dirs + files if INSTALLER.fullmatch(n)]
tools = ("gcc", "cc", "c++", "g++", "clang", "make", "ld", "as", "x86_64-linux-gnu-gcc")
print(json.dumps({
    "errors": errors, "caches": caches, "wheels": wheels, "installers": sorted(installers),
    "compilers": [t for t in tools if shutil.which(t)] + glob.glob("/usr/lib/gcc/*/*/cc1*"),
}))
"""


@pytest.fixture(scope="session")
def probe(image: Image) -> dict[str, object]:
    done = image.run("python", "-c", PROBE)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="session")
def scan(image: Image) -> dict[str, list[str]]:
    done = image.run("python", "-c", SCAN, flags=("--user=0:0", "--cap-add=DAC_READ_SEARCH"))
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_container_tools_are_installed() -> None:
    missing = [tool for tool in build.TOOLS if shutil.which(tool) is None]
    assert not missing, f"{', '.join(missing)} missing; as root run: {build.APT_INSTALL}"


def test_image_config_runs_as_10001_with_no_fixed_entrypoint(image: Image) -> None:
    done = build.sh(image.store.buildah("inspect", "--type", "image", image.tag))
    config = json.loads(done.stdout)["OCIv1"]["config"]
    assert config["User"] == "10001:10001"
    assert not config.get("Entrypoint")  # the CronJob's `command` names the job
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert not any(re.search(r"CERT|CA_BUNDLE|PROXY", key) for key in env), env  # nothing of the build host
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == build.project_version()
    assert labels["org.opencontainers.image.title"] == "coder-wi-jobs"
    assert labels["org.opencontainers.image.base.name"] == build.BASE_TAG
    assert labels["org.opencontainers.image.base.digest"] == image.base_digest  # FROM took the base by digest
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])


def test_the_build_refuses_a_base_that_is_not_the_pinned_digest(image: Image) -> None:
    """FROM ${BASE_IMAGE}@${BASE_DIGEST}: the tag names the base, only the digest selects it. A digest the
    storage does not hold fails at FROM, with the right tag present, and an empty one is no reference at all."""
    other = "sha256:" + "0" * 64
    repository = build.BASE_TAG.rsplit(":", 1)[0]  # buildah names the reference without the tag it ignored
    with pytest.raises(RuntimeError, match=f"{repository}@{other}: image not known"):
        build.build_image(image.store, other, tag="localhost/coder-wi-jobs:wrong-base")
    with pytest.raises(RuntimeError, match="invalid reference format"):
        build.build_image(image.store, "", tag="localhost/coder-wi-jobs:no-digest")


def test_image_size_stays_within_budget(image: Image, pytestconfig: pytest.Config) -> None:
    total, base = image.size(), image.store.image_size(build.BASE_TAG)
    report_line(
        pytestconfig,
        f"\nimage size: {total} bytes ({total / 1e6:.1f} MB) = base {base / 1e6:.1f} MB"
        f" + added {(total - base) / 1e6:.1f} MB",
    )
    assert total - base <= MAX_ADDED_BYTES
    assert total <= MAX_IMAGE_BYTES


@pytest.mark.parametrize("entrypoint", ENTRYPOINTS)
def test_each_entrypoint_prints_help_read_only_without_network(image: Image, entrypoint: str) -> None:
    done = image.run(entrypoint, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {entrypoint} ")
    assert "--dry-run" in done.stdout


def test_a_job_with_no_settings_exits_2_naming_every_missing_setting_one_line_each(image: Image) -> None:
    done = image.run("fic-reconcile")
    assert done.returncode == 2
    assert done.stdout == ""  # nothing planned, nothing written
    missing = [
        "--issuer (CWJ_OIDC_ISSUER)",
        "--client-ids-json (AZURE_CLIENT_IDS_JSON)",
        "--subscription-id (AZURE_SUBSCRIPTION_ID)",
        "--resource-group (CWJ_IDENTITY_RESOURCE_GROUP)",
    ]
    lines = [line for line in done.stderr.splitlines() if line.startswith("fic-reconcile: configuration error: ")]
    assert lines == [f"fic-reconcile: configuration error: {name}: is required" for name in missing]


def test_a_bad_setting_is_named_inside_the_image_too(image: Image) -> None:
    done = image.run("coder-token-mint", env={"CODER_URL": "http://coder.example"})
    assert done.returncode == 2
    *lines, summary = done.stderr.splitlines()  # every bad setting (the two unset ones too), then run.summary
    assert lines[0] == (
        "coder-token-mint: configuration error: --coder-url (CODER_URL): expected an https:// URL, "
        "got http:// for coder.example"
    )
    assert lines[1:] == [
        "coder-token-mint: configuration error: --bootstrap-token-file (CWJ_BOOTSTRAP_TOKEN_FILE): is required",
        "coder-token-mint: configuration error: --vault-addr (VAULT_ADDR): is required",
    ]
    assert json.loads(summary)["event"] == "run.summary" and json.loads(summary)["exit_code"] == 2


def test_running_the_image_without_a_command_names_the_four_jobs(image: Image) -> None:
    done = image.run()
    assert done.returncode == 2
    assert all(name in done.stderr for name in ENTRYPOINTS)


def test_runs_as_10001_and_can_write_only_tmp(probe: dict[str, object]) -> None:
    assert (probe["uid"], probe["gid"]) == (10001, 10001)
    assert probe["prefix"] == "/opt/venv"
    assert probe["write_root"] == "EROFS"
    assert probe["write_venv"] == "EROFS"
    assert probe["write_tmp"] == "ok"
    assert probe["owned_by_me"] == []  # the venv belongs to root even where the root fs is writable


def test_no_compiler_pip_cache_or_installer_in_the_image(scan: dict[str, list[str]], probe: dict[str, object]) -> None:
    assert scan["errors"] == []  # the scan saw every directory
    assert scan["compilers"] == []
    assert scan["caches"] == []
    assert scan["wheels"] == []  # neither build/wheels, pip's leftovers, nor the base's ensurepip wheels
    # not in the venv, not in the base Python (system pip, setuptools, wheel), no ensurepip to bootstrap one
    assert scan["installers"] == []
    assert probe["pip_importable"] is False


@pytest.mark.parametrize("python", ["python", "python3", "/usr/bin/python3", "/usr/local/bin/python3"])
@pytest.mark.parametrize("module", ["pip", "ensurepip"])
def test_no_python_in_the_image_can_run_pip_or_bootstrap_it(image: Image, python: str, module: str) -> None:
    """The venv's python (first on PATH) and the base's own: `python -m pip` and `-m ensurepip` both fail.
    /usr/local/bin/python3 exists only on the official python image; there `command -v` decides."""
    script = f"command -v {python} >/dev/null || exit 100; exec {python} -m {module} --version"
    done = image.run("/bin/sh", "-c", script)
    if done.returncode == 100:
        assert python == "/usr/local/bin/python3", f"{python} is missing from the image"
        return
    assert done.returncode == 1, (python, module, done.stdout, done.stderr)
    assert f"No module named {module}" in done.stderr
    assert done.stdout == ""


def test_no_pip_command_on_the_path(image: Image) -> None:
    found_any = 'for c in pip pip3 pip3.11 easy_install wheel; do command -v "$c" && exit 0; done; exit 1'
    done = image.run("/bin/sh", "-c", found_any)
    assert (done.returncode, done.stdout) == (1, "")


def test_installs_exactly_the_locked_versions_which_are_the_ones_the_tests_ran_with(probe: dict[str, object]) -> None:
    versions = probe["versions"]
    assert isinstance(versions, dict)
    installed = {re.sub(r"[-_.]+", "-", name): version for name, version in versions.items()}
    assert installed.pop("coder-wi-jobs") == build.project_version()
    assert installed == {
        name: version for name, (version, _) in lock.read_requirements(build.LOCK).items()
    }  # no more, no less
    for name in RUNTIME_DEPS:
        assert installed[name] == importlib.metadata.version(name), name
    assert "pip" not in installed and "setuptools" not in installed


def _cert_digests(pem: str) -> set[str]:
    bodies = re.findall(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    return {hashlib.sha256(base64.b64decode("".join(b.split()))).hexdigest() for b in bodies}


def test_trusts_public_cas_only_not_the_build_hosts_egress_ca(probe: dict[str, object]) -> None:
    bundles = probe["bundles"]
    assert isinstance(bundles, dict)
    system, certifi_bundle = _cert_digests(bundles["system"]), _cert_digests(bundles["certifi"])
    assert len(system) > 100 and len(certifi_bundle) > 100  # Debian's ca-certificates and certifi's copy
    assert probe["local_cas"] == []
    host_local = set()
    for path in Path("/usr/local/share/ca-certificates").rglob("*.crt"):
        host_local |= _cert_digests(path.read_text(errors="replace"))
    assert not host_local & (system | certifi_bundle)
