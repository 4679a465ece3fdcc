"""A second provisioning creates nothing, returns equal resources, and repairs drift."""
from __future__ import annotations

from collections import Counter

from pipeline.provision import provision
from pipeline.provision.names import FABRIC_TAG, TENANT_TAG



def _inventory(cloud, cfg) -> dict[str, Counter]:
    """How many of each thing the account holds, counted by name/tag so duplicates would show."""
    ec2, kms, sqs, iam, cw = (cloud.client(s) for s in ("ec2", "kms", "sqs", "iam", "cloudwatch"))
    fabric = [{"Name": f"tag:{FABRIC_TAG}", "Values": [cfg.name]}]
    tenant_of = lambda x: {t["Key"]: t["Value"] for t in x.get("Tags", [])}.get(TENANT_TAG, "-")  # noqa: E731
    return {
        "aliases": Counter(a["AliasName"] for a in kms.list_aliases()["Aliases"] if a.get("TargetKeyId")),
        "keys": Counter(k["KeyId"] for k in kms.list_keys()["Keys"]),
        "queues": Counter(u.rsplit("/", 1)[1] for u in sqs.list_queues().get("QueueUrls", [])),
        "buckets": Counter(b["Name"] for b in cloud.client("s3").list_buckets()["Buckets"]),
        "vpcs": Counter(tenant_of(v) for v in ec2.describe_vpcs(Filters=fabric)["Vpcs"]),
        "subnets": Counter(s["VpcId"] for s in ec2.describe_subnets()["Subnets"]),
        "groups": Counter((g["VpcId"], g["GroupName"]) for g in ec2.describe_security_groups()["SecurityGroups"]),
        "nacls": Counter(n["VpcId"] for n in ec2.describe_network_acls()["NetworkAcls"]),
        "route_tables": Counter(r["VpcId"] for r in ec2.describe_route_tables()["RouteTables"]),
        "endpoints": Counter((e["VpcId"], e["ServiceName"]) for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]),
        "peerings": Counter(p["AccepterVpcInfo"]["VpcId"] for p in
                            ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]),
        "flow_logs": Counter(f["ResourceId"] for f in ec2.describe_flow_logs()["FlowLogs"]),
        "roles": Counter(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "alarms": Counter(a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]),
        "topics": Counter(t["TopicArn"] for t in cloud.client("sns").list_topics()["Topics"]),
        "tables": Counter(cloud.client("dynamodb").list_tables()["TableNames"]),
    }


def test_second_run_creates_nothing_and_returns_equal_resources(fabric):
    cloud, cfg = fabric.cloud, fabric.cfg
    before = _inventory(cloud, cfg)
    steps: list[str] = []
    assert provision(cloud, cfg, progress=steps.append) == fabric.res
    assert _inventory(cloud, cfg) == before
    assert not [s for s in steps if s.startswith("creating")], steps
    assert steps[-1].startswith(f"fabric {cfg.name} ready: {len(cfg.tenants)} tenant(s)")
    # and the first run made one of each: one VPC per tenant (plus the router's), one key per alias, ...
    assert before["vpcs"] == Counter({t.id: 1 for t in cfg.tenants} | {"-": 1})
    assert all(n == 1 for name, c in before.items() if name not in ("subnets", "nacls", "route_tables")
               for n in c.values())
    assert len(before["queues"]) == 6 * len(cfg.tenants)
    assert {cfg.key_alias(t.id) for t in cfg.tenants} <= set(before["aliases"])
    for tr in fabric.res.tenants.values():
        assert before["subnets"][tr.vpc_id] == 2
        assert before["flow_logs"][tr.vpc_id] == 1
        assert before["peerings"][tr.vpc_id] == 1


