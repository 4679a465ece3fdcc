from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, unverified, verdict
from ...inventory import Inventory


def cloudtrail_audit_trail(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """A multi-region trail with log-file validation is logging into the audit bucket."""
    bucket = cfg.audit_bucket_name()
    if inv.trails is None:
        return [unverified(bucket, f"the {inv.backend} backend has no CloudTrail API; the trail cannot be read")]
    good = [t for t in inv.trails if t.s3_bucket == bucket and t.is_logging and t.multi_region and t.log_file_validation]
    return [verdict(bool(good), bucket, f"trail {good[0].name if good else ''} logs every region into {bucket}",
                    f"no logging, multi-region, validated trail delivers to {bucket}",
                    trails=[{"name": t.name, "bucket": t.s3_bucket, "logging": t.is_logging,
                             "multi_region": t.multi_region, "validation": t.log_file_validation}
                            for t in inv.trails])]
