from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def config_tls_minimum(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Delivery enforces TLS 1.3 minimum (no AWS read API exposes an edge's minimum protocol here)."""
    got = cfg.delivery.tls_min_version
    return [verdict(got == "TLSv1.3", "delivery.tls_min_version", "delivery requires TLS 1.3 or newer",
                    f"delivery accepts {got}; TLS 1.3 minimum is required", tls_min_version=got)]
