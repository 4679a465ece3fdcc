"""FIFO queues and DLQs, the alarm topic and the CloudWatch alarms, read back through the API."""
from __future__ import annotations

import json

from pipeline.provision.names import FABRIC_TAG, TENANT_TAG


def test_three_fifo_queues_and_dlqs_per_tenant_with_the_class_settings(fabric):
    sqs = fabric.cloud.client("sqs")
    cfg = fabric.cfg
    seen = set()
    for t in cfg.tenants:
        tr = fabric.res.tenants[t.id]
        assert set(tr.queue_urls) == set(tr.dlq_urls) == {"realtime", "standard", "batch"}
        for cls in cfg.queues.classes:
            q = sqs.get_queue_attributes(QueueUrl=tr.queue_urls[cls.name], AttributeNames=["All"])["Attributes"]
            d = sqs.get_queue_attributes(QueueUrl=tr.dlq_urls[cls.name], AttributeNames=["All"])["Attributes"]
            assert tr.queue_urls[cls.name].endswith(cfg.queue_name(t.id, cls.name))
            assert tr.dlq_urls[cls.name].endswith(cfg.queue_name(t.id, cls.name, dlq=True))
            for attrs in (q, d):
                assert attrs["FifoQueue"] == "true"
                assert attrs["ContentBasedDeduplication"] == "false"
                # SSE-KMS under the tenant's own key (encryption.queue_key: tenant), not SQS's key
                assert attrs["KmsMasterKeyId"] == tr.key_arn
                assert attrs["KmsDataKeyReusePeriodSeconds"] == str(cfg.encryption.queue_data_key_reuse_s)
                assert attrs.get("SqsManagedSseEnabled", "false") == "false"
                assert attrs["VisibilityTimeout"] == str(cls.visibility_timeout_s)
            assert q["QueueArn"] == tr.queue_arns[cls.name] and d["QueueArn"] == tr.dlq_arns[cls.name]
            assert q["MessageRetentionPeriod"] == str(cfg.queues.message_retention_s)
            assert d["MessageRetentionPeriod"] == str(cfg.queues.dlq_retention_s)
            redrive = json.loads(q["RedrivePolicy"])
            assert redrive == {"deadLetterTargetArn": tr.dlq_arns[cls.name], "maxReceiveCount": cls.max_receive_count}
            # moto 5.2 accepts RedriveAllowPolicy but does not return it: check what was sent, and the echo if any.
            want = {"redrivePermission": "byQueue", "sourceQueueArns": [tr.queue_arns[cls.name]]}
            sent = [json.loads(c["Attributes"]["RedriveAllowPolicy"]) for c in fabric.calls["SetQueueAttributes"]
                    if c["QueueUrl"] == tr.dlq_urls[cls.name] and "RedriveAllowPolicy" in c["Attributes"]]
            assert sent and all(x == want for x in sent)
            assert json.loads(d.get("RedriveAllowPolicy", json.dumps(want))) == want
            assert "RedrivePolicy" not in d
            tags = sqs.list_queue_tags(QueueUrl=tr.queue_urls[cls.name])["Tags"]
            assert tags[TENANT_TAG] == t.id and tags[FABRIC_TAG] == cfg.name and tags["comfyfab:class"] == cls.name
            seen |= {tr.queue_urls[cls.name], tr.dlq_urls[cls.name]}
    assert len(seen) == 6 * len(cfg.tenants)


def test_a_message_received_max_receive_count_times_moves_to_the_dlq(fabric):
    sqs = fabric.cloud.client("sqs")
    tr = next(iter(fabric.res.tenants.values()))
    cls = fabric.cfg.queues.cls("realtime")
    sqs.send_message(QueueUrl=tr.queue_urls["realtime"], MessageBody="job", MessageGroupId="g",
                     MessageDeduplicationId="d1")
    for _ in range(cls.max_receive_count):
        got = sqs.receive_message(QueueUrl=tr.queue_urls["realtime"], VisibilityTimeout=0)["Messages"]
        assert got[0]["Body"] == "job"
    assert "Messages" not in sqs.receive_message(QueueUrl=tr.queue_urls["realtime"])
    dead = sqs.receive_message(QueueUrl=tr.dlq_urls["realtime"])["Messages"]
    assert dead[0]["Body"] == "job"


def test_alarm_topic_exists_and_is_tagged(fabric):
    sns = fabric.cloud.client("sns")
    arn = fabric.res.alarm_topic_arn
    assert arn.endswith(":" + fabric.cfg.alarm_topic_name())
    tags = {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=arn)["Tags"]}
    assert tags[FABRIC_TAG] == fabric.cfg.name and TENANT_TAG not in tags


def test_dlq_depth_and_gpu_memory_alarms_per_tenant_notify_the_topic(fabric):
    cw = fabric.cloud.client("cloudwatch")
    cfg, mon = fabric.cfg, fabric.cfg.monitoring
    for t in cfg.tenants:
        tr = fabric.res.tenants[t.id]
        alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=list(tr.alarm_names))["MetricAlarms"]}
        assert set(alarms) == set(tr.alarm_names) and len(alarms) == len(cfg.queues.classes) + 1
        dlq_alarms = [a for a in alarms.values() if a["Namespace"] == "AWS/SQS"]
        assert {a["Dimensions"][0]["Value"] for a in dlq_alarms} == {
            cfg.queue_name(t.id, c.name, dlq=True) for c in cfg.queues.classes}
        for a in dlq_alarms:
            assert a["MetricName"] == "ApproximateNumberOfMessagesVisible"
            assert a["Dimensions"][0]["Name"] == "QueueName"
            assert (a["ComparisonOperator"], a["Threshold"]) == ("GreaterThanThreshold", mon.dlq_depth_threshold)
            assert a["AlarmActions"] == [fabric.res.alarm_topic_arn]
        (gpu,) = [a for a in alarms.values() if a["Namespace"] == mon.gpu_metric_namespace]
        assert gpu["MetricName"] == mon.gpu_metric_name
        assert gpu["Dimensions"] == [{"Name": "TenantId", "Value": t.id}]
        assert (gpu["ComparisonOperator"], gpu["Threshold"]) == ("GreaterThanThreshold", mon.gpu_memory_threshold_pct)
        # above the threshold for the whole window: the window's minimum is above it
        assert (gpu["Statistic"], gpu["Period"] * gpu["EvaluationPeriods"]) == ("Minimum", mon.gpu_memory_period_s)
        assert gpu["AlarmActions"] == [fabric.res.alarm_topic_arn]
        arn = gpu["AlarmArn"]
        tags = {x["Key"]: x["Value"] for x in cw.list_tags_for_resource(ResourceARN=arn)["Tags"]}
        assert tags[TENANT_TAG] == t.id
