"""sqs checks."""
