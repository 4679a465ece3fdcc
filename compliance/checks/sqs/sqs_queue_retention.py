from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def sqs_queue_retention(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Class queues and DLQs keep messages for the configured retention, no shorter and no longer."""
    out = []
    for q in inv.queues:
        if not q.exists:
            continue
        want = cfg.queues.dlq_retention_s if q.dlq else cfg.queues.message_retention_s
        got = q.attributes.get("MessageRetentionPeriod")
        out.append(verdict(got is not None and int(got) == want, q.name,
                           f"queue {q.name} retains messages {want} s",
                           f"queue {q.name} retains messages {got} s, the config says {want} s",
                           message_retention_s=got, expected_s=want))
    return out
