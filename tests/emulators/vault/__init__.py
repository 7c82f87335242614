"""Service `vault`: a real OpenBao dev server (openbao.py) seeded by baseline.py, behind the fault proxy
(proxy.py); test_*.py check the Vault NOTES gotchas, Kubernetes auth through TokenReview, and the proxy."""
