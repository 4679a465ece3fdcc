"""DynamoDB: the shared jobs table (TTL, KMS encryption, point-in-time recovery)."""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from .context import Step, error_code
from .errors import ProvisioningError
from .kms import Key
from .names import tag_list

TENANT_INDEX = "tenant-created"
UNKNOWN_OPERATION = "UnknownOperationException"
PITR_ATTEMPTS = 30
PITR_RETRY_S = 2.0


def _describe(step: Step, name: str) -> dict | None:
    try:
        return step.client("dynamodb").describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def ensure_jobs_table(step: Step, key: Key | None, tags: dict[str, str]) -> str:
    """The jobs table keyed by ``jobId``, with index ``tenant-created`` (tenantId, createdAt); returns its ARN.

    ``key`` (the table's KMS key) is needed only to create; discovery may pass None.
    """
    cfg = step.cfg
    ddb = step.client("dynamodb")
    name = cfg.table_name()
    table = _describe(step, name)
    if table is None:
        if not step.create:
            raise step.absent(f"DynamoDB table {name}")
        if key is None:
            raise ProvisioningError(f"DynamoDB table {name}: no KMS key to create it with")
        step.say(f"creating DynamoDB table {name}")
        table = ddb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"},
                                  {"AttributeName": "tenantId", "AttributeType": "S"},
                                  {"AttributeName": "createdAt", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[{
                "IndexName": TENANT_INDEX,
                "KeySchema": [{"AttributeName": "tenantId", "KeyType": "HASH"},
                              {"AttributeName": "createdAt", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"}}],
            SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key.arn},
            Tags=tag_list(tags),
        )["TableDescription"]
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    if step.create:
        _converge(step, name, table["TableArn"], tags)
    return table["TableArn"]


def _update_pitr(step: Step, name: str, enabled: bool, retry_wait_s: float) -> None:
    """AWS answers ContinuousBackupsUnavailableException for a while after a table is created."""
    ddb = step.client("dynamodb")
    for attempt in range(PITR_ATTEMPTS):
        try:
            ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": enabled})
            return
        except ClientError as exc:
            if error_code(exc) != "ContinuousBackupsUnavailableException" or attempt == PITR_ATTEMPTS - 1:
                raise
            time.sleep(retry_wait_s)


def _converge(step: Step, name: str, arn: str, tags: dict[str, str], retry_wait_s: float = PITR_RETRY_S) -> None:
    ddb = step.client("dynamodb")
    attr = step.cfg.jobs.ttl_attribute
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or ttl.get("AttributeName") != attr:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attr})
    # DynamoDB Local (the LocalStack backend's table store) implements neither PITR nor tagging.
    try:
        _update_pitr(step, name, step.cfg.jobs.point_in_time_recovery, retry_wait_s)
    except ClientError as exc:
        if error_code(exc) != UNKNOWN_OPERATION:
            raise
        step.not_supported(f"dynamodb:UpdateContinuousBackups {name}", exc)
    try:
        ddb.tag_resource(ResourceArn=arn, Tags=tag_list(tags))
    except ClientError as exc:
        if error_code(exc) != UNKNOWN_OPERATION:
            raise
        step.not_supported(f"dynamodb:TagResource {name}", exc)
