from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome
from ...inventory import Inventory
from ._vpcs import endpoint_ingress


def vpc_router_endpoint_ingress(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The router VPC's interface endpoints carry their own security group, which admits HTTPS from
    the router's security group and nothing else."""
    out = []
    for v in inv.router_vpcs:
        out += endpoint_ingress(v, set(inv.router_groups), "the router group", f"router VPC {v.vpc_id}")
    return out
