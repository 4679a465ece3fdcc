from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def iam_role_max_session(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Every fabric role caps sessions at ``iam.max_session_hours``."""
    limit = int(cfg.iam.max_session_hours * 3600)
    return [verdict(r.max_session_s <= limit, r.name, f"role {r.name} sessions last at most {r.max_session_s} s",
                    f"role {r.name} allows {r.max_session_s} s sessions, more than {limit} s",
                    max_session_s=r.max_session_s, limit_s=limit) for r in inv.roles]
