"""CloudWatch Logs groups, the SNS alarm topic and the CloudWatch alarms."""

from __future__ import annotations

from botocore.exceptions import ClientError

from .context import Step, error_code
from .errors import ProvisioningError
from .names import dlq_alarm_name, gpu_alarm_name, tag_list


def ensure_log_group(step: Step, name: str, retention_days: int, tags: dict[str, str],
                     key_arn: str | None = None) -> str:
    """The log group ``name`` with its retention, encrypted under ``key_arn`` when given; returns its ARN
    (without the ``:*`` suffix).  The key's policy must let CloudWatch Logs use it for this group
    (:func:`pipeline.provision.kms.logs_grants`)."""
    logs = step.client("logs")
    found = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    if not found:
        if not step.create:
            raise step.absent(f"CloudWatch Logs group {name}")
        step.say(f"creating log group {name}")
        try:
            logs.create_log_group(logGroupName=name, tags=tags, **({"kmsKeyId": key_arn} if key_arn else {}))
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":   # created concurrently: fine
                raise
    elif step.create and key_arn and found[0].get("kmsKeyId") != key_arn:
        _encrypt_existing_group(step, name, key_arn)
    if step.create:
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)
        logs.tag_log_group(logGroupName=name, tags=tags)
    return step.arn("logs", f"log-group:{name}")


def _encrypt_existing_group(step: Step, name: str, key_arn: str) -> None:
    """Put a group created without the key (by an earlier version) under it, where the backend can."""
    if step.cloud.spec.kind == "embedded":   # moto 5.2 lacks AssociateKmsKey (it answers a bare 500)
        step.not_supported(f"logs:AssociateKmsKey {name}", "not in moto")
        return
    step.say(f"encrypting log group {name} under its key")
    try:
        step.client("logs").associate_kms_key(logGroupName=name, kmsKeyId=key_arn)
    except ClientError as exc:
        if not _unimplemented(exc):
            raise
        step.not_supported(f"logs:AssociateKmsKey {name}", exc)


def _unimplemented(exc: ClientError) -> bool:
    """The backend lacks the operation: 501 (LocalStack's open-source edition), or a 'not implemented' error."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 501 or error_code(exc) in ("NotImplemented", "NotImplementedError")


def trail_name(step: Step) -> str:
    return f"{step.cfg.name}-audit"


def trail_arn(step: Step) -> str:
    """The audit trail's ARN, known before the trail exists (the bucket and key policies name it)."""
    return step.arn("cloudtrail", f"trail/{trail_name(step)}")


def ensure_topic(step: Step, tags: dict[str, str], key_arn: str | None = None) -> str:
    """The alarm topic, encrypted under ``key_arn`` when given (whose policy must let CloudWatch
    publish: :func:`pipeline.provision.kms.alarm_grants`); CreateTopic is idempotent by name,
    discovery lists topics instead."""
    sns = step.client("sns")
    name = step.cfg.alarm_topic_name()
    if step.create:
        # Tags and the key go on separately: CreateTopic on an existing topic refuses attributes
        # and tags that differ from its own.
        arn = sns.create_topic(Name=name)["TopicArn"]
        sns.tag_resource(ResourceArn=arn, Tags=tag_list(tags))
        if key_arn and sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("KmsMasterKeyId") != key_arn:
            sns.set_topic_attributes(TopicArn=arn, AttributeName="KmsMasterKeyId", AttributeValue=key_arn)
        return arn
    paginator = sns.get_paginator("list_topics")
    for page in paginator.paginate():
        for t in page["Topics"]:
            if t["TopicArn"].rsplit(":", 1)[-1] == name:
                return t["TopicArn"]
    raise step.absent(f"SNS topic {name}")


