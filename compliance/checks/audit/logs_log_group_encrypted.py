from __future__ import annotations

from comfyfab.config import FabricConfig
from pipeline.provision.names import audit_key_alias

from .. import Outcome, verdict
from ...inventory import Inventory


def logs_log_group_encrypted(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The audit log group and the router's flow-log group are encrypted under the audit key, and each
    tenant's flow-log group under that tenant's own key.

    Flow logs name the tenant's addresses and peers, and the audit group names jobs, tenants and PHI
    rejections: under a CMK, their readers are those the key policy and IAM allow, and every use of
    the key is in CloudTrail.  A group under CloudWatch Logs' own key, or under a key that is not the
    expected one, fails.
    """
    wanted = {cfg.audit_log_group(): (audit_key_alias(cfg), "the audit key"),
              cfg.router_flow_log_group(): (audit_key_alias(cfg), "the audit key")}
    wanted.update({cfg.flow_log_group(t.id): (cfg.key_alias(t.id), f"tenant {t.id}'s key") for t in cfg.tenants})
    out = []
    for name, (alias, whose) in wanted.items():
        g = inv.log_group(name)
        if g is None or not g.exists:
            continue   # a missing group is its retention check's finding
        used, own = inv.key(g.kms_key_id), inv.key_for_alias(alias)
        ok = used is not None and own is not None and used.key_id == own.key_id
        seen = "no CMK (CloudWatch Logs' own key)" if not g.kms_key_id else (
            whose if ok else f"key {g.kms_key_id}, not {whose}")
        out.append(verdict(ok, name, f"log group {name} is encrypted under {whose}",
                           f"log group {name} is encrypted under {seen}",
                           kms_key_id=g.kms_key_id, resolved_key=used.key_id if used else None,
                           expected_key=own.key_id if own else None))
    return out
