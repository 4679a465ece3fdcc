"""S3 buckets and KMS keys."""

from __future__ import annotations

import json

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from ..inventory import FABRIC_TAG, Bucket, KmsKey
from ._common import call, tag_map


def collect_buckets(cloud: Cloud, cfg: FabricConfig) -> tuple[Bucket, ...]:
    s3 = cloud.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    wanted = [(cfg.bucket_name(t.id), t.id) for t in cfg.tenants] + [(cfg.audit_bucket_name(), None)]
    return tuple(_bucket(s3, name, tenant) if name in existing else Bucket(name=name, tenant=tenant, exists=False)
                 for name, tenant in wanted)


def _bucket(s3, name: str, tenant: str | None) -> Bucket:
    pab = call(s3.get_public_access_block, f"s3:GetPublicAccessBlock {name}",
               "NoSuchPublicAccessBlockConfiguration", Bucket=name)
    enc = call(s3.get_bucket_encryption, f"s3:GetBucketEncryption {name}",
               "ServerSideEncryptionConfigurationNotFoundError", Bucket=name)
    algo = key = None
    if enc:
        rules = enc["ServerSideEncryptionConfiguration"].get("Rules", [])
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
        algo, key = default.get("SSEAlgorithm"), default.get("KMSMasterKeyID")
    pol = call(s3.get_bucket_policy, f"s3:GetBucketPolicy {name}", "NoSuchBucketPolicy", Bucket=name)
    ver = s3.get_bucket_versioning(Bucket=name).get("Status")
    lock = call(s3.get_object_lock_configuration, f"s3:GetObjectLockConfiguration {name}",
                "ObjectLockConfigurationNotFoundError", Bucket=name)
    lock_cfg = (lock or {}).get("ObjectLockConfiguration", {})
    retention = lock_cfg.get("Rule", {}).get("DefaultRetention", {})
    days = retention.get("Days") or (retention.get("Years", 0) * 365) or None
    tags = call(s3.get_bucket_tagging, f"s3:GetBucketTagging {name}", "NoSuchTagSet", Bucket=name)
    return Bucket(
        name=name, tenant=tenant,
        public_access_block=dict(pab["PublicAccessBlockConfiguration"]) if pab else None,
        sse_algorithm=algo, sse_kms_key=key,
        policy=json.loads(pol["Policy"]) if pol else None,
        versioning=ver,
        object_lock_enabled=lock_cfg.get("ObjectLockEnabled") == "Enabled",
        object_lock_mode=retention.get("Mode"),
        object_lock_days=days,
        tags=tag_map((tags or {}).get("TagSet")),
    )


def collect_keys(cloud: Cloud, cfg: FabricConfig) -> tuple[KmsKey, ...]:
    """Customer-managed keys carrying this fabric's tag or one of its aliases."""
    kms = cloud.client("kms")
    aliases: dict[str, list[str]] = {}
    for page in kms.get_paginator("list_aliases").paginate():
        for a in page.get("Aliases", []):
            if a.get("TargetKeyId"):
                aliases.setdefault(a["TargetKeyId"], []).append(a["AliasName"])
    prefix = f"alias/{cfg.name}/"
    keys: list[KmsKey] = []
    for page in kms.get_paginator("list_keys").paginate():
        for entry in page.get("Keys", []):
            meta = kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]
            if meta.get("KeyManager") != "CUSTOMER":
                continue
            tags = tag_map(kms.list_resource_tags(KeyId=meta["KeyId"]).get("Tags"), "TagKey", "TagValue")
            names = tuple(sorted(aliases.get(meta["KeyId"], [])))
            if tags.get(FABRIC_TAG) != cfg.name and not any(n.startswith(prefix) for n in names):
                continue
            rotation = call(kms.get_key_rotation_status, f"kms:GetKeyRotationStatus {meta['KeyId']}",
                            "KMSInvalidStateException", "UnsupportedOperationException", KeyId=meta["KeyId"])
            deletion = meta.get("DeletionDate")
            keys.append(KmsKey(
                key_id=meta["KeyId"], arn=meta["Arn"], state=meta.get("KeyState", ""),
                manager=meta["KeyManager"], aliases=names,
                rotation_enabled=rotation.get("KeyRotationEnabled") if rotation else None,
                rotation_period_days=rotation.get("RotationPeriodInDays") if rotation else None,
                deletion_date=deletion.isoformat() if deletion else None,
                tags=tags,
            ))
    return tuple(keys)
