from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory

MAX_EXPIRY_S = 900  # the architecture's 15-minute ceiling for any delivery credential


def config_presign_expiry(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Presigned URLs and signed cookies expire within 15 minutes."""
    d = cfg.delivery
    return [verdict(v <= MAX_EXPIRY_S, path, f"{path} is {v} s (<= {MAX_EXPIRY_S})",
                    f"{path} is {v} s, above the {MAX_EXPIRY_S} s ceiling", seconds=v, max_s=MAX_EXPIRY_S)
            for path, v in (("delivery.presign_expiry_s", d.presign_expiry_s),
                            ("delivery.signed_cookie_ttl_s", d.signed_cookie_ttl_s))]
