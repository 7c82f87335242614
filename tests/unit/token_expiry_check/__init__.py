"""Unit tests of token_expiry_check/."""
