from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, failed, verdict
from ...inventory import Inventory

FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def s3_bucket_public_access_block(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    out = []
    for b in inv.buckets:
        if not b.exists:
            out.append(failed(b.name, f"bucket {b.name} does not exist", exists=False))
            continue
        pab = dict(b.public_access_block or {})
        off = [f for f in FLAGS if not pab.get(f)]
        out.append(verdict(not off, b.name, f"bucket {b.name} blocks all public access",
                           f"bucket {b.name} does not block public access: {', '.join(off)} off",
                           public_access_block=pab or None))
    return out
