from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory
from ._vpcs import existing, label


def vpc_endpoints_private(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Workers reach S3, SQS and ECR through VPC endpoints (PrivateLink), never the internet."""
    want = set(cfg.network.vpc_endpoints)
    out = []
    for v in existing(inv):
        missing = sorted(want - set(v.endpoints))
        out.append(verdict(not missing, label(v), f"VPC {label(v)} has endpoints for {', '.join(sorted(want))}",
                           f"VPC {label(v)} lacks endpoints for {', '.join(missing)}",
                           endpoints=list(v.endpoints), required=sorted(want)))
    return out
