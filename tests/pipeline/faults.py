"""The executor fault the integration tests arm: every attempt of a marked job fails like a node exception."""
from __future__ import annotations

FAIL_MARK = "always-fail"


def fault(prompt: dict) -> str | None:
    """Fail a job whose SaveImage filename prefix carries the mark; run everything else."""
    for node in prompt.values():
        if node.get("class_type") == "SaveImage" and node["inputs"].get("filename_prefix") == FAIL_MARK:
            return "injected executor failure"
    return None
