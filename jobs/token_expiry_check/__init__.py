"""token-expiry-check (console script -> job.main). job.py: connect, observe, apply, report; settings.py:
flags and env vars; policy.py: the token policy file; rules.py and alerts.py: the pure rules."""
