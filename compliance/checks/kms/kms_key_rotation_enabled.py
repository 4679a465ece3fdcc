from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory
from ._tenant_keys import tenant_keys


def kms_key_rotation_enabled(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    return [verdict(k.rotation_enabled is True, alias, f"key {k.key_id} ({alias}) rotates automatically",
                    f"key {k.key_id} ({alias}) has automatic rotation off",
                    key_id=k.key_id, rotation_enabled=k.rotation_enabled)
            for alias, k in tenant_keys(inv, cfg)]
