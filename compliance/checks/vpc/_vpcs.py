"""Helpers for the VPC checks: the tenant VPCs that exist and their worker groups."""

from __future__ import annotations

from typing import Any

from .. import Outcome, failed, verdict
from ...inventory import Inventory, SecurityGroup, Vpc

ROLE_TAG = "comfyfab:role"
OPEN = ("0.0.0.0/0", "::/0")


def existing(inv: Inventory) -> list[Vpc]:
    return [v for v in inv.vpcs if v.exists]


def worker_groups(vpc: Vpc) -> list[SecurityGroup]:
    """The GPU workers' security groups: tagged ``comfyfab:role=worker``, or untagged and so named."""
    return [g for g in vpc.security_groups
            if (g.tags[ROLE_TAG] == "worker" if ROLE_TAG in g.tags else "worker" in g.name.lower())]


def label(vpc: Vpc) -> str:
    return f"{vpc.vpc_id} ({vpc.tenant})"


HTTPS = 443


def endpoint_ingress(v: Vpc, admitted: set[str], whose: str, name: str) -> list[Outcome]:
    """The VPC's interface endpoints carry their own security group, and each admits exactly TCP 443 from
    the ``admitted`` groups (``whose``: who they are, for the messages); ``name`` labels the VPC."""
    if not v.endpoint_groups:
        if v.endpoints:
            return [failed(v.vpc_id or name, f"{name}: its endpoints carry no security group of their own",
                           endpoints=list(v.endpoints))]
        return []
    groups = {g.group_id: g for g in v.security_groups}
    out = []
    for gid in v.endpoint_groups:
        g = groups.get(gid)
        if g is None:
            out.append(failed(gid, f"endpoint group {gid} is not a security group of {name}", vpc=v.vpc_id))
            continue
        allowed = [r for r in g.ingress if r.protocol in ("tcp", "6") and r.from_port == HTTPS == r.to_port
                   and r.source_group in admitted]
        other = [r for r in g.ingress if r not in allowed]
        evidence: dict[str, Any] = dict(
            vpc=v.vpc_id, admitted_groups=sorted(admitted), admitted_rules=len(allowed),
            other_rules=[{"protocol": r.protocol, "ports": [r.from_port, r.to_port],
                          "source": r.cidr or r.source_group or r.prefix_list} for r in other])
        out.append(verdict(bool(allowed) and not other, gid,
                           f"endpoint group {gid} ({g.name}) admits only HTTPS from {whose}",
                           f"endpoint group {gid} ({g.name}) ingress is not exactly HTTPS from {whose}", **evidence))
    return out
