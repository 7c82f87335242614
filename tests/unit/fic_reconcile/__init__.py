"""Unit tests of fic_reconcile/."""
