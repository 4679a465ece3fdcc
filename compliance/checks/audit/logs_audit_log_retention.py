from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def logs_audit_log_retention(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The audit log group exists and keeps events at least ``audit.log_retention_days``."""
    name, want = cfg.audit_log_group(), cfg.audit.log_retention_days
    g = inv.log_group(name)
    exists = bool(g and g.exists)
    got = g.retention_days if exists else None
    ok = exists and (got is None or got >= want)   # None: never expires
    return [verdict(ok, name, f"audit log group {name} keeps events {got or 'forever'} days",
                    f"audit log group {name} is {'missing' if not exists else f'kept {got} days'}, needs >= {want}",
                    exists=exists, retention_days=got, min_days=want)]
