from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, failed, verdict
from ...inventory import Inventory


def kms_key_per_tenant(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Each tenant's alias names its own customer-managed key, shared with no one, and it is the only one."""
    out = []
    owners: dict[str, list[str]] = {}
    for t in cfg.tenants:
        k = inv.key_for_alias(cfg.key_alias(t.id))
        if k is not None:
            owners.setdefault(k.key_id, []).append(t.id)
    for t in cfg.tenants:
        alias = cfg.key_alias(t.id)
        k = inv.key_for_alias(alias)
        if k is None:
            out.append(failed(alias, f"tenant {t.id} has no key behind {alias}", alias=alias))
            continue
        tagged = sorted(x.key_id for x in inv.keys if x.tenant == t.id)
        problems = []
        if k.manager != "CUSTOMER":
            problems.append(f"key is {k.manager}-managed")
        if owners[k.key_id] != [t.id]:
            problems.append(f"key shared with {', '.join(o for o in owners[k.key_id] if o != t.id)}")
        if k.tenant != t.id:
            problems.append(f"key is tagged to {k.tenant!r}")
        if tagged != [k.key_id]:
            problems.append(f"{len(tagged)} keys tagged to the tenant")
        out.append(verdict(not problems, alias, f"tenant {t.id} has one dedicated CMK {k.key_id}",
                           f"tenant {t.id} key {k.key_id}: {'; '.join(problems)}",
                           key_id=k.key_id, manager=k.manager, tenant_tag=k.tenant, keys_tagged_to_tenant=tagged))
    return out
