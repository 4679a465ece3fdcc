from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory
from ._policy import denies_insecure_transport, find


def s3_bucket_policy_secure_transport(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    out = []
    for b in inv.buckets:
        if not b.exists:
            continue
        sids = find(b.policy, denies_insecure_transport)
        out.append(verdict(bool(sids), b.name, f"bucket {b.name} denies every request without TLS",
                           f"bucket {b.name} has no Deny on aws:SecureTransport=false for s3:*",
                           has_policy=b.policy is not None, matching_statements=sids))
    return out
