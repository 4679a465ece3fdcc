"""IAM roles and users, and CloudTrail trails."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from ..inventory import FABRIC_TAG, PolicyStatement, Role, Trail, User
from botocore.exceptions import ClientError

from ._common import CollectionError, tag_map


def _listify(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    return (v,) if isinstance(v, str) else tuple(v)


def _statements(doc: Any, source: str) -> list[PolicyStatement]:
    if isinstance(doc, str):
        doc = json.loads(unquote(doc))
    stmts = doc.get("Statement", [])
    if isinstance(stmts, dict):
        stmts = [stmts]
    return [PolicyStatement(source=source, effect=s.get("Effect", ""),
                            actions=_listify(s.get("Action")) + tuple(f"NOT:{a}" for a in _listify(s.get("NotAction"))),
                            resources=_listify(s.get("Resource")) + tuple(f"NOT:{r}" for r in _listify(s.get("NotResource"))))
            for s in stmts]


def collect_roles(cloud: Cloud, cfg: FabricConfig) -> tuple[Role, ...]:
    """Roles tagged ``comfyfab:fabric=<name>`` with every identity-policy statement they carry."""
    iam = cloud.client("iam")
    out: list[Role] = []
    for page in iam.get_paginator("list_roles").paginate():
        for r in page.get("Roles", []):
            name = r["RoleName"]
            tags = tag_map(iam.list_role_tags(RoleName=name).get("Tags"))
            if tags.get(FABRIC_TAG) != cfg.name:
                continue
            stmts: list[PolicyStatement] = []
            for pname in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
                doc = iam.get_role_policy(RoleName=name, PolicyName=pname)["PolicyDocument"]
                stmts += _statements(doc, f"inline:{pname}")
            for att in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", []):
                pol = iam.get_policy(PolicyArn=att["PolicyArn"])["Policy"]
                ver = iam.get_policy_version(PolicyArn=att["PolicyArn"], VersionId=pol["DefaultVersionId"])
                stmts += _statements(ver["PolicyVersion"]["Document"], f"attached:{att['PolicyArn']}")
            out.append(Role(name=name, arn=r["Arn"], max_session_s=int(r.get("MaxSessionDuration", 3600)),
                            statements=tuple(stmts), tags=tags))
    return tuple(out)


def collect_users(cloud: Cloud) -> tuple[User, ...]:
    iam = cloud.client("iam")
    out: list[User] = []
    for page in iam.get_paginator("list_users").paginate():
        for u in page.get("Users", []):
            keys = iam.list_access_keys(UserName=u["UserName"]).get("AccessKeyMetadata", [])
            out.append(User(name=u["UserName"],
                            active_keys=tuple(k["AccessKeyId"] for k in keys if k.get("Status") == "Active")))
    return tuple(out)


def collect_trails(cloud: Cloud) -> tuple[Trail, ...] | None:
    """Every trail; None when the backend does not implement CloudTrail at all (HTTP 501)."""
    ct = cloud.client("cloudtrail")
    out: list[Trail] = []
    try:
        listed = ct.describe_trails().get("trailList", [])
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 501:
            return None
        raise CollectionError(f"cloudtrail:DescribeTrails: {exc.response.get('Error', {}).get('Code', exc)}") from exc
    for t in listed:
        status = ct.get_trail_status(Name=t.get("TrailARN") or t["Name"])
        out.append(Trail(name=t["Name"], s3_bucket=t.get("S3BucketName"), is_logging=bool(status.get("IsLogging")),
                         multi_region=bool(t.get("IsMultiRegionTrail")),
                         log_file_validation=bool(t.get("LogFileValidationEnabled"))))
    return tuple(out)


def collect_root_access_keys(cloud: Cloud) -> int | None:
    """How many access keys the account's root user holds (``AccountAccessKeysPresent``)."""
    summary = cloud.client("iam").get_account_summary().get("SummaryMap", {})
    present = summary.get("AccountAccessKeysPresent")
    return int(present) if present is not None else None
