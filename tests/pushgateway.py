"""A real Prometheus Pushgateway (Debian bookworm's `prometheus-pushgateway` 1.5.1, fetched as promtool is:
tests/debian_tools.py) on a free loopback port, serving HTTPS with a certificate from the platform's CA through
its `--web.config.file` (Prometheus exporter-toolkit TLS, in the Pushgateway since 1.4.0).

The jobs push with prometheus_client, whose urllib opener verifies HTTPS against Python's default trust store:
a job run that pushes here gets `SSL_CERT_FILE` set to the platform's CA (`Pushgateway.env`), nothing else
changes. Tests read back what a Prometheus would scrape: `GET /metrics`, parsed with prometheus_client's own
text parser, the Pushgateway's `job`/`instance` grouping labels taken off. The admin API (`--web.enable-admin-api`)
wipes it between tests. Run `python -m tests.pushgateway` to fetch the binary ahead of time.
"""

from __future__ import annotations

import atexit
import functools
import re
import ssl
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3
from prometheus_client.parser import text_string_to_metric_families

from tests import debian_tools
from tests.debian_tools import DebTool, ToolUnavailable
from tests.processes import die_with_parent, free_port, stop_process, wait_ready

if TYPE_CHECKING:
    from tests.emulators.platform import Platform

DEB_VERSION = "1.5.1-2+b5"  # Debian bookworm (12); `apt-cache policy prometheus-pushgateway` shows what is served
VERSION = "1.5.1"
DEB_SHA256 = {"amd64": "f779c46f571ea0c341630e4b36c1d608d46bb08c5658de99966c5c2e49486b9d"}  # apt-cache show
STARTUP_SECONDS = 30.0
# The Pushgateway's own series next to what was pushed (push_time_seconds etc., and its Go runtime's)
OWN = re.compile(r"^(push_time_seconds|push_failure_time_seconds|pushgateway_|go_|process_|promhttp_)")

# The jobs' two groups (lib/clients/pushgateway.py): /metrics/job/<job>/cluster/<cluster> (the run) and
# .../outcome/success (the last success); every series carries its group's labels.
RUN, SUCCESS = "run", "success"
DEFAULT_CLUSTER = "default"  # lib/runinfo.py: a run without --cluster
GROUPING = ("job", "instance", "cluster", "outcome")
Sample = tuple[str, tuple[tuple[str, str], ...]]  # (metric name, sorted labels): as tests/e2e pushed_samples


class PushgatewayUnavailable(ToolUnavailable):
    """The Pushgateway binary could not be obtained, or did not start."""


TOOL = DebTool(
    name="prometheus-pushgateway",
    package="prometheus-pushgateway",
    deb_version=DEB_VERSION,
    version=VERSION,
    binary="usr/bin/prometheus-pushgateway",
    sha256=DEB_SHA256,
    # e.g. "pushgateway, version 1.5.1 (branch: debian/sid, revision: 1.5.1-2+b5)"
    version_line=re.compile(rf"^pushgateway, version {re.escape(VERSION)} \(.*revision: {re.escape(DEB_VERSION)}\)$"),
    pinned_in="DEB_VERSION / DEB_SHA256 in tests/pushgateway.py",
    error=PushgatewayUnavailable,
)