def test_rerun_repairs_drift_without_new_resources(fabric):
    cloud, cfg, res = fabric.cloud, fabric.cfg, fabric.res
    tr = res.tenants[cfg.tenants[0].id]
    before = _inventory(cloud, cfg)
    ec2, kms, s3, sqs, iam = (cloud.client(s) for s in ("ec2", "kms", "s3", "sqs", "iam"))
    kms.disable_key_rotation(KeyId=tr.key_id)
    s3.delete_public_access_block(Bucket=tr.bucket)
    s3.put_bucket_versioning(Bucket=tr.bucket, VersioningConfiguration={"Status": "Suspended"})
    sqs.set_queue_attributes(QueueUrl=tr.queue_urls["batch"], Attributes={"VisibilityTimeout": "5"})
    ec2.authorize_security_group_ingress(GroupId=tr.worker_sg_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.delete_network_acl_entry(NetworkAclId=tr.nacl_id, RuleNumber=32000, Egress=True)
    iam.put_role_policy(RoleName=tr.worker_role_arn.rsplit("/", 1)[1], PolicyName="extra",
                        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
                                       '"Action": "s3:*", "Resource": "*"}]}')
    iam.update_role(RoleName=tr.worker_role_arn.rsplit("/", 1)[1], MaxSessionDuration=43200)

    assert provision(cloud, cfg) == res
    assert _inventory(cloud, cfg) == before
    assert kms.get_key_rotation_status(KeyId=tr.key_id)["KeyRotationEnabled"] is True
    assert all(s3.get_public_access_block(Bucket=tr.bucket)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_versioning(Bucket=tr.bucket)["Status"] == "Enabled"
    vis = sqs.get_queue_attributes(QueueUrl=tr.queue_urls["batch"], AttributeNames=["VisibilityTimeout"])
    assert vis["Attributes"]["VisibilityTimeout"] == str(cfg.queues.cls("batch").visibility_timeout_s)
    sg = ec2.describe_security_groups(GroupIds=[tr.worker_sg_id])["SecurityGroups"][0]
    assert [p["FromPort"] for p in sg["IpPermissions"]] == [cfg.network.worker_port]
    nacl = ec2.describe_network_acls(NetworkAclIds=[tr.nacl_id])["NetworkAcls"][0]
    assert any(e["RuleNumber"] == 32000 and e["Egress"] and e["RuleAction"] == "deny" for e in nacl["Entries"])
    role = tr.worker_role_arn.rsplit("/", 1)[1]
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["worker"]
    assert iam.get_role(RoleName=role)["Role"]["MaxSessionDuration"] == cfg.iam.max_session_hours * 3600


def test_rerun_after_the_audit_trail_holds_objects(fabric):
    """A running fabric writes audit objects; provisioning again must not re-put the Object Lock rule
    (S3 refuses that on a non-empty bucket in the emulators) when the rule is unchanged."""
    cloud, cfg = fabric.cloud, fabric.cfg
    cloud.client("s3").put_object(Bucket=fabric.res.audit_bucket, Key="audit/probe.jsonl", Body=b"{}")
    assert provision(cloud, cfg) == fabric.res


def test_queue_encryption_switches_between_the_tenant_key_and_sqs_managed_sse(fabric):
    cloud, cfg, res = fabric.cloud, fabric.cfg, fabric.res
    sqs = cloud.client("sqs")
    tr = res.tenants[cfg.tenants[0].id]

    def sse(url):
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return a.get("KmsMasterKeyId") or None, a.get("SqsManagedSseEnabled")

    managed = cfg.with_overrides({"encryption": {"queue_key": "sqs-managed"}})
    try:
        provision(cloud, managed)
        assert {sse(u) for u in [*tr.queue_urls.values(), *tr.dlq_urls.values()]} == {(None, "true")}
        router = cloud.client("iam").get_role_policy(RoleName=res.router_role_arn.rsplit("/", 1)[1],
                                                    PolicyName="router")["PolicyDocument"]
        assert "EnqueueEncrypted" not in {s.get("Sid") for s in router["Statement"]}
    finally:
        provision(cloud, cfg)  # back to the shared fabric's own settings
    assert {sse(u) for u in [*tr.queue_urls.values(), *tr.dlq_urls.values()]} == {(tr.key_arn, "false")}
    router = cloud.client("iam").get_role_policy(RoleName=res.router_role_arn.rsplit("/", 1)[1],
                                                PolicyName="router")["PolicyDocument"]
    keys = [s for s in router["Statement"] if s.get("Sid") == "EnqueueEncrypted"]
    assert keys and tr.key_arn in keys[0]["Resource"] and keys[0]["Action"] == ["kms:GenerateDataKey"]
