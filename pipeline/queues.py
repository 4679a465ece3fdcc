"""Layer 2, the priority queues: three SQS FIFO queues per tenant, each with a DLQ.

FIFO done right for a worker pool.  SQS FIFO delivers one message group in
order, one in-flight batch at a time, so putting a tenant's jobs in a single
group would serialise the whole pool.  Jobs are instead spread over
``cfg.queues.message_groups`` groups by a hash of the jobId; N workers then
drain a queue in parallel while a job's own redeliveries stay in its group.
The deduplication id is the jobId, so a resubmission inside SQS's 5-minute
window is dropped by SQS itself (the job table refuses it at any time).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

from comfyfab.cloud import Cloud
from comfyfab.config import PRIORITY_ORDER, FabricConfig


@dataclass(frozen=True)
class Delivery:
    """One received message: the job body plus what SQS says about the delivery."""

    tenant_id: str
    priority: str
    receipt: str
    body: dict[str, Any]
    receive_count: int
    message_id: str

    @property
    def job_id(self) -> str:
        return self.body["jobId"]


def message_group_index(job_id: str, groups: int) -> int:
    """Which of ``groups`` FIFO message groups a job id hashes to (the simulator models the same)."""
    return int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % groups


def message_group(job_id: str, groups: int) -> str:
    return f"g{message_group_index(job_id, groups):04d}"


class JobQueues:
    """Sends, receives, extends, releases and deletes job messages."""

    def __init__(self, cloud: Cloud, cfg: FabricConfig,
                 urls: Mapping[tuple[str, str], str], dlq_urls: Mapping[tuple[str, str], str]):
        self._sqs = cloud.client("sqs")
        self.cfg = cfg
        self.urls = dict(urls)
        self.dlq_urls = dict(dlq_urls)
        missing = [(t.id, c) for t in cfg.tenants for c in PRIORITY_ORDER if (t.id, c) not in self.urls]
        if missing:
            raise ValueError(f"no queue URL for {missing}")

    @classmethod
    def from_resources(cls, cloud: Cloud, cfg: FabricConfig, resources: Any) -> "JobQueues":
        urls = {(t, c): u for t, tr in resources.tenants.items() for c, u in tr.queue_urls.items()}
        dlqs = {(t, c): u for t, tr in resources.tenants.items() for c, u in tr.dlq_urls.items()}
        return cls(cloud, cfg, urls, dlqs)

    def send(self, tenant_id: str, priority: str, body: dict[str, Any]) -> str:
        job_id = body["jobId"]
        resp = self._sqs.send_message(
            QueueUrl=self.urls[(tenant_id, priority)], MessageBody=json.dumps(body, separators=(",", ":")),
            MessageGroupId=message_group(job_id, self.cfg.queues.message_groups),
            MessageDeduplicationId=job_id)
        return resp["MessageId"]

    def receive(self, tenant_id: str, priority: str, max_messages: int = 1, wait_s: int = 0) -> list[Delivery]:
        resp = self._sqs.receive_message(
            QueueUrl=self.urls[(tenant_id, priority)], MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_s, MessageSystemAttributeNames=["ApproximateReceiveCount"])
        out = []
        for m in resp.get("Messages", []):
            out.append(Delivery(tenant_id=tenant_id, priority=priority, receipt=m["ReceiptHandle"],
                                body=json.loads(m["Body"]), message_id=m["MessageId"],
                                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))))
        return out

    def extend(self, d: Delivery, seconds: int) -> None:
        self._sqs.change_message_visibility(QueueUrl=self.urls[(d.tenant_id, d.priority)],
                                            ReceiptHandle=d.receipt, VisibilityTimeout=seconds)

    def release(self, d: Delivery) -> None:
        """Make the message visible again now (a failed or abandoned attempt)."""
        self.extend(d, 0)

    def delete(self, d: Delivery) -> None:
        self._sqs.delete_message(QueueUrl=self.urls[(d.tenant_id, d.priority)], ReceiptHandle=d.receipt)

    def _counts(self, url: str) -> tuple[int, int]:
        """(visible, in flight) of one queue, in one GetQueueAttributes call."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return int(attrs.get(names[0], 0)), int(attrs.get(names[1], 0))

    def _count(self, url: str, in_flight: bool = False) -> int:
        visible, held = self._counts(url)
        return visible + held if in_flight else visible

    def depth(self, tenant_id: str, priority: str, in_flight: bool = False) -> int:
        return self._count(self.urls[(tenant_id, priority)], in_flight)

    def depths(self, tenant_id: str) -> dict[str, int]:
        return {c: visible for c, (visible, _) in self.counts(tenant_id).items()}

    def counts(self, tenant_id: str) -> dict[str, tuple[int, int]]:
        """Per class, (visible, in flight).  A message in flight is one a worker holds, so their sum is
        how many workers are busy."""
        return {c: self._counts(self.urls[(tenant_id, c)]) for c in PRIORITY_ORDER}

    def dlq_depth(self, tenant_id: str, priority: str) -> int:
        return self._count(self.dlq_urls[(tenant_id, priority)], in_flight=True)

    def dlq_messages(self, tenant_id: str, priority: str, wait_s: float = 0.0,
                     until: str | None = None) -> list[dict[str, Any]]:
        """Peek at DLQ bodies, leaving every message in place.

        Walks the queue: each receive holds what it got out of sight, so the next
        one returns further messages, until a receive comes back empty; then all
        are made visible again.  With ``until`` (a job id), walks again until that
        job's message is there or ``wait_s`` has passed: a job whose record says
        failed reaches the DLQ only on the next receive of its source queue.
        """
        url = self.dlq_urls[(tenant_id, priority)]
        deadline = time.monotonic() + wait_s
        while True:
            seen = self._walk(url)
            bodies = [json.loads(m["Body"]) for m in seen]
            found = bool(bodies) if until is None else until in {b.get("jobId") for b in bodies}
            if found or time.monotonic() >= deadline:
                return bodies
            time.sleep(0.1)

    def _walk(self, url: str) -> list[dict[str, Any]]:
        held: list[dict[str, Any]] = []
        try:
            while True:
                msgs = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                 VisibilityTimeout=30).get("Messages", [])
                if not msgs:
                    return held
                held.extend(msgs)
        finally:
            for m in held:
                self._sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                                    VisibilityTimeout=0)
