"""keyvault-sync (console script -> job.main). job.py: connect, observe, apply, report; settings.py: flags
and env vars; plan.py: the pure plan; allowlist.py: the allowlist file's parser."""
