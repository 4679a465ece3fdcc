from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome
from ...inventory import Inventory
from ._vpcs import endpoint_ingress, existing, label, worker_groups


def vpc_endpoint_ingress_workers_only(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """A tenant VPC's interface endpoints (SQS, ECR) carry their own security group, which admits HTTPS
    from the tenant's worker groups and nothing else: not the router, not a CIDR."""
    out = []
    for v in existing(inv):
        out += endpoint_ingress(v, {g.group_id for g in worker_groups(v)}, "the tenant's worker group",
                                f"VPC {label(v)}")
    return out
