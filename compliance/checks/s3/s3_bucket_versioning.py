from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def s3_bucket_versioning(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    return [verdict(b.versioning == "Enabled", b.name, f"bucket {b.name} has versioning enabled",
                    f"bucket {b.name} versioning is {b.versioning or 'never enabled'}", versioning=b.versioning)
            for b in inv.buckets if b.exists]