def _run(command: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@functools.cache
def pushgateway_bin() -> Path:
    return debian_tools.tool_bin(TOOL, _run)


class Pushgateway:
    def __init__(self, workdir: Path, cert_file: Path, key_file: Path, ca_file: Path) -> None:
        self.workdir, self.ca_file = workdir, ca_file
        self.cert_file, self.key_file = cert_file, key_file
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.pool: urllib3.HTTPSConnectionPool | None = None

    @classmethod
    def for_platform(cls, platform: Platform, name: str = "pushgateway") -> Pushgateway:
        """One serving a certificate from `platform`'s CA, in `name` under its state directory; not started."""
        workdir = platform.state_dir / name
        workdir.mkdir(exist_ok=True)
        cert = platform.ca.issue_cert("127.0.0.1", "localhost")
        cert_file, key_file = workdir / "tls.crt", workdir / "tls.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        cert.private_key_pem.write_to_path(str(key_file))
        key_file.chmod(0o600)
        return cls(workdir, cert_file, key_file, platform.ca_path)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What a job run that pushes here needs: urllib trusting the platform's CA."""
        return {"SSL_CERT_FILE": str(self.ca_file)}

    def start(self) -> Pushgateway:
        binary = pushgateway_bin()
        self.workdir.mkdir(parents=True, exist_ok=True)
        web_config = self.workdir / "web-config.yml"
        web_config.write_text(f"tls_server_config:\n  cert_file: {self.cert_file}\n  key_file: {self.key_file}\n")
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        for _attempt in range(3):  # a free port can be taken between our probe and the bind
            self.port = free_port()
            argv = [
                str(binary),
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.config.file={web_config}",
                "--web.enable-admin-api",
                "--log.level=warn",
            ]
            with (self.workdir / "pushgateway.log").open("ab") as log:
                self.process = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, preexec_fn=die_with_parent
                )
            self.pool = urllib3.HTTPSConnectionPool(
                "127.0.0.1", self.port, ssl_context=ctx, retries=False, timeout=urllib3.Timeout(5, 30)
            )
            if self._ready():
                atexit.register(self.stop)
                return self
        raise PushgatewayUnavailable(f"the Pushgateway did not start; see {self.workdir / 'pushgateway.log'}")

    def _ready(self) -> bool:
        assert self.process is not None and self.pool is not None
        if wait_ready(self.process, self.pool, "/-/ready", STARTUP_SECONDS):
            return True
        self.stop()
        return False

    def stop(self) -> None:
        stop_process(self.process)

    def wipe(self) -> None:
        assert self.pool is not None
        assert self.pool.request("PUT", "/api/v1/admin/wipe").status == 202

    def metrics(self) -> str:
        assert self.pool is not None
        resp = self.pool.request("GET", "/metrics")
        assert resp.status == 200
        return str(resp.data.decode())

    def samples(self, job: str, *, group: str = RUN, cluster: str = DEFAULT_CLUSTER) -> dict[Sample, float]:
        """What the Pushgateway serves for one of `job`'s groups on `cluster` (lib/clients/pushgateway.py): the
        run group (RUN, replaced by every run that publishes) or the success group (SUCCESS, replaced only by a
        successful run): {(name, labels without the grouping labels job/instance/cluster/outcome): value}."""
        out: dict[Sample, float] = {}
        for s in self._group(job, group, cluster):
            if OWN.match(s.name):
                continue
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in GROUPING))
            out[(s.name, labels)] = s.value
        return out

    def pushed_at(self, job: str, *, group: str = RUN, cluster: str = DEFAULT_CLUSTER) -> float | None:
        """`push_time_seconds` of one of `job`'s groups: when its last successful push arrived (None: never)."""
        for s in self._group(job, group, cluster):
            if s.name == "push_time_seconds":
                return float(s.value)
        return None

    def groups(self, job: str) -> set[tuple[str, str]]:
        """Every (cluster, outcome) group `job` has here ("" outcome: the run group)."""
        return {
            (s.labels.get("cluster", ""), s.labels.get("outcome", ""))
            for family in text_string_to_metric_families(self.metrics())
            for s in family.samples
            if s.labels.get("job") == job
        }

    def _group(self, job: str, group: str, cluster: str) -> list[Any]:
        outcome = "" if group == RUN else group
        return [
            s
            for family in text_string_to_metric_families(self.metrics())
            for s in family.samples
            if s.labels.get("job") == job
            and s.labels.get("cluster", "") == cluster
            and s.labels.get("outcome", "") == outcome
        ]


if __name__ == "__main__":
    print(debian_tools.check_version(TOOL, pushgateway_bin()))
