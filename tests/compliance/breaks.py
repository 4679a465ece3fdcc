"""One break per check: change exactly one property of a provisioned fabric through the AWS API.

Each :class:`Break` names the check it must fail, how to break the property
(AWS calls, or a config override for the config-level checks), how to put it
back cheaply, and a fragment of the resource that must be the one failing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from compliance.checks.s3._policy import denies_insecure_transport, denies_unencrypted_put, statements

DDB_LOCAL = {"localstack": "DynamoDB Local implements neither SSE nor PITR (compliance/BACKENDS.md)"}


@dataclass(frozen=True)
class Break:
    """How to break (and repair) the one property a check guards."""

    check: str
    apply: Callable[[Any], Any] | None = None
    repair: Callable[[Any, Any], None] | None = None
    resource: Callable[[Any], str] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    reprovision: bool = False          # repair by running provision() again (it converges)
    unsupported: dict[str, str] = field(default_factory=dict)   # backend -> why the property is not there

    def __str__(self) -> str:
        return self.check


def _t(fab, i=0):
    return fab.tenant(i)


def _c(fab, svc):
    return fab.cloud.client(svc)


def _sqs_set(fab, url, **attrs):
    _c(fab, "sqs").set_queue_attributes(QueueUrl=url, Attributes={k: str(v) for k, v in attrs.items()})


def _sqs_get(fab, url, name):
    return _c(fab, "sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"][name]


def _policy_without(pred):
    def apply(fab):
        s3, b = _c(fab, "s3"), _t(fab).bucket
        original = s3.get_bucket_policy(Bucket=b)["Policy"]
        doc = json.loads(original)
        doc["Statement"] = [s for s in statements(doc) if not pred(s)]
        s3.put_bucket_policy(Bucket=b, Policy=json.dumps(doc))
        return original

    def repair(fab, original):
        _c(fab, "s3").put_bucket_policy(Bucket=_t(fab).bucket, Policy=original)
    return apply, repair


def _pab(fab, on: bool):
    _c(fab, "s3").put_public_access_block(Bucket=_t(fab).bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": on, "RestrictPublicBuckets": True})


def _sse(fab, key_arn):
    _c(fab, "s3").put_bucket_encryption(Bucket=_t(fab).bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True}]})


def _lock(fab, days):
    _c(fab, "s3").put_object_lock_configuration(Bucket=fab.res.audit_bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": fab.cfg.audit.object_lock_mode,
                                                                      "Days": days}}})


def _extra_key(fab):
    tid = _t(fab).tenant_id
    return _c(fab, "kms").create_key(Tags=[{"TagKey": "comfyfab:fabric", "TagValue": fab.cfg.name},
                                           {"TagKey": "comfyfab:tenant", "TagValue": tid}])["KeyMetadata"]["KeyId"]


def _drop_extra_key(fab, key_id):
    kms = _c(fab, "kms")
    kms.untag_resource(KeyId=key_id, TagKeys=["comfyfab:fabric", "comfyfab:tenant"])
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)


def _rotation_period(fab, days):
    kms, key = _c(fab, "kms"), _t(fab).key_id
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=days)
    # Where the backend does not report the period, the declared tag is what the check can judge.
    kms.tag_resource(KeyId=key, Tags=[{"TagKey": "comfyfab:rotation-days", "TagValue": str(days)}])


def _table_without_cmk(fab):
    ddb, name = _c(fab, "dynamodb"), fab.res.table_name
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}])
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": fab.cfg.jobs.ttl_attribute})
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})


def _drop_table(fab, _):
    ddb, name = _c(fab, "dynamodb"), fab.res.table_name
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def _peer_outsider(fab):
    """Peer the tenant VPC with a VPC outside the fabric (another tenant's would do the same)."""
    ec2 = _c(fab, "ec2")
    other = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
    pcx = ec2.create_vpc_peering_connection(VpcId=_t(fab).vpc_id, PeerVpcId=other)[
        "VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    return pcx, other


def _unpeer(fab, token):
    pcx, other = token
    ec2 = _c(fab, "ec2")
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    ec2.delete_vpc(VpcId=other)


def _ingress(fab, group, cidr, port, grant: bool):
    ec2 = _c(fab, "ec2")
    fn = ec2.authorize_security_group_ingress if grant else ec2.revoke_security_group_ingress
    fn(GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                                      "IpRanges": [{"CidrIp": cidr}]}])


