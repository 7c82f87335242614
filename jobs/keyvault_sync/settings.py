"""Settings of keyvault-sync: every flag, its env var and its parser (the allowlist file is parsed and validated
by allowlist.py while the flags are read, so a bad allowlist exits 2 before any request)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from jobs.keyvault_sync.allowlist import Allowlist, load_allowlist
from jobs.keyvault_sync.plan import Options
from lib.auth_choice import azure_auth_setting
from lib.settings import (
    AZURE,
    OUTPUT,
    SAFETY,
    int_at_least,
    int_between,
    parse_bool,
    parse_duration,
    parse_https_url,
    parse_positive_seconds,
    parse_rate,
    parse_service_url,
    setting,
    switch,
)

WRITE_CONCURRENCY = 8  # BENCHMARKS.md "keyvault-sync at Key Vault's limits": enough to keep the 25/s pace


@dataclass(frozen=True)
class Settings:
    source_vault_url: str = setting("--source-vault-url", "seed Key Vault URL", parse=parse_https_url, group=AZURE)
    target_vault_url: str = setting("--target-vault-url", "cluster Key Vault URL", parse=parse_https_url, group=AZURE)
    allowlist: Allowlist = setting(
        "--allowlist-file",
        "YAML list of secret names or {source, target} entries to copy",
        env="CWJ_ALLOWLIST_FILE",
        parse=load_allowlist,
        metavar="FILE",
    )
    adopt: bool = switch(
        "--adopt", "overwrite target secrets not written by this job even if their value differs", group=SAFETY
    )
    prune: bool = switch(
        "--prune", "soft-delete target secrets written by this job that left the allowlist", group=SAFETY
    )
    recover_timeout: timedelta = setting(
        "--recover-timeout",
        "how long to wait for a recovered secret to answer",
        parse=parse_duration,
        default=timedelta(seconds=60),
    )
    creates_per_second: float = setting(
        "--keyvault-creates-per-second",
        "pace new secret versions on the cluster vault (bursts of 5 s worth, at most 125); Key Vault allows 300 "
        "per 10 s",
        parse=parse_rate,
        default=25.0,
        group=AZURE,
        metavar="PER_SECOND",
    )
    concurrency: int = setting(
        "--concurrency", "seed secrets whose versions are listed in parallel", parse=int_at_least(1), default=8
    )
    write_concurrency: int = setting(
        "--write-concurrency",
        "allowlist entries copied or updated in parallel, all under the one pace of new versions; at most 10 "
        "(the SDK's connections per vault)",
        parse=int_between(1, 10),
        default=WRITE_CONCURRENCY,
    )
    max_run_seconds: float = setting(
        "--max-run-seconds",
        "start no write after this many seconds (keep it under the Job's activeDeadlineSeconds); the rest is "
        "deferred to the next run",
        parse=parse_positive_seconds,
        default=480.0,
    )
    pushgateway_url: str | None = setting(
        "--pushgateway-url",
        "Prometheus Pushgateway to push run metrics to",
        parse=parse_service_url,
        default=None,
        group=OUTPUT,
    )
    azure_auth: str = azure_auth_setting()
    verify_challenge_resource: bool = setting(
        "--keyvault-verify-challenge-resource",
        "check that the vault's auth challenge names a Key Vault domain; false only for local emulators",
        parse=parse_bool,
        default=True,
        group=AZURE,
    )

    @property
    def options(self) -> Options:
        return Options(adopt=self.adopt, prune=self.prune)
