"""The end-to-end tests: each console script against the local platform (tests/emulators), and for metrics
a real Pushgateway (tests/pushgateway.py)."""
