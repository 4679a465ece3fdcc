"""SQS queues and the DynamoDB job table."""

from __future__ import annotations

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from ..inventory import Queue, Table
from ._common import call


def collect_queues(cloud: Cloud, cfg: FabricConfig) -> tuple[Queue, ...]:
    """Every class queue and DLQ the config names, per tenant."""
    sqs = cloud.client("sqs")
    urls: dict[str, str] = {}
    for page in sqs.get_paginator("list_queues").paginate(QueueNamePrefix=f"{cfg.name}-"):
        urls.update({u.rsplit("/", 1)[-1]: u for u in page.get("QueueUrls", [])})
    out: list[Queue] = []
    for t in cfg.tenants:
        for cls in cfg.queues.classes:
            for dlq in (False, True):
                name = cfg.queue_name(t.id, cls.name, dlq=dlq)
                url = urls.get(name)
                if url is None:
                    out.append(Queue(name=name, tenant=t.id, priority=cls.name, dlq=dlq, exists=False))
                    continue
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
                tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
                out.append(Queue(name=name, tenant=t.id, priority=cls.name, dlq=dlq, url=url,
                                 attributes=dict(attrs), tags=dict(tags)))
    return tuple(out)


def collect_table(cloud: Cloud, cfg: FabricConfig) -> Table:
    ddb = cloud.client("dynamodb")
    name = cfg.table_name()
    desc = call(ddb.describe_table, f"dynamodb:DescribeTable {name}", "ResourceNotFoundException", TableName=name)
    if not desc:
        return Table(name=name, exists=False)
    sse = desc["Table"].get("SSEDescription", {})
    ttl = ddb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    backups = call(ddb.describe_continuous_backups, f"dynamodb:DescribeContinuousBackups {name}",
                   "UnknownOperationException", TableName=name)
    pitr = (backups or {}).get("ContinuousBackupsDescription", {}).get(
        "PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    return Table(
        name=name, ttl_status=ttl.get("TimeToLiveStatus"), ttl_attribute=ttl.get("AttributeName"),
        sse_status=sse.get("Status"), sse_type=sse.get("SSEType"), sse_kms_key=sse.get("KMSMasterKeyArn"),
        pitr_status=pitr, pitr_supported=backups is not None,
    )