def _nacl_allow_all(fab, add: bool):
    ec2, nacl = _c(fab, "ec2"), _t(fab).nacl_id
    if add:
        ec2.create_network_acl_entry(NetworkAclId=nacl, RuleNumber=1, Egress=True, Protocol="-1",
                                     RuleAction="allow", CidrBlock="0.0.0.0/0")
    else:
        ec2.delete_network_acl_entry(NetworkAclId=nacl, RuleNumber=1, Egress=True)


def _alarm(fab, suffix):
    return next(n for n in _t(fab).alarm_names if n.endswith(suffix))


def _actions(fab, name, on: bool):
    cw = _c(fab, "cloudwatch")
    (cw.enable_alarm_actions if on else cw.disable_alarm_actions)(AlarmNames=[name])


def _role_name(fab):
    return _t(fab).worker_role_arn.rsplit("/", 1)[-1]


def _wildcard_policy(fab):
    _c(fab, "iam").put_role_policy(RoleName=_role_name(fab), PolicyName="too-broad", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))


def _user_with_key(fab):
    iam = _c(fab, "iam")
    iam.create_user(UserName="legacy-operator")
    return iam.create_access_key(UserName="legacy-operator")["AccessKey"]["AccessKeyId"]


def _drop_user(fab, key_id):
    iam = _c(fab, "iam")
    iam.delete_access_key(UserName="legacy-operator", AccessKeyId=key_id)
    iam.delete_user(UserName="legacy-operator")


def _max_session(fab, seconds):
    _c(fab, "iam").update_role(RoleName=_role_name(fab), MaxSessionDuration=seconds)


def _retention(fab, group, days):
    _c(fab, "logs").put_retention_policy(logGroupName=group, retentionInDays=days)


def _group_without_key(fab):
    """Re-create the tenant's flow-log group under CloudWatch Logs' own key (moto has no DisassociateKmsKey)."""
    logs, name = _c(fab, "logs"), fab.cfg.flow_log_group(_t(fab).tenant_id)
    [g] = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    tags = logs.list_tags_log_group(logGroupName=name).get("tags", {})
    logs.delete_log_group(logGroupName=name)
    logs.create_log_group(logGroupName=name, tags=tags)
    logs.put_retention_policy(logGroupName=name, retentionInDays=g["retentionInDays"])
    return g, tags


def _group_with_key(fab, saved):
    g, tags = saved
    logs = _c(fab, "logs")
    logs.delete_log_group(logGroupName=g["logGroupName"])
    logs.create_log_group(logGroupName=g["logGroupName"], tags=tags, kmsKeyId=g["kmsKeyId"])
    logs.put_retention_policy(logGroupName=g["logGroupName"], retentionInDays=g["retentionInDays"])


def _queue(fab, cls="realtime", dlq=False):
    t = _t(fab)
    return (t.dlq_urls if dlq else t.queue_urls)[cls]


def _qname(fab, cls="realtime", dlq=False):
    return fab.cfg.queue_name(_t(fab).tenant_id, cls, dlq)


def _delete_endpoint(fab, vpc_id=None):
    ec2 = _c(fab, "ec2")
    ep = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id or _t(fab).vpc_id]},
                                             {"Name": "service-name", "Values": [f"com.amazonaws.{fab.cfg.region}.sqs"]}]
                                    )["VpcEndpoints"][0]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[ep["VpcEndpointId"]])
    return ep


def _recreate_endpoint(fab, ep):
    _c(fab, "ec2").create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=ep["VpcId"], ServiceName=ep["ServiceName"], SubnetIds=ep["SubnetIds"],
        SecurityGroupIds=[g["GroupId"] for g in ep["Groups"]], PrivateDnsEnabled=True)


def _default_sg(fab):
    [g] = _c(fab, "ec2").describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [_t(fab).vpc_id]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    return g["GroupId"]


