"""Chart UX (issue 22, point 9): NOTES.txt gives a copy-paste one-off run per enabled job (create, wait, logs; no
placeholder to fill in), its `kubectl wait` condition is met by exactly the Jobs that finished (checked by the
real kubectl on Job objects in each state), and a token-expiry-check schedule whose period differs from
settings.scheduleInterval is refused with a message saying what would go wrong."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import CHART, FULL, kinds, template, template_error
from tests.helm.helm_binary import kubectl_path, run_helm


def notes(home: Path, *extra: str) -> str:
    done = run_helm("install", "rel", str(CHART), "-n", "jobs", "-f", str(FULL), "--dry-run", *extra, home=home)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("NOTES:\n", 1)[1]


def blocks(text: str) -> dict[str, list[str]]:
    """`# <job>` -> the command lines under it."""
    found: dict[str, list[str]] = {}
    for chunk in re.split(r"\n(?=  # [a-z-]+\n)", text):
        head = re.match(r"  # ([a-z-]+)\n", chunk)
        if head:
            found[head.group(1)] = [line.strip() for line in chunk.splitlines()[1:] if line.strip()][:4]
    return found


def test_notes_give_each_enabled_job_a_create_wait_logs_sequence(home: Path, full: list[dict[str, Any]]) -> None:
    text = notes(home, "--set", "jobs.keyvaultSync.enabled=false")
    assert "<job-name>" not in text and "<suffix>" not in text
    cronjobs = {c["metadata"]["labels"]["app.kubernetes.io/component"]: c for c in kinds(full, "CronJob")}
    found = blocks(text)
    assert sorted(found) == sorted(set(cronjobs) - {"keyvault-sync"})
    for job, lines in found.items():
        deadline = cronjobs[job]["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        assert lines == [
            f"job={job}-manual-$(date +%s)",
            f'kubectl -n jobs create job "$job" --from=cronjob/rel-{job}',
            f'kubectl -n jobs wait "job/$job" --for=jsonpath=\'{{.status.conditions[?(@.status=="True")].type}}\' '
            f"--timeout={deadline + 60}s",
            'kubectl -n jobs logs "job/$job"    # JSON log lines, run.summary (exit code, error), then the report',
        ]


@pytest.mark.parametrize(
    ("conditions", "finished"),
    [
        ([], False),  # running
        ([{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}], True),
        ([{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}], True),
        ([{"type": "Suspended", "status": "False"}], False),
    ],
    ids=["running", "complete", "failed", "resumed"],
)
def test_the_wait_condition_is_met_by_finished_jobs_only(
    home: Path, tmp_path: Path, conditions: list[dict[str, str]], finished: bool
) -> None:
    (expr,) = re.findall(r"--for=jsonpath='([^']+)'", notes(home))[:1]
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "job", "image": "i"}]}}},
           "status": {"conditions": conditions}}  # fmt: skip
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    env = {"KUBECONFIG": "/nonexistent", "HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    done = subprocess.run(
        [str(kubectl_path()), "set", "env", "--local", "-f", str(path), "X=1", "-o", f"jsonpath={expr}"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert bool(done.stdout.strip()) == finished  # kubectl wait --for=jsonpath waits for a non-empty result


@pytest.mark.parametrize(
    ("schedule", "interval", "effect"),
    [
        ("0 */6 * * *", "24h", "every threshold crossing would alert on several runs"),
        ("15 3 * * 1", "1d", "crossings between two runs would never alert"),
        ("*/30 * * * *", "1h", "every threshold crossing would alert on several runs"),
    ],
)
def test_a_schedule_and_interval_that_disagree_are_refused(
    home: Path, schedule: str, interval: str, effect: str
) -> None:
    error = template_error(
        home, "-f", str(FULL), "--set-string", f"jobs.tokenExpiryCheck.schedule={schedule}",
        "--set", f"jobs.tokenExpiryCheck.settings.scheduleInterval={interval}",
    )  # fmt: skip
    assert f'jobs.tokenExpiryCheck.schedule "{schedule}"' in error and effect in error
    assert "set scheduleInterval to the schedule's period" in error


@pytest.mark.parametrize(
    ("schedule", "interval"),
    [("0 7 * * *", "24h"), ("0 7 * * *", "1d"), ("0 */6 * * *", "6h"), ("15 3 * * 1", "1w"), ("@hourly", "60m"),
     ("0 7 1 * *", "24h")],  # monthly: no fixed period, not checked
)  # fmt: skip
def test_a_schedule_and_interval_that_agree_render(home: Path, schedule: str, interval: str) -> None:
    docs = template(
        home, "-f", str(FULL), "--set-string", f"jobs.tokenExpiryCheck.schedule={schedule}",
        "--set", f"jobs.tokenExpiryCheck.settings.scheduleInterval={interval}",
    )  # fmt: skip
    assert [c["spec"]["schedule"] for c in kinds(docs, "CronJob") if "expiry" in c["metadata"]["name"]] == [schedule]
