"""SQS: per tenant, one FIFO queue and one FIFO dead-letter queue per priority class."""

from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import ClientError

from comfyfab.config import PriorityClass

from .context import Step, error_code
from .errors import MissingResourceError


@dataclass(frozen=True)
class Queue:
    """One queue by URL and ARN."""

    url: str
    arn: str


def find_queue(step: Step, name: str) -> str | None:
    try:
        return step.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return None
        raise


def _ensure(step: Step, name: str, attributes: dict[str, str], tags: dict[str, str]) -> Queue:
    sqs = step.client("sqs")
    url = find_queue(step, name)
    if url is None:
        if not step.create:
            raise step.absent(f"SQS queue {name}")
        step.say(f"creating SQS queue {name}")
        given = {k: v for k, v in attributes.items() if v != ""}  # "" only switches an existing queue off SSE-KMS
        url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", **given}, tags=tags)["QueueUrl"]
    elif step.create:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        sqs.tag_queue(QueueUrl=url, Tags=tags)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(url=url, arn=arn)


def sse_attributes(step: Step, key_arn: str | None) -> dict[str, str]:
    """Encryption at rest of a tenant's queues, as ``encryption.queue_key`` asks.

    ``tenant``: SSE-KMS under the tenant's own key, so its key policy (and its
    CloudTrail record of every use) governs the tenant's messages as it does
    the tenant's images.  ``sqs-managed``: SSE-SQS.  Each names the other off,
    since SQS takes one kind at a time and converging must switch a queue over.
    """
    enc = step.cfg.encryption
    if enc.queue_key == "tenant" and key_arn:
        return {"KmsMasterKeyId": key_arn, "KmsDataKeyReusePeriodSeconds": str(enc.queue_data_key_reuse_s),
                "SqsManagedSseEnabled": "false"}
    return {"SqsManagedSseEnabled": "true", "KmsMasterKeyId": ""}


def _common(step: Step, cls: PriorityClass, retention_s: int, key_arn: str | None) -> dict[str, str]:
    return {
        "ContentBasedDeduplication": "false",   # the pipeline sets dedup ids from the job id
        **sse_attributes(step, key_arn),
        "VisibilityTimeout": str(cls.visibility_timeout_s),
        "MessageRetentionPeriod": str(retention_s),
    }


def ensure_class_queues(step: Step, tenant_id: str, cls: PriorityClass, tags: dict[str, str],
                        key_arn: str | None = None) -> tuple[Queue, Queue]:
    """(queue, dlq) of one class; the queue redrives to the DLQ after the class's maxReceiveCount.

    ``key_arn`` is the tenant's KMS key, which encrypts both (see :func:`sse_attributes`).
    """
    cfg = step.cfg
    if not step.create:   # discovery: name both queues of the class when they are missing
        names = [cfg.queue_name(tenant_id, cls.name, dlq=True), cfg.queue_name(tenant_id, cls.name)]
        missing = [f"SQS queue {n}" for n in names if find_queue(step, n) is None]
        if missing:
            raise MissingResourceError(missing)
    dlq = _ensure(step, cfg.queue_name(tenant_id, cls.name, dlq=True),
                  _common(step, cls, cfg.queues.dlq_retention_s, key_arn), {**tags, "comfyfab:dlq": "true"})
    redrive = json.dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": cls.max_receive_count})
    queue = _ensure(step, cfg.queue_name(tenant_id, cls.name),
                    {**_common(step, cls, cfg.queues.message_retention_s, key_arn), "RedrivePolicy": redrive},
                    {**tags, "comfyfab:dlq": "false"})
    if step.create:
        # Only this class's queue may redrive into its DLQ.
        step.client("sqs").set_queue_attributes(QueueUrl=dlq.url, Attributes={"RedriveAllowPolicy": json.dumps(
            {"redrivePermission": "byQueue", "sourceQueueArns": [queue.arn]})})
    return queue, dlq
