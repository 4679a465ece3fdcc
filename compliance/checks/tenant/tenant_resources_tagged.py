from __future__ import annotations

from typing import Mapping

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import FABRIC_TAG, TENANT_TAG, Inventory


def tenant_resources_tagged(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Every tenant resource carries ``comfyfab:fabric`` and its own ``comfyfab:tenant`` tag."""
    items: list[tuple[str, str, Mapping[str, str]]] = []
    for b in inv.buckets:
        if b.exists and b.tenant:
            items.append((b.name, b.tenant, b.tags))
    for t in cfg.tenants:
        k = inv.key_for_alias(cfg.key_alias(t.id))
        if k is not None:
            items.append((k.key_id, t.id, k.tags))
    items += [(q.name, q.tenant, q.tags) for q in inv.queues if q.exists]
    items += [(r.name, r.tenant, r.tags) for r in inv.roles if r.tenant]
    out = []
    for name, tenant, tags in items:
        ok = tags.get(TENANT_TAG) == tenant and tags.get(FABRIC_TAG) == cfg.name
        out.append(verdict(ok, name, f"{name} is tagged to tenant {tenant}",
                           f"{name} is not tagged {TENANT_TAG}={tenant}, {FABRIC_TAG}={cfg.name}",
                           tenant_tag=tags.get(TENANT_TAG), fabric_tag=tags.get(FABRIC_TAG)))
    return out
