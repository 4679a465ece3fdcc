from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def sqs_queue_visibility_timeout(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Class queues carry their class's visibility timeout (10 s / 45 s / 300 s by default)."""
    out = []
    for q in inv.queues:
        if not q.exists or q.dlq:
            continue
        want = cfg.queues.cls(q.priority).visibility_timeout_s
        got = q.attributes.get("VisibilityTimeout")
        out.append(verdict(got is not None and int(got) == want, q.name,
                           f"queue {q.name} has the {q.priority} visibility timeout {want} s",
                           f"queue {q.name} visibility timeout is {got} s, the {q.priority} class needs {want} s",
                           visibility_timeout_s=got, expected_s=want))
    return out
