"""The fabric's API surface on LocalStack (+ DynamoDB Local): every call the fabric makes is served.

One test per service family, using the names and figures of the shipped
fabric config.  emulators/README.md records the results, including what is
accepted but not enforced.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.localstack


def _uid() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def tenant_key(ls_cloud, fabric_config):
    kms = ls_cloud.client("kms")
    key = kms.create_key(Description="tenant CMK")["KeyMetadata"]
    alias = f"{fabric_config.key_alias('acme-health')}-{_uid()}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return key["Arn"], alias


def test_s3_sse_kms_bucket_key_public_access_block_and_policy(ls_cloud, fabric_config, tenant_key):
    s3 = ls_cloud.client("s3")
    key_arn, _ = tenant_key
    bucket = f"{fabric_config.bucket_name('acme-health')}-{_uid()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": fabric_config.encryption.bucket_key}]})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")})
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    s3.put_object(Bucket=bucket, Key="out.png", Body=b"x", CacheControl=fabric_config.delivery.cache_control)
    head = s3.head_object(Bucket=bucket, Key="out.png")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_arn
    assert head["BucketKeyEnabled"] is True and head["CacheControl"] == "no-store, no-cache"
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Sid"] == "DenyInsecureTransport"
    with pytest.raises(ClientError, match="InvalidBucketName"):
        s3.create_bucket(Bucket="ab")  # bucket names are validated


def test_s3_object_lock_compliance_mode_refuses_deletes(ls_cloud, fabric_config):
    s3 = ls_cloud.client("s3")
    bucket = f"{fabric_config.audit_bucket_name()}-{_uid()}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": fabric_config.audit.object_lock_mode,
                                      "Days": fabric_config.audit.object_lock_days}}})
    version = s3.put_object(Bucket=bucket, Key="audit/1.json", Body=b"{}")["VersionId"]
    head = s3.head_object(Bucket=bucket, Key="audit/1.json")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key="audit/1.json", VersionId=version)


def test_sqs_fifo_moves_a_message_to_the_dlq_after_max_receives(ls_cloud, fabric_config, tenant_key):
    sqs = ls_cloud.client("sqs")
    cls = fabric_config.queues.cls("realtime")
    uid = _uid()
    dlq = sqs.create_queue(QueueName=f"dlq-{uid}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=f"q-{uid}.fifo", Attributes={
        "FifoQueue": "true", "VisibilityTimeout": str(cls.visibility_timeout_s), "KmsMasterKeyId": tenant_key[1],
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": cls.max_receive_count})}
    )["QueueUrl"]
    assert "/queue/" in queue and "localstack.cloud" not in queue  # path-style, no DNS needed
    sqs.send_message(QueueUrl=queue, MessageBody="job", MessageGroupId="g0", MessageDeduplicationId="d0")
    receives = 0
    for _ in range(cls.max_receive_count + 1):
        got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1, VisibilityTimeout=1).get("Messages", [])
        receives += len(got)
        time.sleep(1.1)
    assert receives == cls.max_receive_count
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2)["Messages"]] == ["job"]


def test_ec2_vpc_isolation_surface(ls_cloud, fabric_config):
    ec2 = ls_cloud.client("ec2")
    tenant = fabric_config.tenant("acme-health")
    vpc = ec2.create_vpc(CidrBlock=tenant.vpc_cidr)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=tenant.vpc_cidr.replace("0.0/16", "1.0/24"))["Subnet"]["SubnetId"]
    router_vpc = ec2.create_vpc(CidrBlock=fabric_config.network.router_cidr)["Vpc"]["VpcId"]
    router_sg = ec2.create_security_group(GroupName=f"router-{_uid()}", Description="r", VpcId=router_vpc)["GroupId"]
    sg = ec2.create_security_group(GroupName=f"workers-{_uid()}", Description="w", VpcId=vpc)["GroupId"]
    port = fabric_config.network.worker_port
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": router_sg}]}])
    ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    pcx = ec2.create_vpc_peering_connection(VpcId=router_vpc, PeerVpcId=vpc)["VpcPeeringConnection"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx["VpcPeeringConnectionId"])
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=32000, Protocol="-1", RuleAction="deny", Egress=True,
                                 CidrBlock="0.0.0.0/0")
    rt = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
    endpoints = []
    for svc in fabric_config.network.vpc_endpoints:
        kind = "Gateway" if svc in ("s3", "dynamodb") else "Interface"
        extra = {"RouteTableIds": [rt]} if kind == "Gateway" else {"SubnetIds": [subnet], "SecurityGroupIds": [sg]}
        endpoints.append(ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{fabric_config.region}.{svc}",
                                                 VpcEndpointType=kind, **extra)["VpcEndpoint"]["VpcEndpointId"])
    flow = ec2.create_flow_logs(ResourceIds=[subnet], ResourceType="Subnet", TrafficType="ALL",
                                LogDestinationType="cloud-watch-logs",
                                LogGroupName=fabric_config.flow_log_group("acme-health"),
                                DeliverLogsPermissionArn="arn:aws:iam::000000000000:role/flow-logs")
    assert flow["Unsuccessful"] == [] and len(flow["FlowLogIds"]) == 1
    assert len(ec2.describe_vpc_endpoints(VpcEndpointIds=endpoints)["VpcEndpoints"]) == len(
        fabric_config.network.vpc_endpoints)
    rules = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]
    assert rules["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == router_sg
    assert rules["IpPermissionsEgress"] == []
    entries = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0]["Entries"]
    assert any(e["RuleNumber"] == 32000 and e["RuleAction"] == "deny" and e["Egress"] for e in entries)


def test_cloudwatch_logs_retention_and_kms(ls_cloud, fabric_config, tenant_key):
    logs = ls_cloud.client("logs")
    group = f"{fabric_config.audit_log_group()}-{_uid()}"
    logs.create_log_group(logGroupName=group, kmsKeyId=tenant_key[0])
    logs.put_retention_policy(logGroupName=group, retentionInDays=fabric_config.audit.log_retention_days)
    logs.create_log_stream(logGroupName=group, logStreamName="router")
    logs.put_log_events(logGroupName=group, logStreamName="router",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "phi-rejected"}])
    desc = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert (desc["retentionInDays"], desc["kmsKeyId"]) == (365, tenant_key[0])
    events = logs.get_log_events(logGroupName=group, logStreamName="router")["events"]
    assert [e["message"] for e in events] == ["phi-rejected"]


def test_sns_topic_with_kms(ls_cloud, fabric_config, tenant_key):
    sns = ls_cloud.client("sns")
    topic = sns.create_topic(Name=f"{fabric_config.alarm_topic_name()}-{_uid()}",
                             Attributes={"KmsMasterKeyId": tenant_key[1]})["TopicArn"]
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"] == tenant_key[1]


def test_iam_role_session_limit_and_sts(ls_cloud, fabric_config):
    iam, sts = ls_cloud.client("iam"), ls_cloud.client("sts")
    max_s = int(fabric_config.iam.max_session_hours * 3600)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    name = f"comfyfab-worker-{_uid()}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=max_s)["Role"]
    iam.put_role_policy(RoleName=name, PolicyName="outputs", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject",
                                                "Resource": "arn:aws:s3:::comfyfab-acme-health-outputs/*"}]}))
    assert iam.get_role(RoleName=name)["Role"]["MaxSessionDuration"] == 14400
    assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="worker-1", DurationSeconds=3600)
    assert assumed["AssumedRoleUser"]["Arn"].endswith(f"assumed-role/{name}/worker-1")
    assert sts.get_caller_identity()["Account"] == "000000000000"


def test_dynamodb_is_refused_by_the_gateway(localstack_backend, ls_cloud):
    """LocalStack's own DynamoDB stays off (it downloads at first use); DynamoDB goes to DynamoDB Local."""
    from comfyfab.cloud import BackendSpec, Cloud

    gateway_only = Cloud(BackendSpec(kind="localstack", endpoint_url=localstack_backend.endpoint_url))
    with pytest.raises(ClientError, match="not enabled"):
        gateway_only.client("dynamodb").list_tables()
    assert ls_cloud.endpoint_for("dynamodb") != localstack_backend.endpoint_url
