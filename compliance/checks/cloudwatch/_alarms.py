"""What makes an alarm page someone: actions enabled and routed to the fabric's alarm topic."""

from __future__ import annotations

from comfyfab.config import FabricConfig

from ...inventory import Alarm, Inventory

RAISING = ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold")


def topic_arn(inv: Inventory, cfg: FabricConfig) -> str | None:
    name = cfg.alarm_topic_name()
    return next((t for t in inv.topics if t.rsplit(":", 1)[-1] == name), None)


def routed(a: Alarm, topic: str | None) -> bool:
    return a.actions_enabled and topic is not None and topic in a.alarm_actions


def summary(a: Alarm) -> dict:
    return {"name": a.name, "metric": f"{a.namespace}/{a.metric}", "dimensions": dict(a.dimensions),
            "threshold": a.threshold, "comparison": a.comparison, "period_s": a.period_s,
            "evaluation_periods": a.evaluation_periods, "actions_enabled": a.actions_enabled,
            "alarm_actions": list(a.alarm_actions)}
