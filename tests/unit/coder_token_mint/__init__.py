"""Unit tests of coder_token_mint/."""
