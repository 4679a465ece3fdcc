from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, unverified, verdict
from ...inventory import Inventory


def dynamodb_table_kms_encryption(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The job table is encrypted with SSE-KMS under a customer-managed key of this fabric."""
    t = inv.table
    if t is None or not t.exists:
        return []
    if t.sse_status is None and not t.pitr_supported:
        return [unverified(t.name, f"the DynamoDB endpoint of {inv.backend} implements neither SSE nor PITR "
                                   "(DynamoDB Local); encryption cannot be judged there")]
    key = inv.key(t.sse_kms_key)
    ok = t.sse_status == "ENABLED" and t.sse_type == "KMS" and key is not None and key.manager == "CUSTOMER"
    return [verdict(ok, t.name, f"table {t.name} is encrypted under CMK {key.key_id if key else ''}",
                    f"table {t.name} is not encrypted under a customer-managed key of this fabric",
                    sse_status=t.sse_status, sse_type=t.sse_type, kms_key=t.sse_kms_key,
                    resolved_key=key.key_id if key else None)]
