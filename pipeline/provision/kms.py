"""KMS customer-managed keys: one per tenant, one for the audit trail, one for the jobs table.

Each key's policy lets the account's IAM policies govern it (the statement
AWS puts on a new key) and names the AWS services that encrypt with it on
the fabric's behalf, each scoped to the fabric's own resources: CloudTrail
for the audit trail's log files, CloudWatch Logs for the log groups under the
key, CloudWatch for the alarms it publishes to the encrypted alarm topic.
Without those grants a real account refuses the trail, the log groups'
encryption and the alarms' notifications; the emulators accept either way,
so the documents are tested as documents
(``tests/pipeline/provision/test_key_policies.py``).  Provisioning converges
each key to its policy, as it does every other setting: a statement added by
hand is removed on the next run, and the run's progress names it by Sid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from botocore.exceptions import ClientError

from .context import Step, error_code
from .names import ROTATION_TAG, tag_list


@dataclass(frozen=True)
class Key:
    """A customer-managed key found or created under its alias."""

    key_id: str
    arn: str
    alias: str


def find_key(step: Step, alias: str) -> Key | None:
    kms = step.client("kms")
    try:
        meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            return None
        raise
    if meta.get("KeyState") == "PendingDeletion":
        # The alias still points at a key scheduled for deletion: bring it back
        # rather than hand out a key that stops working in a few days.
        if not step.create:
            return None
        kms.cancel_key_deletion(KeyId=meta["KeyId"])
        kms.enable_key(KeyId=meta["KeyId"])
    return Key(key_id=meta["KeyId"], arn=meta["Arn"], alias=alias)


def key_policy(partition: str, account: str, grants: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """The account administers the key through IAM, plus the service ``grants``."""
    return {"Version": "2012-10-17", "Id": "comfyfab-key-policy", "Statement": [
        {"Sid": "AccountAdministersThroughIam", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"},
        *grants]}


def cloudtrail_grants(partition: str, account: str, trail_arn: str) -> list[dict[str, Any]]:
    """CloudTrail encrypts this trail's log files under the key (and may describe it)."""
    service = {"Service": "cloudtrail.amazonaws.com"}
    return [
        {"Sid": "CloudTrailEncryptsTheAuditTrail", "Effect": "Allow", "Principal": service,
         "Action": "kms:GenerateDataKey*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceArn": trail_arn},
                       "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                                      f"arn:{partition}:cloudtrail:*:{account}:trail/*"}}},
        {"Sid": "CloudTrailDescribesTheKey", "Effect": "Allow", "Principal": service,
         "Action": "kms:DescribeKey", "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
    ]


def logs_grants(partition: str, region: str, account: str, groups: Sequence[str]) -> list[dict[str, Any]]:
    """CloudWatch Logs encrypts exactly these log groups under the key."""
    return [{
        "Sid": "CloudWatchLogsEncryptsTheseGroups", "Effect": "Allow",
        "Principal": {"Service": f"logs.{region}.amazonaws.com"},
        "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        "Resource": "*",
        "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": [
            f"arn:{partition}:logs:{region}:{account}:log-group:{g}" for g in groups]}},
    }]


def alarm_grants(partition: str, region: str, account: str, alarm_prefix: str) -> list[dict[str, Any]]:
    """CloudWatch may publish the fabric's alarms (names starting ``alarm_prefix``) to a topic under the key."""
    return [{
        "Sid": "CloudWatchPublishesTheFabricsAlarms", "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{alarm_prefix}*"}},
    }]


def ensure_key(step: Step, alias: str, description: str, tags: dict[str, str],
               grants: Sequence[dict[str, Any]] = ()) -> Key:
    """The symmetric CMK under ``alias`` with automatic rotation at the configured period,
    and the key policy :func:`key_policy` gives with ``grants``."""
    key = find_key(step, alias)
    policy = key_policy(step.partition, step.account, grants)
    if key is None:
        if not step.create:
            raise step.absent(f"KMS key {alias}")
        step.say(f"creating KMS key {alias}")
        # created with its policy: the default one AWS would give it is never there to be replaced
        meta = step.client("kms").create_key(
            Description=description, KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT",
            Policy=json.dumps(policy), Tags=tag_list(tags, "TagKey", "TagValue"))["KeyMetadata"]
        step.client("kms").create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        key = Key(key_id=meta["KeyId"], arn=meta["Arn"], alias=alias)
    if step.create:
        _converge(step, key, tags, policy)
    return key


def _foreign_statements(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The statements of ``current`` that ``wanted`` lacks, by Sid (or their position when unnamed)."""
    def listed(doc: dict[str, Any]) -> list[dict[str, Any]]:
        st = doc.get("Statement", [])
        return st if isinstance(st, list) else [st]

    mine = listed(wanted)
    return [s.get("Sid") or f"statement {i + 1} (no Sid)" for i, s in enumerate(listed(current)) if s not in mine]


def _converge(step: Step, key: Key, tags: dict[str, str], policy: dict[str, Any]) -> None:
    kms = step.client("kms")
    current = kms.get_key_policy(KeyId=key.key_id, PolicyName="default").get("Policy")
    if current is None or json.loads(current) != policy:
        dropped = _foreign_statements(json.loads(current) if current else {}, policy)
        if dropped:  # converging removes them: say which, so an operator's addition is not lost unseen
            step.say(f"KMS key {key.alias}: its policy is put back to the config's, removing statements the "
                     f"config does not have: {', '.join(dropped)}")
        kms.put_key_policy(KeyId=key.key_id, PolicyName="default", Policy=json.dumps(policy))
    days = step.cfg.encryption.kms_rotation_days
    kms.enable_key_rotation(KeyId=key.key_id, RotationPeriodInDays=days)
    # The rotation period is also written as a tag: some emulators (moto 5.2)
    # accept RotationPeriodInDays but do not return it from GetKeyRotationStatus.
    kms.tag_resource(KeyId=key.key_id, Tags=tag_list({**tags, ROTATION_TAG: str(days)}, "TagKey", "TagValue"))