def _alarms(step: Step, tenant_id: str, topic_arn: str) -> list[dict]:
    cfg = step.cfg
    mon = cfg.monitoring
    alarms = []
    for cls in cfg.queues.classes:
        dlq = cfg.queue_name(tenant_id, cls.name, dlq=True)
        alarms.append(dict(
            AlarmName=dlq_alarm_name(cfg, tenant_id, cls.name),
            AlarmDescription=f"{tenant_id}: messages in the {cls.name} dead-letter queue {dlq}",
            Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[{"Name": "QueueName", "Value": dlq}],
            Statistic="Maximum", Period=mon.dlq_period_s, EvaluationPeriods=1,
            Threshold=float(mon.dlq_depth_threshold), ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching", AlarmActions=[topic_arn], OKActions=[topic_arn]))
    # "Above the threshold for the whole period": the period's Minimum is above it.
    alarms.append(dict(
        AlarmName=gpu_alarm_name(cfg, tenant_id),
        AlarmDescription=(f"{tenant_id}: GPU memory above {mon.gpu_memory_threshold_pct:g} % "
                          f"for {mon.gpu_memory_period_s} s"),
        Namespace=mon.gpu_metric_namespace, MetricName=mon.gpu_metric_name,
        Dimensions=[{"Name": "TenantId", "Value": tenant_id}],
        Statistic="Minimum", Period=mon.gpu_memory_period_s, EvaluationPeriods=1,
        Threshold=float(mon.gpu_memory_threshold_pct), ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching", AlarmActions=[topic_arn], OKActions=[topic_arn]))
    return alarms


def ensure_alarms(step: Step, tenant_id: str, topic_arn: str | None, tags: dict[str, str]) -> tuple[str, ...]:
    """The tenant's DLQ-depth alarms (one per class) and its GPU-memory alarm; returns their names.

    ``topic_arn`` (the alarm action) is needed only to create; discovery may pass None.
    """
    cw = step.client("cloudwatch")
    specs = _alarms(step, tenant_id, topic_arn or "")
    names = [a["AlarmName"] for a in specs]
    if step.create:
        if not topic_arn:
            raise ProvisioningError(f"alarms of {tenant_id}: no SNS topic to notify")
        for spec in specs:
            cw.put_metric_alarm(**spec, Tags=tag_list(tags))
            # PutMetricAlarm ignores Tags when it updates an existing alarm.
            cw.tag_resource(ResourceARN=step.arn("cloudwatch", f"alarm:{spec['AlarmName']}"), Tags=tag_list(tags))
    else:
        found = {a["AlarmName"] for a in cw.describe_alarms(AlarmNames=names)["MetricAlarms"]}
        missing = [n for n in names if n not in found]
        if missing:
            raise step.absent(f"CloudWatch alarms {', '.join(missing)}")
    return tuple(names)


def ensure_trail(step: Step, bucket: str, key_arn: str, tags: dict[str, str]) -> str:
    """A multi-region, log-file-validated CloudTrail trail delivering into the audit bucket; returns its ARN
    ("" on a backend without CloudTrail).

    Role assumptions and every other management event land in the Object-Locked
    audit bucket (CC6.1's "logged to CloudTrail with immutable storage").
    """
    ct = step.client("cloudtrail")
    name = trail_name(step)
    try:
        listed = ct.describe_trails(trailNameList=[name]).get("trailList", [])
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 501:
            raise
        # LocalStack's open-source edition has no CloudTrail: named, and the scan reports the trail missing.
        step.not_supported(f"cloudtrail:CreateTrail {name}", exc)
        return ""
    found = [t for t in listed if t["Name"] == name]
    if not found:
        if not step.create:
            raise step.absent(f"CloudTrail trail {name}")
        step.say(f"creating CloudTrail trail {name}")
        arn = ct.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=True,
                              EnableLogFileValidation=True, KmsKeyId=key_arn,
                              TagsList=tag_list(tags))["TrailARN"]
    else:
        arn = found[0]["TrailARN"]
        if step.create and (found[0].get("S3BucketName") != bucket or not found[0].get("IsMultiRegionTrail")
                            or not found[0].get("LogFileValidationEnabled")):
            step.say(f"repairing CloudTrail trail {name}")
            ct.update_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=True, EnableLogFileValidation=True,
                            KmsKeyId=key_arn)
    if step.create and not ct.get_trail_status(Name=arn).get("IsLogging"):
        ct.start_logging(Name=arn)
    return arn