def _router_endpoint_sg(fab):
    [g] = _c(fab, "ec2").describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [fab.res.router_vpc_id]},
        {"Name": "group-name", "Values": [f"{fab.cfg.name}-router-endpoints"]}])["SecurityGroups"]
    return g["GroupId"]


def _delete_flow_logs(fab):
    ec2 = _c(fab, "ec2")
    [fl] = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [_t(fab).vpc_id]}])["FlowLogs"]
    ec2.delete_flow_logs(FlowLogIds=[fl["FlowLogId"]])
    return fl


def _recreate_flow_logs(fab, fl):
    _c(fab, "ec2").create_flow_logs(ResourceIds=[fl["ResourceId"]], ResourceType="VPC", TrafficType="ALL",
                                    LogDestinationType="cloud-watch-logs", LogGroupName=fl["LogGroupName"],
                                    DeliverLogsPermissionArn=fl["DeliverLogsPermissionArn"])


# Queue attributes that can be set again on a re-created queue (the rest are read-only counters).
SETTABLE = ("FifoQueue", "ContentBasedDeduplication", "SqsManagedSseEnabled", "KmsMasterKeyId", "VisibilityTimeout",
            "MessageRetentionPeriod", "RedrivePolicy", "DelaySeconds", "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds", "DeduplicationScope", "FifoThroughputLimit")


def _delete_queue(fab):
    sqs, url = _c(fab, "sqs"), _queue(fab)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    sqs.delete_queue(QueueUrl=url)
    return {k: v for k, v in attrs.items() if k in SETTABLE}, tags


def _recreate_queue(fab, saved):
    attrs, tags = saved
    _c(fab, "sqs").create_queue(QueueName=_qname(fab), Attributes=attrs, tags=tags)


