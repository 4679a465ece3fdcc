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

from concurrent.futures import ThreadPoolExecutor

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from ..inventory import Inventory
from ._common import CollectionError
from .identity import collect_roles, collect_root_access_keys, collect_trails, collect_users
from .messaging import collect_queues, collect_table
from .monitoring import collect_alarms, collect_log_groups, collect_topic_keys, collect_topics
from .network import collect_router_groups, collect_router_vpcs, collect_vpcs
from .storage import collect_buckets, collect_keys

__all__ = ["collect", "CollectionError"]


def collect(cloud: Cloud, cfg: FabricConfig, workers: int = 8) -> Inventory:
    """Read everything the checks need from the account behind ``cloud``.

    The service collectors are independent, so they run side by side (boto3 clients are thread-safe);
    an error in any of them propagates.
    """
    jobs = {
        "buckets": lambda: collect_buckets(cloud, cfg),
        "keys": lambda: collect_keys(cloud, cfg),
        "queues": lambda: collect_queues(cloud, cfg),
        "table": lambda: collect_table(cloud, cfg),
        "vpcs": lambda: collect_vpcs(cloud, cfg),
        "log_groups": lambda: collect_log_groups(cloud, cfg),
        "alarms": lambda: collect_alarms(cloud, cfg),
        "topics": lambda: collect_topics(cloud, cfg),
        "topic_kms_keys": lambda: collect_topic_keys(cloud, cfg),
        "roles": lambda: collect_roles(cloud, cfg),
        "users": lambda: collect_users(cloud),
        "root_access_keys": lambda: collect_root_access_keys(cloud),
        "trails": lambda: collect_trails(cloud),
        "router_groups": lambda: collect_router_groups(cloud, cfg),
        "router_vpcs": lambda: collect_router_vpcs(cloud, cfg),
    }
    account = cloud.account_id()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect") as pool:
        futures = {name: pool.submit(fn) for name, fn in jobs.items()}
        parts = {name: f.result() for name, f in futures.items()}
    return Inventory(account_id=account, region=cloud.spec.region, backend=cloud.spec.kind, **parts)
