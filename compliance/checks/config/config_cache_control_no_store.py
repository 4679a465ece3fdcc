from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def config_cache_control_no_store(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Outputs are delivered with Cache-Control no-store and no-cache so no edge keeps another tenant's image."""
    got = cfg.delivery.cache_control
    directives = {d.strip().lower() for d in got.split(",")}
    missing = sorted({"no-store", "no-cache"} - directives)
    return [verdict(not missing, "delivery.cache_control", f"delivery sends Cache-Control: {got}",
                    f"delivery Cache-Control {got!r} lacks {', '.join(missing)}", cache_control=got)]
