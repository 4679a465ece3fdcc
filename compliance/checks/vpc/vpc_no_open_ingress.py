from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory
from ._vpcs import OPEN, existing


def vpc_no_open_ingress(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """No security group in a tenant VPC admits traffic from 0.0.0.0/0 or ::/0."""
    out = []
    for v in existing(inv):
        for g in v.security_groups:
            open_rules = [{"protocol": r.protocol, "ports": [r.from_port, r.to_port], "cidr": r.cidr}
                          for r in g.ingress if r.cidr in OPEN]
            out.append(verdict(not open_rules, g.group_id, f"group {g.group_id} ({g.name}) admits nothing from anywhere",
                               f"group {g.group_id} ({g.name}) admits traffic from the whole internet",
                               vpc=v.vpc_id, open_rules=open_rules))
    return out
