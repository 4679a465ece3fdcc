from __future__ import annotations

from comfyfab.config import FabricConfig
from pipeline.provision.names import audit_key_alias

from .. import Outcome, verdict
from ...inventory import Inventory


def sns_alarm_topic_encrypted(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """The alarm topic is encrypted at rest under the fabric's audit key.

    Alarm notifications name tenants, queues and failure counts; under the audit key their readers are
    those its policy and IAM allow.  A topic under no key, or another key, fails.  A missing topic is
    the alarm checks' finding.
    """
    own = inv.key_for_alias(audit_key_alias(cfg))
    out = []
    for arn, ref in inv.topic_kms_keys:
        used = inv.key(ref)
        ok = used is not None and own is not None and used.key_id == own.key_id
        seen = "no key" if not ref else ("the audit key" if ok else f"key {ref}, not the audit key")
        out.append(verdict(ok, arn, f"alarm topic {arn} is encrypted under the audit key",
                           f"alarm topic {arn} is encrypted under {seen}",
                           kms_master_key_id=ref, resolved_key=used.key_id if used else None,
                           audit_key=own.key_id if own else None))
    return out
