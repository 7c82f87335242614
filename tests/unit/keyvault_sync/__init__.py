"""Unit tests of keyvault_sync/."""
