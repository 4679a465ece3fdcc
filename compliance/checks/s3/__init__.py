"""s3 checks."""
