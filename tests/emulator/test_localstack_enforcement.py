"""What LocalStack + DynamoDB Local enforce that the embedded moto server does not.

Each test can fail: the backend must refuse or keep something, not just accept
the call.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from comfyfab.cloud import Cloud
from comfyfab.emulator import LocalEmulators

pytestmark = pytest.mark.localstack


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def output_object(ls_cloud):
    s3 = ls_cloud.client("s3")
    bucket = f"comfyfab-t{_uid()}-outputs"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="job/1.png", Body=b"\x89PNG-bytes")
    return bucket, "job/1.png"


def test_presigned_get_is_accepted_before_expiry_and_refused_after(ls_cloud, output_object):
    bucket, key = output_object
    url = ls_cloud.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=2)
    signed_at = time.time()
    status, body = _get(url)
    assert (status, body) == (200, b"\x89PNG-bytes")
    time.sleep(max(0.0, signed_at + 3.5 - time.time()))
    status, body = _get(url)
    assert status == 403 and b"expired" in body


def test_presigned_url_with_a_forged_signature_is_refused(ls_cloud, output_object):
    bucket, key = output_object
    url = ls_cloud.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    head, sig = url.split("X-Amz-Signature=")
    forged = head + "X-Amz-Signature=" + ("0" if sig[0] != "0" else "1") + sig[1:]
    assert _get(forged)[0] == 403
    assert _get(url)[0] == 200


def test_a_presigned_url_for_another_key_does_not_open_this_one(ls_cloud, output_object):
    bucket, key = output_object
    url = ls_cloud.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "job/other.png"}, ExpiresIn=300)
    assert _get(url.replace("job/other.png", key))[0] == 403


@pytest.mark.parametrize("days", [90, 180])
def test_kms_rotation_period_is_kept(ls_cloud, fabric_config, days):
    kms = ls_cloud.client("kms")
    key = kms.create_key(Description=f"comfyfab tenant key {_uid()}")["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=days)
    status = kms.get_key_rotation_status(KeyId=key)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == days
    assert fabric_config.encryption.kms_rotation_days == 90


def test_cloudwatch_alarm_is_evaluated_and_notifies_sns(ls_cloud, fabric_config):
    cw, sns, sqs = (ls_cloud.client(s) for s in ("cloudwatch", "sns", "sqs"))
    uid = _uid()
    topic = sns.create_topic(Name=f"{fabric_config.alarm_topic_name()}-{uid}")["TopicArn"]
    sink = sqs.create_queue(QueueName=f"alarm-sink-{uid}")["QueueUrl"]
    sink_arn = sqs.get_queue_attributes(QueueUrl=sink, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sink_arn, Attributes={"RawMessageDelivery": "true"})
    name = f"dlq-depth-{uid}"
    cw.put_metric_alarm(
        AlarmName=name, Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": f"dlq-{uid}"}], Statistic="Maximum", Period=10,
        EvaluationPeriods=1, Threshold=fabric_config.monitoring.dlq_depth_threshold,
        ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic], TreatMissingData="notBreaching")
    cw.put_metric_data(Namespace="AWS/SQS", MetricData=[{
        "MetricName": "ApproximateNumberOfMessagesVisible", "Value": 1,
        "Dimensions": [{"Name": "QueueName", "Value": f"dlq-{uid}"}]}])
    deadline = time.monotonic() + 40
    state = "INSUFFICIENT_DATA"
    while state != "ALARM" and time.monotonic() < deadline:
        time.sleep(1)
        state = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]
    assert state == "ALARM"
    msgs = sqs.receive_message(QueueUrl=sink, WaitTimeSeconds=10).get("Messages", [])
    assert msgs and json.loads(msgs[0]["Body"])["AlarmName"] == name


def _jobs_table(ddb, fabric_config) -> str:
    table = f"{fabric_config.table_name()}-{_uid()}"
    ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("jobId", "tenantId", "createdAt")],
        KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "tenant-created",
            "KeySchema": [{"AttributeName": "tenantId", "KeyType": "HASH"},
                          {"AttributeName": "createdAt", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}])
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": fabric_config.jobs.ttl_attribute})
    return table


def _job(job_id: str, tenant: str, ttl: int) -> dict:
    return {"jobId": {"S": job_id}, "tenantId": {"S": tenant}, "createdAt": {"S": "2026-11-27T00:00:00Z"},
            "ttl": {"N": str(ttl)}}


def test_dynamodb_local_accepts_the_jobs_table(ls_cloud, fabric_config):
    ddb = ls_cloud.client("dynamodb")
    table = _jobs_table(ddb, fabric_config)
    desc = ddb.describe_table(TableName=table)["Table"]
    assert desc["KeySchema"] == [{"AttributeName": "jobId", "KeyType": "HASH"}]
    assert [g["IndexName"] for g in desc["GlobalSecondaryIndexes"]] == ["tenant-created"]
    assert ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    ttl = int(time.time() + fabric_config.jobs.ttl_hours * 3600)
    ddb.put_item(TableName=table, Item=_job("j-1", "acme-health", ttl))
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        ddb.put_item(TableName=table, Item=_job("j-1", "acme-health", ttl),
                     ConditionExpression="attribute_not_exists(jobId)")
    got = ddb.query(TableName=table, IndexName="tenant-created", KeyConditionExpression="tenantId = :t",
                    ExpressionAttributeValues={":t": {"S": "acme-health"}})
    assert [i["jobId"]["S"] for i in got["Items"]] == ["j-1"]


def test_dynamodb_local_deletes_expired_items(ls_cloud, fabric_config):
    """Unlike moto, DynamoDB Local's TTL sweeper removes expired items (within seconds, not AWS's 48 h)."""
    ddb = ls_cloud.client("dynamodb")
    table = _jobs_table(ddb, fabric_config)
    now = int(time.time())
    ddb.put_item(TableName=table, Item=_job("expired", "t", now - 60))
    ddb.put_item(TableName=table, Item=_job("live", "t", now + 3600))
    deadline = time.monotonic() + 120  # the sweeper runs periodically; slower on a loaded machine
    while "Item" in ddb.get_item(TableName=table, Key={"jobId": {"S": "expired"}}) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "Item" not in ddb.get_item(TableName=table, Key={"jobId": {"S": "expired"}})
    assert "Item" in ddb.get_item(TableName=table, Key={"jobId": {"S": "live"}})


def test_dynamodb_local_gaps_are_as_documented(ls_cloud, fabric_config):
    """DynamoDB Local ignores SSE and has no PITR; emulators/README.md says so. Fails when that changes."""
    ddb = ls_cloud.client("dynamodb")
    table = f"{fabric_config.table_name()}-sse-{_uid()}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
                     SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": "alias/comfyfab/t"})
    assert "SSEDescription" not in ddb.describe_table(TableName=table)["Table"]
    with pytest.raises(ClientError) as exc:
        ddb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})
    assert exc.value.response["Error"]["Code"] == "UnknownOperationException"


def _send_receive_delete_and_send_again(sqs, dedup: str) -> list[str]:
    """One FIFO message received and deleted, then a second sent with its deduplication id: what arrives."""
    url = sqs.create_queue(QueueName=f"comfyfab-t{_uid()}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="first", MessageGroupId="g", MessageDeduplicationId=dedup)
    (m,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert sqs.send_message(QueueUrl=url, MessageBody="again", MessageGroupId="g",
                            MessageDeduplicationId=dedup)["MessageId"]  # accepted either way, as on AWS
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", [])
    return [x["Body"] for x in got]


def test_fifo_deduplication_outlives_the_delete_of_its_message(ls_cloud):
    # SQS drops a second message with the same deduplication id for 5 minutes, deleted or not.
    # moto forgets the id with the message (tests/comfyfab/test_moto_fast.py): the job store's conditional write is
    # what keeps a resubmitted job from running twice there (tests/pipeline).
    assert _send_receive_delete_and_send_again(ls_cloud.client("sqs"), "job-1") == []


def test_up_again_reuses_the_running_emulators(localstack_emulators, localstack_backend):
    again = LocalEmulators(localstack_emulators.state_dir, gateway_port=0, dynamodb_port=0).up()
    assert again == localstack_backend
    assert Cloud(again).client("sts").get_caller_identity()["Account"] == "000000000000"
