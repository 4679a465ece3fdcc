from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, unverified, verdict
from ...inventory import Inventory


def dynamodb_table_pitr(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Point-in-time recovery is on whenever the config asks for it."""
    t = inv.table
    if t is None or not t.exists:
        return []
    want = cfg.jobs.point_in_time_recovery
    if not t.pitr_supported:
        return [unverified(t.name, f"the DynamoDB endpoint of {inv.backend} does not implement continuous backups",
                           required=want)]
    ok = t.pitr_status == "ENABLED" or not want
    return [verdict(ok, t.name, f"table {t.name} point-in-time recovery is {t.pitr_status}",
                    f"table {t.name} point-in-time recovery is {t.pitr_status}, the config requires it",
                    pitr_status=t.pitr_status, required=want)]