BREAKS: tuple[Break, ...] = (
    Break("s3_bucket_public_access_block", lambda f: _pab(f, False), lambda f, _: _pab(f, True),
          lambda f: _t(f).bucket),
    Break("s3_bucket_default_encryption_tenant_key", lambda f: _sse(f, f.res.audit_key_arn),
          lambda f, _: _sse(f, _t(f).key_arn), lambda f: _t(f).bucket),
    Break("s3_bucket_policy_secure_transport", *_policy_without(denies_insecure_transport), lambda f: _t(f).bucket),
    Break("s3_bucket_policy_deny_unencrypted_put", *_policy_without(denies_unencrypted_put), lambda f: _t(f).bucket),
    Break("s3_bucket_versioning",
          lambda f: _c(f, "s3").put_bucket_versioning(Bucket=_t(f).bucket,
                                                      VersioningConfiguration={"Status": "Suspended"}),
          lambda f, _: _c(f, "s3").put_bucket_versioning(Bucket=_t(f).bucket,
                                                         VersioningConfiguration={"Status": "Enabled"}),
          lambda f: _t(f).bucket),
    Break("s3_audit_bucket_object_lock", lambda f: _lock(f, 1), lambda f, _: _lock(f, f.cfg.audit.object_lock_days),
          lambda f: f.res.audit_bucket),
    Break("kms_key_per_tenant", _extra_key, _drop_extra_key, lambda f: _t(f).key_alias),
    Break("kms_key_rotation_enabled", lambda f: _c(f, "kms").disable_key_rotation(KeyId=_t(f).key_id),
          lambda f, _: _rotation_period(f, f.cfg.encryption.kms_rotation_days), lambda f: _t(f).key_alias),
    Break("kms_key_rotation_period", lambda f: _rotation_period(f, 365),
          lambda f, _: _rotation_period(f, f.cfg.encryption.kms_rotation_days), lambda f: _t(f).key_alias),
    Break("kms_key_enabled", lambda f: _c(f, "kms").disable_key(KeyId=_t(f).key_id),
          lambda f, _: _c(f, "kms").enable_key(KeyId=_t(f).key_id), lambda f: _t(f).key_alias),
    Break("sqs_queue_fifo", _delete_queue, _recreate_queue, _qname),
    # the queue is put under a key that is not its tenant's: encrypted still, but under another key policy
    Break("sqs_queue_encrypted", lambda f: _sqs_set(f, _queue(f), KmsMasterKeyId=f.res.audit_key_arn),
          lambda f, _: _sqs_set(f, _queue(f), KmsMasterKeyId=_t(f).key_arn), _qname),
    Break("sqs_queue_dlq_redrive",
          lambda f: _sqs_set(f, _queue(f), RedrivePolicy=json.dumps(
              {"deadLetterTargetArn": _t(f).dlq_arns["realtime"], "maxReceiveCount": 5})),
          lambda f, _: _sqs_set(f, _queue(f), RedrivePolicy=json.dumps(
              {"deadLetterTargetArn": _t(f).dlq_arns["realtime"],
               "maxReceiveCount": f.cfg.queues.cls("realtime").max_receive_count})), _qname),
    Break("sqs_queue_visibility_timeout", lambda f: _sqs_set(f, _queue(f), VisibilityTimeout=999),
          lambda f, _: _sqs_set(f, _queue(f), VisibilityTimeout=f.cfg.queues.cls("realtime").visibility_timeout_s),
          _qname),
    Break("sqs_queue_retention", lambda f: _sqs_set(f, _queue(f), MessageRetentionPeriod=60),
          lambda f, _: _sqs_set(f, _queue(f), MessageRetentionPeriod=f.cfg.queues.message_retention_s), _qname),
    Break("dynamodb_table_ttl",
          lambda f: _c(f, "dynamodb").update_time_to_live(TableName=f.res.table_name, TimeToLiveSpecification={
              "Enabled": False, "AttributeName": f.cfg.jobs.ttl_attribute}),
          lambda f, _: _c(f, "dynamodb").update_time_to_live(TableName=f.res.table_name, TimeToLiveSpecification={
              "Enabled": True, "AttributeName": f.cfg.jobs.ttl_attribute}), lambda f: f.res.table_name),
    Break("dynamodb_table_kms_encryption", _table_without_cmk, _drop_table, lambda f: f.res.table_name,
          reprovision=True, unsupported=DDB_LOCAL),
    Break("dynamodb_table_pitr",
          lambda f: _c(f, "dynamodb").update_continuous_backups(
              TableName=f.res.table_name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}),
          lambda f, _: _c(f, "dynamodb").update_continuous_backups(
              TableName=f.res.table_name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}),
          lambda f: f.res.table_name, unsupported=DDB_LOCAL),
    Break("vpc_tenant_isolation", _peer_outsider, _unpeer, lambda f: _t(f).tenant_id),
    Break("vpc_no_public_subnets",
          lambda f: _c(f, "ec2").modify_subnet_attribute(SubnetId=_t(f).subnet_ids[0],
                                                         MapPublicIpOnLaunch={"Value": True}),
          lambda f, _: _c(f, "ec2").modify_subnet_attribute(SubnetId=_t(f).subnet_ids[0],
                                                            MapPublicIpOnLaunch={"Value": False}),
          lambda f: _t(f).vpc_id),
    Break("vpc_worker_ingress_router_only", lambda f: _ingress(f, _t(f).worker_sg_id, "10.0.0.0/8", 22, True),
          lambda f, _: _ingress(f, _t(f).worker_sg_id, "10.0.0.0/8", 22, False), lambda f: _t(f).worker_sg_id),
    # the VPC's default group: the worker and endpoint groups have checks of their own that an open rule also fails
    Break("vpc_no_open_ingress", lambda f: _ingress(f, _default_sg(f), "0.0.0.0/0", 443, True),
          lambda f, _: _ingress(f, _default_sg(f), "0.0.0.0/0", 443, False), _default_sg),
    Break("vpc_nacl_egress_deny", lambda f: _nacl_allow_all(f, True), lambda f, _: _nacl_allow_all(f, False),
          lambda f: _t(f).subnet_ids[0]),
    Break("vpc_endpoints_private", _delete_endpoint, _recreate_endpoint, lambda f: _t(f).vpc_id),
    Break("vpc_flow_logs_enabled", _delete_flow_logs, _recreate_flow_logs, lambda f: _t(f).vpc_id),
    Break("vpc_endpoint_ingress_workers_only", lambda f: _ingress(f, _t(f).endpoint_sg_id, "10.0.0.0/8", 443, True),
          lambda f, _: _ingress(f, _t(f).endpoint_sg_id, "10.0.0.0/8", 443, False), lambda f: _t(f).endpoint_sg_id),
    Break("vpc_router_endpoints_private", lambda f: _delete_endpoint(f, f.res.router_vpc_id), _recreate_endpoint,
          lambda f: f.res.router_vpc_id),
    Break("vpc_router_endpoint_ingress", lambda f: _ingress(f, _router_endpoint_sg(f), "10.0.0.0/8", 443, True),
          lambda f, _: _ingress(f, _router_endpoint_sg(f), "10.0.0.0/8", 443, False), _router_endpoint_sg),
    Break("vpc_flow_log_retention", lambda f: _retention(f, _t(f).flow_log_group, 30),
          lambda f, _: _retention(f, _t(f).flow_log_group, f.cfg.network.flow_log_retention_days),
          lambda f: _t(f).flow_log_group),
    Break("cloudwatch_dlq_depth_alarm", lambda f: _actions(f, _alarm(f, "realtime-dlq-depth"), False),
          lambda f, _: _actions(f, _alarm(f, "realtime-dlq-depth"), True), lambda f: _qname(f, dlq=True)),
    Break("cloudwatch_gpu_memory_alarm", lambda f: _actions(f, _alarm(f, "gpu-memory"), False),
          lambda f, _: _actions(f, _alarm(f, "gpu-memory"), True), lambda f: _t(f).tenant_id),
    Break("iam_worker_role_least_privilege", _wildcard_policy,
          lambda f, _: _c(f, "iam").delete_role_policy(RoleName=_role_name(f), PolicyName="too-broad"), _role_name),
    Break("iam_no_user_access_keys", _user_with_key, _drop_user, lambda f: "legacy-operator"),
    Break("iam_role_max_session", lambda f: _max_session(f, 12 * 3600),
          lambda f, _: _max_session(f, int(f.cfg.iam.max_session_hours * 3600)), _role_name),
    Break("cloudtrail_audit_trail", lambda f: _c(f, "cloudtrail").stop_logging(Name=f"{f.cfg.name}-audit"),
          lambda f, _: _c(f, "cloudtrail").start_logging(Name=f"{f.cfg.name}-audit"), lambda f: f.res.audit_bucket,
          unsupported={"localstack": "LocalStack's open-source edition has no CloudTrail API"}),
    Break("logs_audit_log_retention", lambda f: _retention(f, f.res.audit_log_group, 30),
          lambda f, _: _retention(f, f.res.audit_log_group, f.cfg.audit.log_retention_days),
          lambda f: f.res.audit_log_group),
    Break("logs_log_group_encrypted", _group_without_key, _group_with_key,
          lambda f: f.cfg.flow_log_group(_t(f).tenant_id)),
    Break("sns_alarm_topic_encrypted",
          lambda f: _c(f, "sns").set_topic_attributes(TopicArn=f.res.alarm_topic_arn, AttributeName="KmsMasterKeyId",
                                                      AttributeValue=""),
          lambda f, _: _c(f, "sns").set_topic_attributes(TopicArn=f.res.alarm_topic_arn,
                                                         AttributeName="KmsMasterKeyId", AttributeValue=f.res.audit_key_arn),
          lambda f: f.res.alarm_topic_arn),
    Break("config_tls_minimum", overrides={"delivery.tls_min_version": "TLSv1.2"}),
    Break("config_presign_expiry", overrides={"delivery.presign_expiry_s": 3600}),
    Break("config_cache_control_no_store", overrides={"delivery.cache_control": "public, max-age=300"}),
    Break("phi_gate_self_test", overrides={"phi.entities": ["EMAIL", "PHONE"]}),
    Break("tenant_resources_tagged",
          lambda f: _c(f, "sqs").untag_queue(QueueUrl=_queue(f, "batch"), TagKeys=["comfyfab:tenant"]),
          lambda f, _: _c(f, "sqs").tag_queue(QueueUrl=_queue(f, "batch"),
                                              Tags={"comfyfab:tenant": _t(f).tenant_id}),
          lambda f: _qname(f, "batch")),
)
