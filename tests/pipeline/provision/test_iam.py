"""Worker, router and flow-log roles: least privilege, session limit, tenant scoping."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.provision.errors import ProvisioningError
from pipeline.provision.iam import check_least_privilege, worker_policy
from pipeline.provision.names import TENANT_TAG, router_role_name, worker_role_name


def _statements(iam, role):
    out = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        out += doc["Statement"]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    return out


def _as_list(v):
    return v if isinstance(v, list) else [v]


def test_worker_roles_touch_only_their_own_tenant(fabric):
    iam = fabric.cloud.client("iam")
    cfg, res = fabric.cfg, fabric.res
    for t in cfg.tenants:
        tr = res.tenants[t.id]
        role = iam.get_role(RoleName=worker_role_name(cfg, t.id))["Role"]
        assert role["Arn"] == tr.worker_role_arn
        assert role["MaxSessionDuration"] <= cfg.iam.max_session_hours * 3600
        assert {x["Key"]: x["Value"] for x in iam.list_role_tags(RoleName=role["RoleName"])["Tags"]}[TENANT_TAG] == t.id
        own = set(tr.queue_arns.values()) | {f"arn:aws:s3:::{tr.bucket}/*", tr.key_arn, res.table_arn}
        resources = set()
        for stmt in _statements(iam, role["RoleName"]):
            assert stmt["Effect"] == "Allow"
            assert all("*" not in a for a in _as_list(stmt["Action"]))
            resources |= set(_as_list(stmt["Resource"]))
        assert resources == own
        others = [o for o in res.tenants.values() if o.tenant_id != t.id]
        for o in others:
            assert not resources & (set(o.queue_arns.values()) | {o.key_arn, f"arn:aws:s3:::{o.bucket}/*"})


def test_router_role_is_scoped_and_session_limited(fabric):
    iam = fabric.cloud.client("iam")
    cfg, res = fabric.cfg, fabric.res
    role = iam.get_role(RoleName=router_role_name(cfg))["Role"]
    assert role["Arn"] == res.router_role_arn
    assert role["MaxSessionDuration"] <= cfg.iam.max_session_hours * 3600
    stmts = _statements(iam, role["RoleName"])
    for stmt in stmts:
        assert all("*" not in a for a in _as_list(stmt["Action"]))
        assert "*" not in _as_list(stmt["Resource"])
    send = next(s for s in stmts if "sqs:SendMessage" in _as_list(s["Action"]))
    assert set(send["Resource"]) == {a for tr in res.tenants.values() for a in tr.queue_arns.values()}


def test_flow_log_roles_trust_only_the_flow_log_service(fabric):
    iam = fabric.cloud.client("iam")
    for tr in fabric.res.tenants.values():
        role = iam.get_role(RoleName=tr.flow_log_role_arn.rsplit("/", 1)[1])["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "vpc-flow-logs.amazonaws.com"}]
        assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
        (stmt,) = _statements(iam, role["RoleName"])
        assert all(r.startswith(f"arn:aws:logs:us-east-1:123456789012:log-group:{tr.flow_log_group}")
                   for r in stmt["Resource"])


arn_part = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=3, max_size=20)


@given(tenant=arn_part, table=arn_part)
def test_worker_policy_is_least_privilege_for_any_names(tenant, table):
    doc = worker_policy([f"arn:aws:sqs:us-east-1:1:{tenant}-{c}.fifo" for c in ("a", "b", "c")],
                        f"x-{tenant}-outputs", f"arn:aws:kms:us-east-1:1:key/{tenant}",
                        f"arn:aws:dynamodb:us-east-1:1:table/{table}", "aws")
    check_least_privilege("worker", doc)


@given(bad=st.sampled_from([("Action", "*"), ("Action", "sqs:*"), ("Action", ["s3:GetObject", "s3:*"]),
                            ("Resource", "*"), ("Resource", ["arn:aws:s3:::b/*", "*"])]))
def test_check_least_privilege_refuses_wildcards(bad):
    stmt = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", bad[0]: bad[1]}
    with pytest.raises(ProvisioningError, match="not least-privilege"):
        check_least_privilege("p", {"Statement": [stmt]})
