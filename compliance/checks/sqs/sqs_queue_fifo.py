from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, failed, verdict
from ...inventory import Inventory


def sqs_queue_fifo(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Every class queue and DLQ the config names exists and is FIFO."""
    out = []
    for q in inv.queues:
        if not q.exists:
            out.append(failed(q.name, f"queue {q.name} does not exist", exists=False))
            continue
        fifo = q.attributes.get("FifoQueue") == "true"
        out.append(verdict(fifo, q.name, f"queue {q.name} is FIFO", f"queue {q.name} is not FIFO",
                           fifo_queue=q.attributes.get("FifoQueue")))
    return out
