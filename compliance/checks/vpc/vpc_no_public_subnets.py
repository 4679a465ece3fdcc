from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory
from ._vpcs import existing, label


def vpc_no_public_subnets(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Workers run in private subnets: no public IPs on launch, no internet gateway route or attachment."""
    out = []
    for v in existing(inv):
        public = [s.subnet_id for s in v.subnets if s.map_public_ip]
        routed = [s.subnet_id for s in v.subnets if s.igw_route]
        ok = not public and not routed and not v.igw_ids
        out.append(verdict(ok, label(v), f"VPC {label(v)} has only private subnets and no internet gateway",
                           f"VPC {label(v)} is reachable from the internet",
                           public_ip_subnets=public, igw_routed_subnets=routed, internet_gateways=list(v.igw_ids),
                           subnets=[s.subnet_id for s in v.subnets]))
    return out
