"""Helpers for the VPC checks: the tenant VPCs that exist and their worker groups."""

from __future__ import annotations

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
