"""KMS keys, output buckets, the jobs table and the audit trail, read back through the API."""
from __future__ import annotations

import json

import httpx
import pytest
from botocore.exceptions import ClientError

from pipeline.provision import attached_policy, canonical_bucket_policy
from pipeline.provision.context import Step
from pipeline.provision.kms import Key
from pipeline.provision.names import (FABRIC_TAG, POLICY_MODE_TAG, ROTATION_TAG, TENANT_TAG, table_key_alias,
                                     tag_dict)
from pipeline.provision.s3 import ensure_bucket

from .conftest import tags_of


def test_each_tenant_has_its_own_rotating_customer_managed_key(fabric):
    kms = fabric.cloud.client("kms")
    key_ids = set()
    for t in fabric.cfg.tenants:
        tr = fabric.res.tenants[t.id]
        meta = kms.describe_key(KeyId=fabric.cfg.key_alias(t.id))["KeyMetadata"]
        assert meta["KeyId"] == tr.key_id and meta["Arn"] == tr.key_arn
        assert (meta["KeyManager"], meta["KeyState"], meta["KeySpec"]) == ("CUSTOMER", "Enabled", "SYMMETRIC_DEFAULT")
        status = kms.get_key_rotation_status(KeyId=tr.key_id)
        assert status["KeyRotationEnabled"] is True
        days = fabric.cfg.encryption.kms_rotation_days
        # moto 5.2 does not echo RotationPeriodInDays; AWS does.  Check what was sent, and the echo when present.
        assert status.get("RotationPeriodInDays", days) == days
        sent = [c for c in fabric.calls["EnableKeyRotation"] if c["KeyId"] == tr.key_id]
        assert sent and all(c["RotationPeriodInDays"] == days for c in sent)
        tags = tags_of(kms.list_resource_tags(KeyId=tr.key_id)["Tags"], "TagKey", "TagValue")
        assert tags[TENANT_TAG] == t.id and tags[FABRIC_TAG] == fabric.cfg.name and tags[ROTATION_TAG] == str(days)
        key_ids.add(tr.key_id)
    assert len(key_ids) == len(fabric.cfg.tenants)


def test_output_buckets_are_private_versioned_and_encrypted_under_the_tenant_key(fabric):
    s3 = fabric.cloud.client("s3")
    for t in fabric.cfg.tenants:
        tr = fabric.res.tenants[t.id]
        assert tr.bucket == fabric.cfg.bucket_name(t.id)
        bpa = s3.get_public_access_block(Bucket=tr.bucket)["PublicAccessBlockConfiguration"]
        assert bpa == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                       "RestrictPublicBuckets": True}
        rule = s3.get_bucket_encryption(Bucket=tr.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": tr.key_arn}
        assert rule["BucketKeyEnabled"] is True
        assert s3.get_bucket_versioning(Bucket=tr.bucket)["Status"] == "Enabled"
        tags = tags_of(s3.get_bucket_tagging(Bucket=tr.bucket)["TagSet"])
        assert tags[TENANT_TAG] == t.id and tags[POLICY_MODE_TAG] == tr.bucket_policy_mode == "embedded"


def test_embedded_bucket_policy_is_the_documented_reduction_of_the_canonical_one(fabric):
    s3 = fabric.cloud.client("s3")
    for tr in fabric.res.tenants.values():
        canonical = canonical_bucket_policy("aws", tr.bucket, tr.key_arn)
        attached = json.loads(s3.get_bucket_policy(Bucket=tr.bucket)["Policy"])
        assert attached == attached_policy(canonical, "embedded")
        (stmt,) = attached["Statement"]
        assert stmt["Sid"] == "DenyInsecureTransport" and stmt["Effect"] == "Deny"
        assert stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert stmt["Resource"] == [f"arn:aws:s3:::{tr.bucket}"]


def test_worker_put_with_tenant_key_and_presigned_get_work_over_the_embedded_endpoint(fabric):
    s3 = fabric.cloud.client("s3")
    for tr in fabric.res.tenants.values():
        body = f"png of {tr.tenant_id}".encode()
        s3.put_object(Bucket=tr.bucket, Key="out/1.png", Body=body, ServerSideEncryption="aws:kms",
                      SSEKMSKeyId=tr.key_arn)
        head = s3.head_object(Bucket=tr.bucket, Key="out/1.png")
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] in (tr.key_arn, tr.key_id)   # AWS answers the ARN, moto what was sent
        url = s3.generate_presigned_url("get_object", Params={"Bucket": tr.bucket, "Key": "out/1.png"},
                                        ExpiresIn=fabric.cfg.delivery.presign_expiry_s)
        assert url.startswith("http://")
        got = httpx.get(url, timeout=10)
        assert got.status_code == 200 and got.content == body


