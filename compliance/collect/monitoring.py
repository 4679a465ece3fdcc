"""CloudWatch Logs groups, metric alarms and SNS topics."""

from __future__ import annotations

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from ..inventory import Alarm, LogGroup


def collect_log_groups(cloud: Cloud, cfg: FabricConfig) -> tuple[LogGroup, ...]:
    """The audit group, the router's flow-log group and every tenant's flow-log group."""
    logs = cloud.client("logs")
    wanted = [cfg.audit_log_group(), cfg.router_flow_log_group()] + [cfg.flow_log_group(t.id) for t in cfg.tenants]
    found: dict[str, LogGroup] = {}
    for name in wanted:
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
            for g in page.get("logGroups", []):
                if g["logGroupName"] == name:
                    found[name] = LogGroup(name=name, retention_days=g.get("retentionInDays"),
                                           kms_key_id=g.get("kmsKeyId"))
    return tuple(found.get(n, LogGroup(name=n, exists=False)) for n in wanted)


def collect_alarms(cloud: Cloud, cfg: FabricConfig) -> tuple[Alarm, ...]:
    cw = cloud.client("cloudwatch")
    out: list[Alarm] = []
    for page in cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        for a in page.get("MetricAlarms", []):
            out.append(Alarm(
                name=a["AlarmName"], namespace=a.get("Namespace"), metric=a.get("MetricName"),
                dimensions={d["Name"]: d["Value"] for d in a.get("Dimensions", [])},
                threshold=a.get("Threshold"), comparison=a.get("ComparisonOperator"),
                period_s=a.get("Period"), evaluation_periods=a.get("EvaluationPeriods"),
                actions_enabled=bool(a.get("ActionsEnabled")), alarm_actions=tuple(a.get("AlarmActions", [])),
            ))
    return tuple(out)


def collect_topics(cloud: Cloud, cfg: FabricConfig) -> tuple[str, ...]:
    sns = cloud.client("sns")
    arns: list[str] = []
    for page in sns.get_paginator("list_topics").paginate():
        arns.extend(t["TopicArn"] for t in page.get("Topics", []))
    return tuple(arns)


def collect_topic_keys(cloud: Cloud, cfg: FabricConfig) -> tuple[tuple[str, str | None], ...]:
    """The fabric's alarm topic and the key it is encrypted under (None: not encrypted)."""
    sns = cloud.client("sns")
    name = cfg.alarm_topic_name()
    out = []
    for arn in collect_topics(cloud, cfg):
        if arn.rsplit(":", 1)[-1] == name:
            attrs = sns.get_topic_attributes(TopicArn=arn).get("Attributes", {})
            out.append((arn, attrs.get("KmsMasterKeyId") or None))
    return tuple(out)
