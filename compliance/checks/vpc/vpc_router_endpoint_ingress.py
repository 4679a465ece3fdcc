from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, failed, verdict
from ...inventory import Inventory

HTTPS = 443


def vpc_router_endpoint_ingress(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The router VPC's interface endpoints carry their own security group, which admits HTTPS from
    the router's security group and nothing else."""
    out = []
    for v in inv.router_vpcs:
        if not v.endpoint_groups:
            if v.endpoints:
                out.append(failed(v.vpc_id, f"router VPC {v.vpc_id}: its endpoints carry no security group of their "
                                            "own", endpoints=list(v.endpoints)))
            continue
        groups = {g.group_id: g for g in v.security_groups}
        for gid in v.endpoint_groups:
            g = groups.get(gid)
            if g is None:
                out.append(failed(gid, f"endpoint group {gid} is not a security group of router VPC {v.vpc_id}",
                                  vpc=v.vpc_id))
                continue
            allowed = [r for r in g.ingress if r.protocol in ("tcp", "6") and r.from_port == HTTPS == r.to_port
                       and r.source_group in inv.router_groups]
            other = [r for r in g.ingress if r not in allowed]
            out.append(verdict(bool(allowed) and not other, gid,
                               f"endpoint group {gid} ({g.name}) admits only HTTPS from the router group",
                               f"endpoint group {gid} ({g.name}) ingress is not exactly HTTPS from the router group",
                               vpc=v.vpc_id, router_groups=list(inv.router_groups), router_rules=len(allowed),
                               other_rules=[{"protocol": r.protocol, "ports": [r.from_port, r.to_port],
                                             "source": r.cidr or r.source_group or r.prefix_list} for r in other]))
    return out
