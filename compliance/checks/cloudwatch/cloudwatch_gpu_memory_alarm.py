from __future__ import annotations

from comfyfab.config import FabricConfig

from .. import Outcome, verdict
from ...inventory import Alarm, Inventory
from ._alarms import RAISING, routed, summary, topic_arn


def _gpu_memory(a: Alarm, cfg: FabricConfig) -> bool:
    return a.namespace == cfg.monitoring.gpu_metric_namespace and a.metric == cfg.monitoring.gpu_metric_name


def cloudwatch_gpu_memory_alarm(inv: Inventory, cfg: FabricConfig) -> list[Outcome]:
    """Each tenant's workers are covered by a GPU-memory alarm (> pct for the window) that notifies the topic.

    An alarm covers a tenant when one of its dimensions names the tenant, or when it names no tenant at all
    (a fleet-wide alarm).
    """
    mon = cfg.monitoring
    topic = topic_arn(inv, cfg)
    tenants = {t.id for t in cfg.tenants}
    out = []
    for t in cfg.tenants:
        mine = [a for a in inv.alarms if _gpu_memory(a, cfg)
                and (t.id in a.dimensions.values() or not tenants & set(a.dimensions.values()))]
        good = [a for a in mine if a.comparison in RAISING and a.threshold is not None
                and a.threshold <= mon.gpu_memory_threshold_pct
                and (a.period_s or 0) * (a.evaluation_periods or 0) <= mon.gpu_memory_period_s
                and routed(a, topic)]
        out.append(verdict(bool(good), t.id,
                           f"tenant {t.id} GPU memory > {mon.gpu_memory_threshold_pct:g}% "
                           f"for {mon.gpu_memory_period_s} s pages {cfg.alarm_topic_name()}",
                           f"tenant {t.id} has no GPU-memory alarm > {mon.gpu_memory_threshold_pct:g}% within "
                           f"{mon.gpu_memory_period_s} s routed to {cfg.alarm_topic_name()}",
                           topic=topic, alarms=[summary(a) for a in mine]))
    return out
