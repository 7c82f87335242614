"""fic-reconcile (console script -> job.main). job.py: connect, observe, apply, report; settings.py: flags
and env vars; plan.py: the pure plan, with findings.py, capacity.py, shard.py and model.py (its data)."""
