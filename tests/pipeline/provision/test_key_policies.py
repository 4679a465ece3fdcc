"""Key policies, log-group encryption and the audit bucket's CloudTrail grants.

No emulator evaluates key policies or checks that CloudTrail may write to a
bucket: moto and LocalStack accept a trail, or a log group's key, whatever
the policies say, while a real account refuses them.  So the documents are
tested here as documents (what they allow, to whom, scoped to what), and read
back from the emulator to show that provisioning attached them.
"""
from __future__ import annotations

import json

from pipeline.provision import canonical_bucket_policy
from pipeline.provision.kms import alarm_grants, cloudtrail_grants, key_policy, logs_grants
from pipeline.provision.names import audit_key_alias, table_key_alias

TRAIL = "arn:aws:cloudtrail:us-east-1:123456789012:trail/comfyfab-audit"


def _sids(doc):
    return [s["Sid"] for s in doc["Statement"]]


def test_every_key_policy_keeps_the_account_in_charge():
    for grants in ([], cloudtrail_grants("aws", "123456789012", TRAIL)):
        doc = key_policy("aws", "123456789012", grants)
        admin = doc["Statement"][0]
        assert admin["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"} and admin["Action"] == "kms:*"


def test_service_grants_are_scoped_to_the_fabric_s_own_trail_groups_and_alarms():
    ct = cloudtrail_grants("aws", "123456789012", TRAIL)
    assert {s["Principal"]["Service"] for s in ct} == {"cloudtrail.amazonaws.com"}
    assert all(s["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL for s in ct)
    assert "kms:Decrypt" not in json.dumps(ct)  # CloudTrail encrypts; readers decrypt through IAM
    [logs] = logs_grants("aws", "eu-west-1", "123456789012", ["/comfyfab/audit"])
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"] == [
        "arn:aws:logs:eu-west-1:123456789012:log-group:/comfyfab/audit"]
    [alarms] = alarm_grants("aws", "eu-west-1", "123456789012", "comfyfab-")
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Condition"]["ArnLike"]["aws:SourceArn"] == "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:comfyfab-*"


def test_the_audit_bucket_admits_cloudtrail_for_its_trail_only():
    with_trail = canonical_bucket_policy("aws", "audit-b", "arn:aws:kms:k", ("123456789012", TRAIL))
    check, write = with_trail["Statement"][:2]
    assert check["Action"] == "s3:GetBucketAcl" and check["Resource"] == "arn:aws:s3:::audit-b"
    assert write["Action"] == "s3:PutObject" and write["Resource"] == "arn:aws:s3:::audit-b/AWSLogs/123456789012/*"
    assert all(s["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL for s in (check, write))
    assert "cloudtrail" not in json.dumps(canonical_bucket_policy("aws", "tenant-b", "arn:aws:kms:k"))


def test_provisioned_keys_carry_their_policies_and_log_groups_their_keys(fabric):
    cloud, cfg, res = fabric.cloud, fabric.cfg, fabric.res
    kms, logs = cloud.client("kms"), cloud.client("logs")

    def policy(alias):
        key_id = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
        return json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])

    def group_key(name):
        [g] = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
        return g.get("kmsKeyId")

    audit = policy(audit_key_alias(cfg))
    assert _sids(audit) == ["AccountAdministersThroughIam", "CloudTrailEncryptsTheAuditTrail",
                            "CloudTrailDescribesTheKey", "CloudWatchLogsEncryptsTheseGroups",
                            "CloudWatchPublishesTheFabricsAlarms"]
    assert audit["Statement"][4]["Condition"]["ArnLike"]["aws:SourceArn"].endswith(f":alarm:{cfg.name}-*")
    topic = cloud.client("sns").get_topic_attributes(TopicArn=res.alarm_topic_arn)["Attributes"]
    assert topic["KmsMasterKeyId"] == res.audit_key_arn
    assert audit["Statement"][1]["Condition"]["StringEquals"]["aws:SourceArn"].endswith(f":trail/{cfg.name}-audit")
    assert [a.rsplit(":log-group:", 1)[1] for a in
            audit["Statement"][3]["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]] == [
        cfg.audit_log_group(), cfg.router_flow_log_group()]
    assert group_key(cfg.audit_log_group()) == res.audit_key_arn
    assert group_key(cfg.router_flow_log_group()) == res.audit_key_arn
    [router_fl] = cloud.client("ec2").describe_flow_logs(
        Filters=[{"Name": "resource-id", "Values": [res.router_vpc_id]}])["FlowLogs"]
    assert router_fl["LogGroupName"] == cfg.router_flow_log_group()
    assert _sids(policy(table_key_alias(cfg))) == ["AccountAdministersThroughIam"]
    for t in cfg.tenants:
        doc = policy(cfg.key_alias(t.id))
        # each tenant's key lets CloudWatch Logs encrypt that tenant's flow logs and nothing else
        assert doc["Statement"][1]["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"] == [
            f"arn:aws:logs:{cloud.spec.region}:{cloud.account_id()}:log-group:{cfg.flow_log_group(t.id)}"]
        assert group_key(cfg.flow_log_group(t.id)) == res.tenants[t.id].key_arn
    bucket_policy = json.loads(cloud.client("s3").get_bucket_policy(Bucket=res.audit_bucket)["Policy"])
    assert "CloudTrailChecksTheBucket" in _sids(bucket_policy)


def test_a_second_run_leaves_unchanged_key_policies_alone(fabric):
    from pipeline.provision import provision

    puts = []
    kms = fabric.cloud.client("kms")
    def capture(params, **_):
        puts.append(params)

    kms.meta.events.register("provide-client-params.kms.PutKeyPolicy", capture)
    try:
        provision(fabric.cloud, fabric.cfg)
    finally:
        kms.meta.events.unregister("provide-client-params.kms.PutKeyPolicy", capture)
    assert puts == []


def test_converging_a_key_policy_names_the_statements_it_removes(fabric):
    """An operator's statement added by hand is removed by the next provision (the config is the policy),
    and the run says so by Sid, so the change is not lost unseen."""
    from pipeline.provision import provision

    cloud, cfg, res = fabric.cloud, fabric.cfg, fabric.res
    kms = cloud.client("kms")
    key = res.tenants[cfg.tenants[0].id].key_arn
    doc = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    doc["Statement"].append({"Sid": "BreakGlassByHand", "Effect": "Allow", "Action": "kms:Decrypt",
                             "Principal": {"AWS": f"arn:aws:iam::{cloud.account_id()}:root"}, "Resource": "*"})
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(doc))
    said = []
    provision(cloud, cfg, progress=said.append)
    assert [m for m in said if "BreakGlassByHand" in m and cfg.key_alias(cfg.tenants[0].id) in m]
    assert "BreakGlassByHand" not in _sids(json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]))
    said.clear()
    provision(cloud, cfg, progress=said.append)
    assert not [m for m in said if "removing statements" in m]   # converged: nothing more to say


