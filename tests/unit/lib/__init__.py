"""Unit tests of lib/ (the shared core)."""
