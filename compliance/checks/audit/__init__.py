"""audit checks."""
