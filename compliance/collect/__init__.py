"""Collectors: read one account once into an :class:`~compliance.inventory.Inventory`.

Each collector takes a :class:`comfyfab.cloud.Cloud` and the fabric config,
makes the read-only AWS calls its service needs and returns frozen models.
Resources are found by the names the config derives (buckets, key aliases,
queues, the table, log groups) or, where AWS names them itself (VPCs, roles),
by the ``comfyfab:fabric`` / ``comfyfab:tenant`` tags.  An error that means
"not configured" becomes ``None`` in the model; any other error propagates
as :class:`CollectionError` naming the call -- nothing is dropped silently.
"""

from __future__ import annotations

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from ..inventory import Inventory
from ._common import CollectionError
from .identity import collect_roles, collect_trails, collect_users
from .messaging import collect_queues, collect_table
from .monitoring import collect_alarms, collect_log_groups, collect_topics
from .network import collect_router_groups, collect_vpcs
from .storage import collect_buckets, collect_keys

__all__ = ["collect", "CollectionError"]


def collect(cloud: Cloud, cfg: FabricConfig) -> Inventory:
    """Read everything the checks need from the account behind ``cloud``."""
    account = cloud.account_id()
    return Inventory(
        account_id=account,
        region=cloud.spec.region,
        backend=cloud.spec.kind,
        buckets=collect_buckets(cloud, cfg),
        keys=collect_keys(cloud, cfg),
        queues=collect_queues(cloud, cfg),
        table=collect_table(cloud, cfg),
        vpcs=collect_vpcs(cloud, cfg),
        log_groups=collect_log_groups(cloud, cfg),
        alarms=collect_alarms(cloud, cfg),
        topics=collect_topics(cloud, cfg),
        roles=collect_roles(cloud, cfg),
        users=collect_users(cloud),
        trails=collect_trails(cloud),
        router_groups=collect_router_groups(cloud, cfg),
    )
