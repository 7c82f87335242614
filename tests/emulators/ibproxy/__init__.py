"""The AKS identity binding token proxy (tests/emulators/ibproxy/emulator.py)."""
