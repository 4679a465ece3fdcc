from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory
from ._vpcs import existing


def vpc_flow_log_retention(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Each tenant's flow-log group, and the router's when its VPC exists, keeps records exactly the
    configured number of days."""
    want = cfg.network.flow_log_retention_days
    out = []
    names = [cfg.flow_log_group(v.tenant) for v in existing(inv)]
    names += [cfg.router_flow_log_group()] if inv.shared_vpcs else []
    for name in names:
        g = inv.log_group(name)
        got = g.retention_days if g and g.exists else None
        out.append(verdict(got == want, name, f"log group {name} retains {want} days",
                           f"log group {name} retention is {got if g and g.exists else 'missing'}, expected {want} days",
                           exists=bool(g and g.exists), retention_days=got, expected_days=want))
    return out
