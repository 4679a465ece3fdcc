from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def s3_bucket_default_encryption_tenant_key(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Tenant buckets default to SSE-KMS under the tenant's own key; the audit bucket under a fabric CMK."""
    out = []
    for b in inv.buckets:
        if not b.exists:
            continue
        used = inv.key(b.sse_kms_key)
        if b.tenant is not None:
            own = inv.key_for_alias(cfg.key_alias(b.tenant))
            ok = b.sse_algorithm == "aws:kms" and used is not None and own is not None and used.key_id == own.key_id
            want = f"the tenant key {cfg.key_alias(b.tenant)}"
            expected = own.key_id if own else None
        else:
            ok = b.sse_algorithm == "aws:kms" and used is not None
            want, expected = "a customer-managed key of this fabric", None
        out.append(verdict(ok, b.name, f"bucket {b.name} encrypts by default with SSE-KMS under {want}",
                           f"bucket {b.name} does not default to SSE-KMS under {want}",
                           sse_algorithm=b.sse_algorithm, kms_key=b.sse_kms_key,
                           resolved_key=used.key_id if used else None, expected_key=expected))
    return out