def test_a_new_key_is_created_with_its_policy(fabric):
    """No default policy to replace on a fresh key: no PutKeyPolicy, nothing said about removing statements."""
    from pipeline.provision.context import Step
    from pipeline.provision.kms import ensure_key, key_policy

    said, puts = [], []
    step = Step(cloud=fabric.cloud, cfg=fabric.cfg, create=True, progress=said.append)
    kms = fabric.cloud.client("kms")
    def capture(params, **_):
        puts.append(params)

    kms.meta.events.register("provide-client-params.kms.PutKeyPolicy", capture)
    try:  # an alias and no tags of the fabric's: the scans of the shared fabric never see this key
        key = ensure_key(step, "alias/comfyfab-test/fresh", "a fresh key", {})
    finally:
        kms.meta.events.unregister("provide-client-params.kms.PutKeyPolicy", capture)
    assert json.loads(kms.get_key_policy(KeyId=key.key_id, PolicyName="default")["Policy"]) == key_policy(
        step.partition, step.account)
    assert puts == [] and not [m for m in said if "removing statements" in m]


def test_foreign_statements_are_found_by_sid_or_position():
    from pipeline.provision.kms import _foreign_statements

    wanted = {"Statement": [{"Sid": "A", "Effect": "Allow"}]}
    assert _foreign_statements({"Statement": [{"Sid": "A", "Effect": "Allow"}]}, wanted) == []
    assert _foreign_statements({"Statement": [{"Sid": "A", "Effect": "Deny"}, {"Effect": "Allow"}]}, wanted) == [
        "A", "statement 2 (no Sid)"]
    assert _foreign_statements({"Statement": {"Sid": "B"}}, wanted) == ["B"]
    assert _foreign_statements({}, wanted) == []


def _fake_step(kind, logs):
    from types import SimpleNamespace

    said, skipped = [], []
    return SimpleNamespace(cloud=SimpleNamespace(spec=SimpleNamespace(kind=kind)), say=said.append,
                           client=lambda service: logs, not_supported=lambda op, why: skipped.append((op, why)),
                           said=said, skipped=skipped)


def test_a_group_made_without_its_key_is_put_under_it_where_the_backend_can():
    import boto3
    import pytest
    from botocore.stub import Stubber

    from pipeline.provision.monitoring import _encrypt_existing_group

    logs = boto3.client("logs", region_name="us-east-1", aws_access_key_id="fake", aws_secret_access_key="fake")
    with Stubber(logs) as stub:
        stub.add_response("associate_kms_key", {}, {"logGroupName": "/g", "kmsKeyId": "arn:k"})
        step = _fake_step("aws", logs)
        _encrypt_existing_group(step, "/g", "arn:k")
        assert step.skipped == [] and step.said
        stub.add_client_error("associate_kms_key", "InternalFailure", "not implemented", http_status_code=501)
        step = _fake_step("localstack", logs)
        _encrypt_existing_group(step, "/g", "arn:k")   # LocalStack's open-source edition answers 501
        assert [op for op, _ in step.skipped] == ["logs:AssociateKmsKey /g"]
        stub.add_client_error("associate_kms_key", "AccessDeniedException", "no", http_status_code=400)
        with pytest.raises(Exception, match="AccessDenied"):
            _encrypt_existing_group(_fake_step("aws", logs), "/g", "arn:k")
    step = _fake_step("embedded", None)   # moto lacks the operation: recorded, not called
    _encrypt_existing_group(step, "/g", "arn:k")
    assert step.skipped == [("logs:AssociateKmsKey /g", "not in moto")]
