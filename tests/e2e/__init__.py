"""The end-to-end tests: each console script against the local platform (tests/emulators), and for metrics
a real Pushgateway (tests/pushgateway.py)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, tuple[tuple[str, str], ...]]  # (metric name, sorted labels)


def pushed_samples(body: str) -> dict[Sample, float]:
    """A push body a recording receiver caught (the fault rows, the probe's tests), parsed with
    prometheus_client's own text parser: {(name, labels): value}."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
