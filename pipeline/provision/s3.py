"""S3 buckets: the per-tenant output buckets and the audit bucket.

Every bucket gets Block Public Access (all four), ACLs disabled, default
SSE-KMS under its own key with an S3 Bucket Key, versioning, and a bucket
policy that denies insecure transport, uploads without ``aws:kms``, and
uploads that name another KMS key.

The embedded backend and bucket policies
-----------------------------------------
moto 5.2 evaluates a bucket policy on every *object* request (GET, PUT,
HEAD, DELETE -- ``S3Response._key_response``) through ``IAMPolicyStatement``,
which ignores ``Condition`` blocks (only ``StringEquals`` is known, and it is
checked against an empty request context, so it always passes).  A
conditional ``Deny`` with ``Principal: "*"`` therefore denies *every* object
request: the encrypted, correctly keyed PUT and the presigned GET included.
Bucket-level requests are not evaluated (moto's IAM auth is off by default).
And the embedded endpoint is plain HTTP, so even a faithful evaluator would
deny all traffic under ``aws:SecureTransport = false``.

So the attached document depends on a :data:`BucketPolicyMode`:

* ``full`` (LocalStack, AWS): the canonical policy, verbatim.
* ``embedded`` (moto): the canonical policy *minus its object-level
  resources* -- the secure-transport deny stays on the bucket ARN; the two
  upload denies, which only concern objects, are not attached.

The mode is never silent: the bucket carries the tag
``comfyfab:bucket-policy=<mode>``, :class:`~pipeline.provision.TenantResources`
reports it, and :func:`canonical_bucket_policy` gives the full document for
comparison.  A test pins moto's behaviour (``full`` on moto denies the
worker's PUT), so the day moto evaluates conditions the test says so.
"""

from __future__ import annotations

import json
from typing import Literal

from botocore.exceptions import ClientError

from .context import Step, error_code
from .errors import ProvisioningError
from .kms import Key
from .names import POLICY_MODE_TAG, tag_list

BucketPolicyMode = Literal["full", "embedded"]
POLICY_MODES: tuple[BucketPolicyMode, ...] = ("full", "embedded")


def default_policy_mode(backend_kind: str) -> BucketPolicyMode:
    """``embedded`` for the in-process moto server, ``full`` everywhere else."""
    return "embedded" if backend_kind == "embedded" else "full"


def cloudtrail_delivery(partition: str, bucket: str, account: str, trail_arn: str) -> list[dict]:
    """CloudTrail may check the bucket's ACL and write this trail's log files under ``AWSLogs/<account>/``."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    service = {"Service": "cloudtrail.amazonaws.com"}
    return [
        {"Sid": "CloudTrailChecksTheBucket", "Effect": "Allow", "Principal": service, "Action": "s3:GetBucketAcl",
         "Resource": bucket_arn, "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
        {"Sid": "CloudTrailDeliversTheAuditTrail", "Effect": "Allow", "Principal": service, "Action": "s3:PutObject",
         "Resource": f"{bucket_arn}/AWSLogs/{account}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}}},
    ]


def canonical_bucket_policy(partition: str, bucket: str, key_arn: str,
                            trail: tuple[str, str] | None = None) -> dict:
    """The bucket policy as AWS should enforce it (see the module docstring for the embedded mode).

    ``trail`` = (account, trail ARN) for the audit bucket: CloudTrail delivers that trail into it.
    """
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    objects = f"{bucket_arn}/*"
    delivery = cloudtrail_delivery(partition, bucket, *trail) if trail else []
    return {
        "Version": "2012-10-17",
        "Statement": [
            *delivery,
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [bucket_arn, objects],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "DenyUploadsWithoutKms", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": objects,
             "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
            {"Sid": "DenyUploadsUnderOtherKeys", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": objects,
             "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}}},
        ],
    }


def attached_policy(canonical: dict, mode: BucketPolicyMode) -> dict:
    """The document to attach under ``mode``: canonical for ``full``, bucket-level only for ``embedded``."""
    if mode not in POLICY_MODES:
        raise ProvisioningError(f"unknown bucket policy mode {mode!r}; choose one of {', '.join(POLICY_MODES)}")
    if mode == "full":
        return canonical
    kept = []
    for stmt in canonical["Statement"]:
        resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
        bucket_level = [r for r in resources if "/" not in r.split(":::", 1)[1]]
        if bucket_level:
            kept.append({**stmt, "Resource": bucket_level})
    return {**canonical, "Statement": kept}


def bucket_exists(step: Step, name: str) -> bool:
    try:
        step.client("s3").head_bucket(Bucket=name)
        return True
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code in ("403", "AccessDenied"):
            raise ProvisioningError(f"bucket {name} exists but this account cannot use it (owned elsewhere?)") from exc
        raise


def ensure_bucket(step: Step, name: str, key: Key | None, tags: dict[str, str], mode: BucketPolicyMode,
                  object_lock: tuple[str, int] | None = None, trail_arn: str | None = None) -> None:
    """A private, versioned, KMS-encrypted bucket; ``object_lock`` = (mode, days) enables Object Lock;
    ``trail_arn`` names the CloudTrail trail that delivers into it.

    ``key`` is needed only to create and converge; discovery may pass None.
    """
    s3 = step.client("s3")
    if not bucket_exists(step, name):
        if not step.create:
            raise step.absent(f"S3 bucket {name}")
        step.say(f"creating S3 bucket {name}")
        kwargs: dict = {"Bucket": name, "ObjectLockEnabledForBucket": object_lock is not None}
        if step.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": step.region}
        s3.create_bucket(**kwargs)
    if not step.create:
        return
    if key is None:
        raise ProvisioningError(f"S3 bucket {name}: no KMS key to encrypt it with")
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": step.cfg.encryption.algorithm,
                                               "KMSMasterKeyID": key.arn},
        "BucketKeyEnabled": step.cfg.encryption.bucket_key}]})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if object_lock is not None:
        lock_mode, days = object_lock
        wanted = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": lock_mode, "Days": days}}}
        current = s3.get_object_lock_configuration(Bucket=name).get("ObjectLockConfiguration", {})
        retention = current.get("Rule", {}).get("DefaultRetention", {})
        # Re-putting an unchanged rule fails on some backends once the bucket holds objects; only drift is written.
        if (current.get("ObjectLockEnabled"), retention.get("Mode"), retention.get("Days"),
                retention.get("Years") or 0) != ("Enabled", lock_mode, days, 0):
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=wanted)
    trail = (step.account, trail_arn) if trail_arn else None
    policy = attached_policy(canonical_bucket_policy(step.partition, name, key.arn, trail), mode)
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list({**tags, POLICY_MODE_TAG: mode})})


def bucket_policy_mode(step: Step, name: str) -> BucketPolicyMode:
    """The mode a provisioned bucket was given, read back from its tag."""
    try:
        tags = step.client("s3").get_bucket_tagging(Bucket=name)["TagSet"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchTagSet":
            raise step.absent(f"S3 bucket {name} tags ({POLICY_MODE_TAG})") from exc
        raise
    mode = {t["Key"]: t["Value"] for t in tags}.get(POLICY_MODE_TAG)
    if mode not in POLICY_MODES:
        raise step.absent(f"S3 bucket {name} tag {POLICY_MODE_TAG}")
    return mode  # type: ignore[return-value]
