from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory


def iam_worker_role_least_privilege(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Tenant (worker) roles allow no wildcard action and no ``*`` resource, nor NotAction/NotResource."""
    out = []
    for r in inv.roles:
        if r.tenant is None:
            continue
        bad = []
        for s in r.statements:
            if s.effect != "Allow":
                continue
            wild_a = [a for a in s.actions if "*" in a or a.startswith("NOT:")]
            wild_r = [x for x in s.resources if x == "*" or x.startswith("NOT:")]
            if wild_a or wild_r:
                bad.append({"policy": s.source, "actions": wild_a, "resources": wild_r})
        out.append(verdict(not bad, r.name, f"role {r.name} grants only named actions on named resources",
                           f"role {r.name} grants wildcards", statements=len(r.statements), wildcards=bad))
    return out
