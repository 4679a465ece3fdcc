from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, failed, verdict
from ...inventory import Inventory


def vpc_router_endpoints_private(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The router reaches its job table, queues and audit log through its VPC's endpoints, never the internet."""
    want = set(cfg.network.router_endpoints)
    if not inv.router_vpcs:
        return [failed(cfg.name, f"fabric {cfg.name} has no router VPC (a VPC tagged with the fabric and no tenant)",
                       required=sorted(want))]
    out = []
    for v in inv.router_vpcs:
        missing = sorted(want - set(v.endpoints))
        out.append(verdict(not missing, v.vpc_id, f"router VPC {v.vpc_id} has endpoints for {', '.join(sorted(want))}",
                           f"router VPC {v.vpc_id} lacks endpoints for {', '.join(missing)}",
                           endpoints=list(v.endpoints), required=sorted(want)))
    return out
