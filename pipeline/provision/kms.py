"""KMS customer-managed keys: one per tenant, one for the audit trail, one for the jobs table."""

from __future__ import annotations

from dataclasses import dataclass

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


def ensure_key(step: Step, alias: str, description: str, tags: dict[str, str]) -> Key:
    """The symmetric CMK under ``alias`` with automatic rotation at the configured period."""
    key = find_key(step, alias)
    if key is None:
        if not step.create:
            raise step.absent(f"KMS key {alias}")
        step.say(f"creating KMS key {alias}")
        meta = step.client("kms").create_key(
            Description=description, KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT",
            Tags=tag_list(tags, "TagKey", "TagValue"))["KeyMetadata"]
        step.client("kms").create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        key = Key(key_id=meta["KeyId"], arn=meta["Arn"], alias=alias)
    if step.create:
        _converge(step, key, tags)
    return key


def _converge(step: Step, key: Key, tags: dict[str, str]) -> None:
    kms = step.client("kms")
    days = step.cfg.encryption.kms_rotation_days
    kms.enable_key_rotation(KeyId=key.key_id, RotationPeriodInDays=days)
    # The rotation period is also written as a tag: some emulators (moto 5.2)
    # accept RotationPeriodInDays but do not return it from GetKeyRotationStatus.
    kms.tag_resource(KeyId=key.key_id, Tags=tag_list({**tags, ROTATION_TAG: str(days)}, "TagKey", "TagValue"))
