"""The real Pushgateway the metrics tests read back (tests/pushgateway.py): HTTPS only, with the platform's CA,
and the grouping the jobs rely on (lib/clients/pushgateway.py pushes with PUT to two groups keyed by job and
cluster: the run group, which each run replaces instead of piling up, and the success group, which a failed
run's push leaves alone)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from tests.emulators.platform import Platform
from tests.pushgateway import DEFAULT_CLUSTER, SUCCESS, Pushgateway


def _push(gateway: Pushgateway, group: dict[str, str] | None = None, **gauges: float) -> None:
    registry = CollectorRegistry()
    for name, value in gauges.items():
        Gauge(name, name, registry=registry).set(value)
    context = ssl.create_default_context(cafile=str(gateway.ca_file))

    def handler(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        def send() -> None:
            request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
            with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
                assert resp.status in (200, 202)

        return send

    key = {"cluster": DEFAULT_CLUSTER, **(group or {})}
    push_to_gateway(gateway.url, job="probe", registry=registry, grouping_key=key, handler=handler)


def test_a_put_replaces_the_jobs_group_and_the_gateway_stamps_it(pushgateway: Pushgateway) -> None:
    _push(pushgateway, cwj_a=1, cwj_b=2)
    assert pushgateway.samples("probe") == {("cwj_a", ()): 1.0, ("cwj_b", ()): 2.0}
    first = pushgateway.pushed_at("probe")
    _push(pushgateway, cwj_a=3)  # the next run: cwj_b is gone, not kept from the last push
    assert pushgateway.samples("probe") == {("cwj_a", ()): 3.0}
    assert first is not None and (pushgateway.pushed_at("probe") or 0) >= first


def test_a_put_to_the_run_group_leaves_the_success_group(pushgateway: Pushgateway) -> None:
    """What lets the staleness alert work while a job fails: the failed run's PUT names only the run group."""
    _push(pushgateway, cwj_last_run_exit_code=0)
    _push(pushgateway, {"outcome": "success"}, cwj_last_success_timestamp_seconds=100)
    _push(pushgateway, cwj_last_run_exit_code=1)  # the next run failed: the run group only
    assert pushgateway.samples("probe") == {("cwj_last_run_exit_code", ()): 1.0}
    assert pushgateway.samples("probe", group=SUCCESS) == {("cwj_last_success_timestamp_seconds", ()): 100.0}
    assert pushgateway.groups("probe") == {(DEFAULT_CLUSTER, ""), (DEFAULT_CLUSTER, "success")}


def test_it_serves_https_only_with_the_platforms_ca(pushgateway: Pushgateway, platform: Platform) -> None:
    assert pushgateway.url.startswith("https://127.0.0.1:")
    with pytest.raises(urllib.error.URLError):  # Python's default trust store does not know the platform's CA
        urllib.request.urlopen(pushgateway.url + "/-/ready", timeout=5, context=ssl.create_default_context())
    plain = pushgateway.url.replace("https://", "http://") + "/-/ready"
    with pytest.raises(urllib.error.HTTPError) as info:  # plain HTTP to a TLS listener: Go answers 400
        urllib.request.urlopen(plain, timeout=5)
    assert info.value.code == 400
    context = ssl.create_default_context(cafile=str(platform.ca_path))
    with urllib.request.urlopen(pushgateway.url + "/-/ready", timeout=5, context=context) as resp:
        assert resp.status == 200


def test_it_stops_with_its_owner(platform: Platform) -> None:
    gateway = Pushgateway.for_platform(platform, "pushgateway-lifecycle").start()
    assert gateway.process is not None and gateway.process.poll() is None
    gateway.stop()
    assert gateway.process.poll() is not None
