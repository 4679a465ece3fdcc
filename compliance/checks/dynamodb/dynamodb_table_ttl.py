from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, failed, verdict
from ...inventory import Inventory


def dynamodb_table_ttl(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The job table expires rows through TTL on the configured attribute."""
    t = inv.table
    name = cfg.table_name()
    if t is None or not t.exists:
        return [failed(name, f"job table {name} does not exist", exists=False)]
    want = cfg.jobs.ttl_attribute
    ok = t.ttl_status in ("ENABLED", "ENABLING") and t.ttl_attribute == want
    return [verdict(ok, name, f"table {name} expires rows via TTL on {want!r}",
                    f"table {name} TTL is {t.ttl_status} on {t.ttl_attribute!r}, expected ENABLED on {want!r}",
                    ttl_status=t.ttl_status, ttl_attribute=t.ttl_attribute, expected_attribute=want)]
