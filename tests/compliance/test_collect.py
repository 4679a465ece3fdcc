"""Collectors: "not configured" becomes None, every other AWS error is raised, typed and named."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from comfyfab.cloud import BackendSpec
from compliance.collect import CollectionError
from compliance.collect._common import call
from compliance.collect.storage import collect_buckets


def _error(code: str, op: str = "GetBucketPolicy") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, op)


class FakeS3:
    """Just enough of an S3 client: one bucket, and a policy read that fails with ``policy_error``."""

    def __init__(self, bucket: str, policy_error: str):
        self.bucket, self.policy_error = bucket, policy_error

    def list_buckets(self):
        return {"Buckets": [{"Name": self.bucket}]}

    def get_public_access_block(self, Bucket):
        raise _error("NoSuchPublicAccessBlockConfiguration")

    def get_bucket_encryption(self, Bucket):
        raise _error("ServerSideEncryptionConfigurationNotFoundError")

    def get_bucket_policy(self, Bucket):
        raise _error(self.policy_error)

    def get_bucket_versioning(self, Bucket):
        return {}

    def get_object_lock_configuration(self, Bucket):
        raise _error("ObjectLockConfigurationNotFoundError")

    def get_bucket_tagging(self, Bucket):
        raise _error("NoSuchTagSet")


class FakeCloud:
    spec = BackendSpec(kind="aws")

    def __init__(self, s3):
        self.s3 = s3

    def client(self, service):
        assert service == "s3"
        return self.s3


def test_absent_settings_are_modelled_as_none(fabric_config):
    name = fabric_config.bucket_name(fabric_config.tenants[0].id)
    buckets = collect_buckets(FakeCloud(FakeS3(name, "NoSuchBucketPolicy")), fabric_config)
    got = next(b for b in buckets if b.name == name)
    assert got.exists and got.policy is None and got.public_access_block is None and got.sse_algorithm is None
    assert all(not b.exists for b in buckets if b.name != name)


def test_access_denied_is_raised_naming_the_call_not_dropped(fabric_config):
    name = fabric_config.bucket_name(fabric_config.tenants[0].id)
    with pytest.raises(CollectionError, match=f"s3:GetBucketPolicy {name}: AccessDenied"):
        collect_buckets(FakeCloud(FakeS3(name, "AccessDenied")), fabric_config)


def test_call_passes_results_through_and_maps_only_the_named_codes():
    assert call(lambda **kw: kw, "x", "Nope", a=1) == {"a": 1}

    def boom(**kw):
        raise _error("Throttling", "Op")
    assert call(lambda **kw: (_ for _ in ()).throw(_error("Nope")), "x", "Nope") is None
    with pytest.raises(CollectionError, match="x: Throttling"):
        call(boom, "x", "Nope")
