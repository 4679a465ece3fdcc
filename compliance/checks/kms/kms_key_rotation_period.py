from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, failed, unverified, verdict
from ...inventory import Inventory
from ._tenant_keys import tenant_keys

# Where a backend does not report RotationPeriodInDays (moto 5.2), provisioning records the period it
# asked for in this tag.  A declared period over the limit is a failure; a declared period within it is
# only a claim, so it is reported UNVERIFIED, never PASS.
DECLARED_TAG = "comfyfab:rotation-days"


def kms_key_rotation_period(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Rotation at most every ``encryption.kms_rotation_days`` (AWS's default period is 365 days)."""
    limit = cfg.encryption.kms_rotation_days
    out = []
    for alias, k in tenant_keys(inv, cfg):
        if k.rotation_enabled is not True:
            continue  # kms_key_rotation_enabled judges that
        if k.rotation_period_days is not None:
            out.append(verdict(k.rotation_period_days <= limit, alias,
                               f"key {k.key_id} rotates every {k.rotation_period_days} days (<= {limit})",
                               f"key {k.key_id} rotates every {k.rotation_period_days} days, more than {limit}",
                               key_id=k.key_id, rotation_period_days=k.rotation_period_days, limit_days=limit,
                               source="GetKeyRotationStatus"))
            continue
        declared = k.tags.get(DECLARED_TAG)
        evidence = dict(key_id=k.key_id, limit_days=limit, declared_days=declared, source=f"tag {DECLARED_TAG}")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            out.append(failed(alias, f"key {k.key_id} is declared to rotate every {declared} days, more than {limit}",
                              **evidence))
        else:
            out.append(unverified(alias, f"key {k.key_id}: the {inv.backend} backend does not report "
                                         "RotationPeriodInDays" + (f" (declared {declared} days)" if declared else ""),
                                  **evidence))
    return out
