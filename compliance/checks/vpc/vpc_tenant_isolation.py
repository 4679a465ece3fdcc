from __future__ import annotations

import ipaddress

from comfyfab.config import FabricConfig

from .. import Outcome, failed, verdict
from ...inventory import Inventory


def vpc_tenant_isolation(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """One dedicated VPC per tenant, with the configured CIDR, peered only with the fabric's shared (router) VPC."""
    out = []
    tenant_vpc_ids = {v.vpc_id: v.tenant for v in inv.vpcs if v.exists}
    for t in cfg.tenants:
        mine = [v for v in inv.vpcs if v.tenant == t.id and v.exists]
        if not mine:
            out.append(failed(t.id, f"tenant {t.id} has no VPC tagged to it", exists=False))
            continue
        problems = []
        if len(mine) > 1:
            problems.append(f"{len(mine)} VPCs tagged to the tenant")
        for v in mine:
            if v.cidr != t.vpc_cidr:
                problems.append(f"{v.vpc_id} CIDR {v.cidr} is not the configured {t.vpc_cidr}")
            cross = [f"{p} ({tenant_vpc_ids.get(p, 'not this fabric')})" for p in v.peer_vpcs
                     if p not in inv.shared_vpcs]
            if cross:
                problems.append(f"{v.vpc_id} is peered with {', '.join(cross)}")
            for o in inv.vpcs:
                if o.exists and o.tenant != t.id and o.cidr and v.cidr and \
                        ipaddress.ip_network(o.cidr).overlaps(ipaddress.ip_network(v.cidr)):
                    problems.append(f"{v.vpc_id} CIDR overlaps {o.tenant}'s {o.cidr}")
        out.append(verdict(not problems, t.id, f"tenant {t.id} has its own isolated VPC {mine[0].vpc_id}",
                           f"tenant {t.id} VPC isolation broken: {'; '.join(problems)}",
                           vpcs=[v.vpc_id for v in mine], cidrs=[v.cidr for v in mine],
                           peers=[p for v in mine for p in v.peer_vpcs], allowed_peers=list(inv.shared_vpcs)))
    return out
