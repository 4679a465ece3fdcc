from __future__ import annotations

import json

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def sqs_queue_dlq_redrive(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Each class queue redrives to its own DLQ after the configured number of receives."""
    out = []
    for q in inv.queues:
        if not q.exists or q.dlq:
            continue
        want = cfg.queues.cls(q.priority).max_receive_count
        dlq = inv.queue(cfg.queue_name(q.tenant, q.priority, dlq=True))
        raw = q.attributes.get("RedrivePolicy")
        policy = json.loads(raw) if raw else {}
        target, count = policy.get("deadLetterTargetArn"), policy.get("maxReceiveCount")
        ok = dlq is not None and dlq.arn is not None and target == dlq.arn and count is not None and int(count) == want
        out.append(verdict(ok, q.name, f"queue {q.name} moves a message to its DLQ after {want} receives",
                           f"queue {q.name} does not redrive to {cfg.queue_name(q.tenant, q.priority, True)} "
                           f"after {want} receives",
                           dead_letter_target=target, max_receive_count=count,
                           expected_target=dlq.arn if dlq else None, expected_max_receive_count=want))
    return out
