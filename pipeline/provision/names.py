"""Names and tags of the resources provisioning owns beyond those the config derives.

Everything is derived from the :class:`~comfyfab.config.FabricConfig`: the
fabric name prefixes every name, so two fabrics can share one account.
Shared (non-tenant) resources carry names that start with ``_`` where the
service allows it, which no tenant id can (tenant ids start with a letter).
"""

from __future__ import annotations

from comfyfab.config import FabricConfig

FABRIC_TAG = "comfyfab:fabric"
TENANT_TAG = "comfyfab:tenant"
ROLE_TAG = "comfyfab:role"
POLICY_MODE_TAG = "comfyfab:bucket-policy"
ROTATION_TAG = "comfyfab:rotation-days"


def audit_key_alias(cfg: FabricConfig) -> str:
    return f"alias/{cfg.name}/_audit"


def table_key_alias(cfg: FabricConfig) -> str:
    return f"alias/{cfg.name}/_jobs"


def worker_role_name(cfg: FabricConfig, tenant_id: str) -> str:
    return f"{cfg.name}-{tenant_id}-worker"


def flow_log_role_name(cfg: FabricConfig, tenant_id: str) -> str:
    return f"{cfg.name}-{tenant_id}-flow-logs"


def router_flow_log_role_name(cfg: FabricConfig) -> str:
    return f"{cfg.name}-router-flow-logs"


def router_role_name(cfg: FabricConfig) -> str:
    return f"{cfg.name}-router"


def dlq_alarm_name(cfg: FabricConfig, tenant_id: str, cls: str) -> str:
    return f"{cfg.name}-{tenant_id}-{cls}-dlq-depth"


def gpu_alarm_name(cfg: FabricConfig, tenant_id: str) -> str:
    return f"{cfg.name}-{tenant_id}-gpu-memory"


def tag_dict(cfg: FabricConfig, role: str, tenant_id: str | None = None, **extra: str) -> dict[str, str]:
    """The tags of one resource.

    Tenant resources carry ``comfyfab:tenant``; shared ones (router network,
    jobs table, alarm topic, audit trail) deliberately do not, so a reader that
    selects tenant resources by that tag key never mistakes them for a tenant.
    """
    tags = {FABRIC_TAG: cfg.name, ROLE_TAG: role}
    if tenant_id is not None:
        tags[TENANT_TAG] = tenant_id
    tags.update(extra)
    return tags


def tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    """Tags in the list-of-pairs shape most AWS APIs take (KMS spells them TagKey/TagValue)."""
    return [{key: k, value: v} for k, v in sorted(tags.items())]
