"""Layer 1: the inference router (FastAPI app over RouterService)."""
