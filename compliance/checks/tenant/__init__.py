"""tenant checks."""
