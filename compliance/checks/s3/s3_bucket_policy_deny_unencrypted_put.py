from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory
from ._policy import denies_unencrypted_put, find


def s3_bucket_policy_deny_unencrypted_put(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Tenant output buckets refuse uploads that do not ask for SSE-KMS."""
    out = []
    for b in inv.buckets:
        if not b.exists or b.tenant is None:
            continue
        sids = find(b.policy, denies_unencrypted_put)
        out.append(verdict(bool(sids), b.name, f"bucket {b.name} denies PutObject without SSE-KMS",
                           f"bucket {b.name} has no Deny on PutObject without x-amz-server-side-encryption=aws:kms",
                           has_policy=b.policy is not None, matching_statements=sids))
    return out
