from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory
from ._tenant_keys import tenant_keys


def kms_key_enabled(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Tenant keys are usable: Enabled, neither disabled nor scheduled for deletion."""
    return [verdict(k.state == "Enabled" and k.deletion_date is None, alias,
                    f"key {k.key_id} ({alias}) is enabled",
                    f"key {k.key_id} ({alias}) is {k.state}"
                    + (f", deletion scheduled for {k.deletion_date}" if k.deletion_date else ""),
                    key_id=k.key_id, state=k.state, deletion_date=k.deletion_date)
            for alias, k in tenant_keys(inv, cfg)]
