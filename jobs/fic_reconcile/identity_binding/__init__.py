"""fic-reconcile's identity-binding modes (--mode identity-binding|both, issue 20): model.py (what they observe,
the names and policy, the actions), plan.py (the pure plan of bindings and RBAC), observe.py (the reads),
apply.py (the writes). ../modes.py composes this plan with the FIC plan per mode, and the migration off FICs."""
