"""IAM roles: a least-privilege worker role per tenant, the router role, the flow-log roles.

Every statement names specific actions on specific ARNs; :func:`check_least_privilege`
refuses a document with a wildcard action or resource before it is sent.
"""

from __future__ import annotations

import json
from typing import Callable

from botocore.exceptions import ClientError

from .context import Step, error_code
from .errors import ProvisioningError
from .names import tag_list

IAM_MIN_SESSION_S = 3600


def max_session_s(step: Step) -> int:
    s = int(step.cfg.iam.max_session_hours * 3600)
    if s < IAM_MIN_SESSION_S:
        raise ProvisioningError(f"iam.max_session_hours={step.cfg.iam.max_session_hours}: IAM roles allow at least 1 h")
    return s


def trust(service: str, source_account: str | None = None) -> dict:
    """A trust policy for ``service``; ``source_account`` adds the confused-deputy guard where the
    service documents it (VPC flow logs do; EC2 instance roles do not send the key)."""
    stmt: dict = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if source_account is not None:
        stmt["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return {"Version": "2012-10-17", "Statement": [stmt]}


def check_least_privilege(name: str, doc: dict) -> None:
    """No wildcard actions (``*``, ``sqs:*``) and no wildcard resources (``*``) in ``doc``."""
    for stmt in doc["Statement"]:
        actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
        resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
        bad = [a for a in actions if "*" in a] + [r for r in resources if r == "*" or r.endswith(":*:*")]
        if bad or "NotAction" in stmt or "NotResource" in stmt:
            raise ProvisioningError(f"policy {name} is not least-privilege: {bad or 'NotAction/NotResource'}")


def ensure_role(step: Step, name: str, trust_policy: dict, policies: Callable[[], dict[str, dict]],
                tags: dict[str, str], description: str) -> str:
    """The role ``name`` with exactly the inline policies ``policies()`` builds; returns its ARN.

    ``policies`` is called only when creating or converging, so discovery needs none of its inputs.
    """
    iam = step.client("iam")
    docs = policies() if step.create else {}
    for pname, doc in docs.items():
        check_least_privilege(pname, doc)
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        if not step.create:
            raise step.absent(f"IAM role {name}") from exc
        step.say(f"creating IAM role {name}")
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy),
                               Description=description, MaxSessionDuration=max_session_s(step),
                               Tags=tag_list(tags))["Role"]
    if step.create:
        iam.update_role(RoleName=name, Description=description, MaxSessionDuration=max_session_s(step))
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust_policy))
        iam.tag_role(RoleName=name, Tags=tag_list(tags))
        for stale in set(iam.list_role_policies(RoleName=name)["PolicyNames"]) - set(docs):
            iam.delete_role_policy(RoleName=name, PolicyName=stale)
        for pname, doc in docs.items():
            iam.put_role_policy(RoleName=name, PolicyName=pname, PolicyDocument=json.dumps(doc))
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
    return role["Arn"]


# What each caller does to job records: the role policies and the DynamoDB endpoint policies both say so.
WORKER_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
# PutItem accepts a job, GetItem answers its status, DeleteItem takes back a record whose message could not
# be sent (nothing half-accepted)
ROUTER_TABLE_ACTIONS = ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                        "dynamodb:Query")


def worker_policy(queue_arns: list[str], bucket: str, key_arn: str, table_arn: str, partition: str) -> dict:
    """What a tenant's worker does: take its queues' messages, write its bucket under its key, update jobs."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "TenantQueues", "Effect": "Allow",
         "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
         "Resource": sorted(queue_arns)},
        {"Sid": "TenantOutputs", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
         "Resource": [f"arn:{partition}:s3:::{bucket}/*"]},
        {"Sid": "TenantKey", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": [key_arn]},
        {"Sid": "JobRecords", "Effect": "Allow", "Action": list(WORKER_TABLE_ACTIONS),
         "Resource": [table_arn]},
    ]}


def router_policy(queue_arns: list[str], bucket_arns: list[str], key_arns: list[str], table_arn: str,
                  audit_log_group_arn: str, queues_under_tenant_keys: bool = True) -> dict:
    """What the router does: enqueue, read depths, write and read job records, presign GETs, audit.

    A send to a queue encrypted under a tenant's key needs that key's data key (``kms:GenerateDataKey``).
    """
    enqueue_keys = [{"Sid": "EnqueueEncrypted", "Effect": "Allow", "Action": ["kms:GenerateDataKey"],
                     "Resource": sorted(key_arns)}] if queues_under_tenant_keys and key_arns else []
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Enqueue", "Effect": "Allow",
         "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
         "Resource": sorted(queue_arns)},
        *enqueue_keys,
        {"Sid": "JobRecords", "Effect": "Allow", "Action": list(ROUTER_TABLE_ACTIONS),
         "Resource": [table_arn, f"{table_arn}/index/*"]},
        {"Sid": "PresignOutputs", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": sorted(f"{b}/*" for b in bucket_arns)},
        {"Sid": "DecryptOutputs", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": sorted(key_arns)},
        {"Sid": "AuditEvents", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [audit_log_group_arn, f"{audit_log_group_arn}:log-stream:*"]},
    ]}


def flow_log_policy(log_group_arn: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DeliverFlowLogs", "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"]}]}
