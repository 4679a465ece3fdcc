from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, failed, verdict
from ...inventory import Inventory


def s3_audit_bucket_object_lock(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The audit bucket keeps objects immutable: Object Lock, the configured mode, at least the configured days."""
    name = cfg.audit_bucket_name()
    b = inv.bucket(name)
    if b is None or not b.exists:
        return [failed(name, f"audit bucket {name} does not exist", exists=False)]
    want_mode, want_days = cfg.audit.object_lock_mode, cfg.audit.object_lock_days
    ok = b.object_lock_enabled and b.object_lock_mode == want_mode and (b.object_lock_days or 0) >= want_days
    return [verdict(ok, name, f"audit bucket {name} locks objects in {want_mode} mode for {b.object_lock_days} days",
                    f"audit bucket {name} does not lock objects in {want_mode} mode for >= {want_days} days",
                    object_lock_enabled=b.object_lock_enabled, mode=b.object_lock_mode, days=b.object_lock_days,
                    expected_mode=want_mode, expected_min_days=want_days)]
