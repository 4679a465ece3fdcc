from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, failed, verdict
from ...inventory import Inventory
from ._vpcs import existing, label, worker_groups


def vpc_worker_ingress_router_only(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The workers' only ingress is TCP on the worker port from the router's security group."""
    port = cfg.network.worker_port
    out = []
    for v in existing(inv):
        groups = worker_groups(v)
        if not groups:
            out.append(failed(label(v), f"VPC {label(v)} has no worker security group", router_groups=list(inv.router_groups)))
            continue
        for g in groups:
            allowed = [r for r in g.ingress if r.protocol in ("tcp", "6") and r.from_port == port == r.to_port
                       and r.source_group in inv.router_groups]
            other = [r for r in g.ingress if r not in allowed]
            ok = bool(allowed) and not other
            out.append(verdict(ok, g.group_id, f"worker group {g.group_id} admits only TCP {port} from the router group",
                               f"worker group {g.group_id} ingress is not exactly TCP {port} from the router group",
                               vpc=v.vpc_id, router_groups=list(inv.router_groups),
                               router_rules=len(allowed),
                               other_rules=[{"protocol": r.protocol, "ports": [r.from_port, r.to_port],
                                             "source": r.cidr or r.source_group or r.prefix_list} for r in other]))
    return out
