"""The arm emulator: emulator.py is the service, the other modules its parts; test_*.py its fidelity tests."""
