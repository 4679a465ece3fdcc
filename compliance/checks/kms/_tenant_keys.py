"""The keys behind the tenants' aliases, which the KMS checks judge."""

from __future__ import annotations

from comfyfab.config import FabricConfig

from ...inventory import Inventory, KmsKey


def tenant_keys(inv: Inventory, cfg: FabricConfig) -> list[tuple[str, KmsKey]]:
    out = []
    for t in cfg.tenants:
        k = inv.key_for_alias(cfg.key_alias(t.id))
        if k is not None:
            out.append((cfg.key_alias(t.id), k))
    return out
