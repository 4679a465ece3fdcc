from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def sqs_queue_encrypted(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Queues use SSE-KMS under their tenant's own key (SQS-managed SSE is not a tenant CMK)."""
    out = []
    for q in inv.queues:
        if not q.exists:
            continue
        ref = q.attributes.get("KmsMasterKeyId")
        used, own = inv.key(ref), inv.key_for_alias(cfg.key_alias(q.tenant))
        ok = used is not None and own is not None and used.key_id == own.key_id
        out.append(verdict(ok, q.name, f"queue {q.name} is encrypted under {cfg.key_alias(q.tenant)}",
                           f"queue {q.name} is not encrypted under its tenant key {cfg.key_alias(q.tenant)}",
                           kms_master_key_id=ref, sqs_managed_sse=q.attributes.get("SqsManagedSseEnabled"),
                           resolved_key=used.key_id if used else None, expected_key=own.key_id if own else None))
    return out
