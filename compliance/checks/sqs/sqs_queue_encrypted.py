from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def sqs_queue_encrypted(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Queues are encrypted at rest: SSE-KMS under their tenant's own key, or SQS-managed SSE.

    A KMS key that is not the tenant's (another tenant's, or an unknown one) fails: it would let another
    tenant's key policy govern this tenant's messages.  The evidence names which kind of SSE was seen.
    """
    out = []
    for q in inv.queues:
        if not q.exists:
            continue
        ref = q.attributes.get("KmsMasterKeyId") or None
        managed = q.attributes.get("SqsManagedSseEnabled") == "true"
        used, own = inv.key(ref), inv.key_for_alias(cfg.key_alias(q.tenant))
        if ref:
            ok = used is not None and own is not None and used.key_id == own.key_id
            kind = "SSE-KMS (tenant CMK)" if ok else "SSE-KMS under a key that is not the tenant's"
        else:
            ok, kind = managed, "SSE-SQS (SQS-managed key)" if managed else "none"
        out.append(verdict(ok, q.name, f"queue {q.name} is encrypted at rest: {kind}",
                           f"queue {q.name} encryption at rest: {kind}", sse=kind,
                           kms_master_key_id=ref, sqs_managed_sse=q.attributes.get("SqsManagedSseEnabled"),
                           resolved_key=used.key_id if used else None, tenant_key=own.key_id if own else None))
    return out
