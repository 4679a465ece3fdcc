from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Inventory
from ._alarms import RAISING, routed, summary, topic_arn


def cloudwatch_dlq_depth_alarm(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Every DLQ has a depth alarm (> threshold messages) that notifies the alarm topic."""
    limit = cfg.monitoring.dlq_depth_threshold
    topic = topic_arn(inv, cfg)
    out = []
    for q in inv.queues:
        if not q.dlq or not q.exists:
            continue
        mine = [a for a in inv.alarms if a.dimensions.get("QueueName") == q.name
                and a.namespace == "AWS/SQS" and a.metric == "ApproximateNumberOfMessagesVisible"]
        good = [a for a in mine if a.comparison in RAISING and a.threshold is not None
                and (a.threshold <= limit if a.comparison == RAISING[0] else a.threshold <= limit + 1)
                and routed(a, topic)]
        out.append(verdict(bool(good), q.name, f"DLQ {q.name} depth > {limit} pages {cfg.alarm_topic_name()}",
                           f"DLQ {q.name} has no depth alarm > {limit} routed to {cfg.alarm_topic_name()}",
                           topic=topic, alarms=[summary(a) for a in mine]))
    return out
