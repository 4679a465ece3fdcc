"""kms checks."""
