"""dynamodb checks."""
