from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory
from ._vpcs import existing, label


def vpc_flow_logs_enabled(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Flow logs cover the VPC (or every subnet) and go to the tenant's CloudWatch Logs group; the
    router's VPC (the fabric's shared one) streams to the router's group."""
    out = []
    group = cfg.router_flow_log_group()
    for vpc_id in inv.shared_vpcs:
        mine = [f for f in inv.shared_flow_logs if f.resource_id == vpc_id]
        ok = any(f.status.upper() == "ACTIVE" and f.log_group == group and f.destination_type == "cloud-watch-logs"
                 for f in mine)
        out.append(verdict(ok, vpc_id, f"router VPC {vpc_id} flow logs stream to {group}",
                           f"router VPC {vpc_id} has no active flow log to {group}",
                           flow_logs=[{"id": f.flow_log_id, "resource": f.resource_id, "status": f.status,
                                       "log_group": f.log_group} for f in mine]))
    for v in existing(inv):
        group = cfg.flow_log_group(v.tenant)
        good = [f for f in v.flow_logs if f.status.upper() == "ACTIVE" and f.log_group == group
                and f.destination_type == "cloud-watch-logs"]
        covered = {f.resource_id for f in good}
        ok = v.vpc_id in covered or (bool(v.subnets) and all(s.subnet_id in covered for s in v.subnets))
        out.append(verdict(ok, label(v), f"VPC {label(v)} flow logs stream to {group}",
                           f"VPC {label(v)} has no active flow log to {group} covering all its subnets",
                           flow_logs=[{"id": f.flow_log_id, "resource": f.resource_id, "status": f.status,
                                       "log_group": f.log_group} for f in v.flow_logs]))
    return out
