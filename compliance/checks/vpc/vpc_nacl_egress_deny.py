from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory, Nacl
from ._vpcs import OPEN, existing

IMPLICIT = 32767  # the catch-all entry every NACL has; an explicit deny must come before it


def _explicit_deny(n: Nacl) -> int | None:
    """The rule number of an explicit deny-all egress entry that no allow to 0.0.0.0/0 (any protocol) precedes."""
    egress = sorted((e for e in n.entries if e.egress), key=lambda e: e.rule_number)
    for e in egress:
        if e.cidr not in OPEN:
            continue
        if e.action == "allow":
            return None
        if e.protocol == "-1" and e.rule_number < IMPLICIT:
            return e.rule_number
    return None


def vpc_nacl_egress_deny(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Every subnet's NACL ends its egress rules with an explicit deny-all, and allows nothing to 0.0.0.0/0 before it."""
    out = []
    for v in existing(inv):
        for s in v.subnets:
            n = next((n for n in v.nacls if s.subnet_id in n.subnet_ids), None) or \
                next((n for n in v.nacls if n.is_default), None)
            rule = _explicit_deny(n) if n else None
            out.append(verdict(rule is not None, s.subnet_id,
                               f"subnet {s.subnet_id} egress ends in explicit deny rule {rule} of {n.nacl_id if n else ''}",
                               f"subnet {s.subnet_id} NACL {n.nacl_id if n else '(none)'} has no explicit egress deny-all "
                               "ahead of any allow-all", vpc=v.vpc_id, nacl=n.nacl_id if n else None,
                               egress=[{"rule": e.rule_number, "action": e.action, "protocol": e.protocol,
                                        "cidr": e.cidr} for e in (n.entries if n else ()) if e.egress]))
    return out
