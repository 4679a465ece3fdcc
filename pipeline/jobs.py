"""Layer 2, the job table: job records in DynamoDB with a 72 h TTL.

Every state change is a conditional write, so the record is the arbiter of
"exactly one output per jobId": a resubmitted jobId is refused at creation,
and a redelivered message for a job that already succeeded is recognised by
the worker and dropped.

    queued --> running --> succeeded
                  |  ^
                  v  |  (attempt failed, message reappears)
                failed   (after max_receive_count attempts; message goes to the DLQ)
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Iterable

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from comfyfab.cloud import Cloud

from .models import JobRecord, JobStatus, iso, utcnow

_ser = TypeSerializer()
_de = TypeDeserializer()


class JobStoreError(RuntimeError):
    """The job table refused or failed an operation."""


class JobExists(JobStoreError):
    """A record with this jobId already exists."""

    def __init__(self, record: JobRecord):
        super().__init__(f"job {record.jobId} exists")
        self.record = record


def _to_item(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, list) and not v:
            continue
        out[k] = _ser.serialize(v)
    return out


def _from_item(item: dict[str, Any]) -> JobRecord:
    d = {k: _de.deserialize(v) for k, v in item.items()}
    for k, v in list(d.items()):
        if isinstance(v, Decimal):
            d[k] = int(v)
        elif isinstance(v, list):
            d[k] = tuple(int(x) if isinstance(x, Decimal) else x for x in v)
    return JobRecord.model_validate(d)


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class JobStore:
    """Reads and writes job records; every transition is conditional."""

    def __init__(self, cloud: Cloud, table_name: str):
        self._ddb = cloud.client("dynamodb")
        self.table = table_name

    # -- creation --------------------------------------------------------
    def create(self, record: JobRecord) -> JobRecord:
        """Insert a new record; raise :class:`JobExists` (with the stored record) on a repeat jobId."""
        try:
            self._ddb.put_item(TableName=self.table, Item=_to_item(record.model_dump(mode="json")),
                               ConditionExpression="attribute_not_exists(jobId)")
            return record
        except ClientError as exc:
            if _conditional_failed(exc):
                existing = self.get(record.jobId)
                if existing is None:  # deleted in between; extremely unlikely, report it plainly
                    raise JobStoreError(f"job {record.jobId} vanished during creation") from None
                raise JobExists(existing) from None
            raise

    def delete(self, job_id: str) -> None:
        self._ddb.delete_item(TableName=self.table, Key={"jobId": {"S": job_id}})

    # -- reads -----------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        item = self._ddb.get_item(TableName=self.table, Key={"jobId": {"S": job_id}}, ConsistentRead=True).get("Item")
        return _from_item(item) if item else None

    def scan_all(self) -> list[JobRecord]:
        out: list[JobRecord] = []
        kwargs: dict[str, Any] = {"TableName": self.table}
        while True:
            page = self._ddb.scan(**kwargs)
            out.extend(_from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- transitions -----------------------------------------------------
    def _update(self, job_id: str, sets: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
        sets = {**sets, "updatedAt": iso(utcnow())}
        names = {f"#{k}": k for k in sets}
        vals = {f":{k}": _ser.serialize(list(v) if isinstance(v, tuple) else v) for k, v in sets.items()}
        vals.update({k: _ser.serialize(v) for k, v in values.items()})
        names.update({f"#{n}": n for n in re.findall(r"#(\w+)", condition)})
        try:
            self._ddb.update_item(
                TableName=self.table, Key={"jobId": {"S": job_id}},
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in sets),
                ConditionExpression=condition, ExpressionAttributeNames=names, ExpressionAttributeValues=vals)
            return True
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise

    def start(self, job_id: str, worker: str, attempt: int) -> bool:
        """queued|running → running. False when the job is already finished (or unknown)."""
        return self._update(job_id, {"status": JobStatus.RUNNING.value, "worker": worker, "attempts": attempt,
                                     "startedAt": iso(utcnow())},
                            "attribute_exists(jobId) AND #status IN (:q, :r)",
                            {":q": JobStatus.QUEUED.value, ":r": JobStatus.RUNNING.value})

    def succeed(self, job_id: str, worker: str, outputs: Iterable[str], kms_key_id: str) -> bool:
        """running (by this worker) → succeeded."""
        return self._update(job_id, {"status": JobStatus.SUCCEEDED.value, "outputs": tuple(outputs),
                                     "kmsKeyId": kms_key_id, "finishedAt": iso(utcnow())},
                            "#status = :r AND #worker = :w",
                            {":r": JobStatus.RUNNING.value, ":w": worker})

    def attempt_failed(self, job_id: str, reason: str, final: bool) -> bool:
        """Record a failed attempt; ``final`` marks the job failed (its message goes to the DLQ)."""
        sets: dict[str, Any] = {"error": reason[:1000]}
        if final:
            sets.update(status=JobStatus.FAILED.value, finishedAt=iso(utcnow()))
        return self._update(job_id, sets, "#status IN (:q, :r)",
                            {":q": JobStatus.QUEUED.value, ":r": JobStatus.RUNNING.value})
