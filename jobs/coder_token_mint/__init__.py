"""coder-token-mint (console script -> job.main). job.py: connect, observe, apply, report; settings.py:
flags and env vars; observe.py: the Coder-side checks of the Vault entry; plan.py: the pure plan."""