def test_jobs_table_has_key_index_ttl_kms_and_pitr(fabric):
    ddb = fabric.cloud.client("dynamodb")
    cfg = fabric.cfg
    table = ddb.describe_table(TableName=cfg.table_name())["Table"]
    assert table["TableArn"] == fabric.res.table_arn
    assert table["KeySchema"] == [{"AttributeName": "jobId", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"jobId": "S", "tenantId": "S", "createdAt": "S"}
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "tenant-created"
    assert gsi["KeySchema"] == [{"AttributeName": "tenantId", "KeyType": "HASH"},
                                {"AttributeName": "createdAt", "KeyType": "RANGE"}]
    sse = table["SSEDescription"]
    assert sse["Status"] == "ENABLED" and sse["SSEType"] == "KMS"
    jobs_key = fabric.cloud.client("kms").describe_key(KeyId=table_key_alias(cfg))["KeyMetadata"]
    assert sse["KMSMasterKeyArn"] == jobs_key["Arn"] and jobs_key["KeyId"] == fabric.res.table_key_id
    ttl = ddb.describe_time_to_live(TableName=cfg.table_name())["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": cfg.jobs.ttl_attribute}
    pitr = ddb.describe_continuous_backups(TableName=cfg.table_name())["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_audit_bucket_has_compliance_object_lock_and_its_own_key(fabric):
    s3 = fabric.cloud.client("s3")
    cfg, res = fabric.cfg, fabric.res
    assert res.audit_bucket == cfg.audit_bucket_name()
    lock = s3.get_object_lock_configuration(Bucket=res.audit_bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == (cfg.audit.object_lock_mode, cfg.audit.object_lock_days)
    assert not retention.get("Years")   # moto answers Years: 0 beside Days; AWS only the one that was set
    assert s3.get_bucket_versioning(Bucket=res.audit_bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=res.audit_bucket)["PublicAccessBlockConfiguration"].values())
    rule = s3.get_bucket_encryption(Bucket=res.audit_bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == res.audit_key_arn
    assert res.audit_key_id not in {tr.key_id for tr in res.tenants.values()} | {res.table_key_id}
    assert fabric.cloud.client("kms").get_key_rotation_status(KeyId=res.audit_key_id)["KeyRotationEnabled"]


@pytest.mark.parametrize("which", ["audit", "flow"])
def test_log_groups_have_the_configured_retention(fabric, which):
    logs = fabric.cloud.client("logs")
    cfg = fabric.cfg
    want = ({cfg.audit_log_group(): cfg.audit.log_retention_days} if which == "audit" else
            {cfg.flow_log_group(t.id): cfg.network.flow_log_retention_days for t in cfg.tenants})
    for name, days in want.items():
        (group,) = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
                    if g["logGroupName"] == name]
        assert group["retentionInDays"] == days
        assert logs.list_tags_log_group(logGroupName=name)["tags"][FABRIC_TAG] == cfg.name


def test_moto_applies_the_full_policy_without_its_conditions(fabric):
    """Pins the moto behaviour the embedded mode exists for: the day this fails, drop the embedded mode."""
    step = Step(cloud=fabric.cloud, cfg=fabric.cfg, create=True)
    tr = next(iter(fabric.res.tenants.values()))
    key = Key(key_id=tr.key_id, arn=tr.key_arn, alias=tr.key_alias)
    s3 = fabric.cloud.client("s3")
    name = "pin-moto-full-policy"
    ensure_bucket(step, name, key, tag_dict(fabric.cfg, "scratch"), "full")
    try:
        assert json.loads(s3.get_bucket_policy(Bucket=name)["Policy"]) == canonical_bucket_policy("aws", name, tr.key_arn)
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket=name, Key="a.png", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=tr.key_arn)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        s3.delete_bucket_policy(Bucket=name)
        s3.put_object(Bucket=name, Key="a.png", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=tr.key_arn)
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(canonical_bucket_policy("aws", name, tr.key_arn)))
        url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "a.png"}, ExpiresIn=60)
        assert httpx.get(url, timeout=10).status_code == 403
    finally:
        s3.delete_bucket_policy(Bucket=name)
        for v in s3.list_object_versions(Bucket=name).get("Versions", []):
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        s3.delete_bucket(Bucket=name)
