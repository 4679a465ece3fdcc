"""Checks are pure functions over hand-built inventories: edge cases the fabric tests cannot reach."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance.checks import Status
from compliance.checks.iam.iam_worker_role_least_privilege import iam_worker_role_least_privilege
from compliance.checks.kms.kms_key_rotation_period import kms_key_rotation_period
from compliance.checks.s3._policy import denies_insecure_transport, denies_unencrypted_put
from compliance.checks.s3.s3_bucket_policy_deny_unencrypted_put import s3_bucket_policy_deny_unencrypted_put
from compliance.checks.sqs.sqs_queue_encrypted import sqs_queue_encrypted
from compliance.checks.vpc.vpc_nacl_egress_deny import vpc_nacl_egress_deny
from compliance.inventory import (FABRIC_TAG, TENANT_TAG, Bucket, Inventory, KmsKey, Nacl, NaclEntry,
                                  PolicyStatement, Queue, Role, Subnet, Vpc)
from compliance.scan import evaluate, rollup


def inv(**kw) -> Inventory:
    return Inventory(account_id="123456789012", region="us-east-1", backend=kw.pop("backend", "aws"), **kw)


def key(cfg, tenant: str, kid: str, **kw) -> KmsKey:
    return KmsKey(key_id=kid, arn=f"arn:aws:kms:us-east-1:123456789012:key/{kid}", state="Enabled",
                  manager="CUSTOMER", aliases=(cfg.key_alias(tenant),),
                  tags={FABRIC_TAG: cfg.name, TENANT_TAG: tenant, **kw.pop("tags", {})}, **kw)


@pytest.mark.parametrize("period,tag,want", [
    (90, None, Status.PASS), (365, None, Status.FAIL),
    (None, "90", Status.UNVERIFIED), (None, "365", Status.FAIL), (None, None, Status.UNVERIFIED),
])
def test_rotation_period_trusts_the_api_and_never_passes_on_a_declared_tag(fabric_config, period, tag, want):
    t = fabric_config.tenants[0].id
    k = key(fabric_config, t, "k1", rotation_enabled=True, rotation_period_days=period,
            tags={"comfyfab:rotation-days": tag} if tag else {})
    [out] = kms_key_rotation_period(inv(keys=(k,)), fabric_config)
    assert out.status is want


def test_queue_under_another_tenants_key_fails(fabric_config):
    a, b = fabric_config.tenants[0].id, fabric_config.tenants[1].id
    ka, kb = key(fabric_config, a, "ka"), key(fabric_config, b, "kb")

    def q(ref):
        return Queue(name="q.fifo", tenant=a, priority="realtime", dlq=False, attributes={"KmsMasterKeyId": ref})
    assert sqs_queue_encrypted(inv(keys=(ka, kb), queues=(q(fabric_config.key_alias(a)),)),
                               fabric_config)[0].status is Status.PASS
    assert sqs_queue_encrypted(inv(keys=(ka, kb), queues=(q(kb.arn),)), fabric_config)[0].status is Status.FAIL
    assert sqs_queue_encrypted(inv(keys=(ka, kb), queues=(q("alias/aws/sqs"),)), fabric_config)[0].status \
        is Status.FAIL


def test_emulator_policy_mode_is_unverified_only_on_the_embedded_backend(fabric_config):
    t = fabric_config.tenants[0].id
    b = Bucket(name="b", tenant=t, policy={"Statement": []}, tags={"comfyfab:bucket-policy": "embedded"})
    assert s3_bucket_policy_deny_unencrypted_put(inv(buckets=(b,), backend="embedded"), fabric_config)[0].status \
        is Status.UNVERIFIED
    assert s3_bucket_policy_deny_unencrypted_put(inv(buckets=(b,), backend="aws"), fabric_config)[0].status \
        is Status.FAIL


@pytest.mark.parametrize("stmt,transport,upload", [
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
     True, False),
    ({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["s3:*"],
      "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}}, True, False),
    ({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
     False, False),
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
      "Condition": {"Bool": {"aws:SecureTransport": "false"}}}, False, False),
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
      "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}, False, True),
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
      "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}, False, True),
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
      "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}}, False, False),
])
def test_policy_statement_reading(stmt, transport, upload):
    assert denies_insecure_transport(stmt) is transport
    assert denies_unencrypted_put(stmt) is upload


def test_not_action_and_partial_wildcards_count_as_wildcards(fabric_config):
    t = fabric_config.tenants[0].id

    def role(*stmts):
        return Role(name="r", arn="arn:aws:iam::1:role/r", max_session_s=3600, statements=stmts,
                    tags={FABRIC_TAG: fabric_config.name, TENANT_TAG: t})
    named = PolicyStatement("inline:w", "Allow", ("sqs:ReceiveMessage",), ("arn:aws:sqs:us-east-1:1:q.fifo",))
    assert iam_worker_role_least_privilege(inv(roles=(role(named),)), fabric_config)[0].status is Status.PASS
    for bad in (PolicyStatement("inline:w", "Allow", ("s3:Get*",), ("arn:aws:s3:::b/*",)),
                PolicyStatement("inline:w", "Allow", ("NOT:iam:*",), ("arn:aws:s3:::b/*",)),
                PolicyStatement("inline:w", "Allow", ("s3:GetObject",), ("*",))):
        assert iam_worker_role_least_privilege(inv(roles=(role(named, bad),)), fabric_config)[0].status is Status.FAIL
    deny = PolicyStatement("inline:w", "Deny", ("*",), ("*",))
    assert iam_worker_role_least_privilege(inv(roles=(role(named, deny),)), fabric_config)[0].status is Status.PASS


entry = st.builds(NaclEntry, rule_number=st.integers(1, 32766), egress=st.just(True),
                  action=st.sampled_from(["allow", "deny"]), protocol=st.sampled_from(["-1", "6"]),
                  cidr=st.sampled_from(["0.0.0.0/0", "10.0.0.0/16"]))


@given(st.lists(entry, max_size=8, unique_by=lambda e: e.rule_number))
def test_nacl_egress_passes_iff_a_deny_all_comes_before_any_allow_to_anywhere(entries):
    implicit = NaclEntry(32767, True, "deny", "-1", "0.0.0.0/0")
    vpc = Vpc(tenant="t", vpc_id="vpc-1", subnets=(Subnet("subnet-1", "10.0.0.0/20", False, False),),
              nacls=(Nacl("acl-1", tuple(entries) + (implicit,), ("subnet-1",)),))
    [out] = vpc_nacl_egress_deny(inv(vpcs=(vpc,)), None)
    decisive = [e for e in sorted(entries, key=lambda e: e.rule_number) if e.cidr == "0.0.0.0/0"
                and (e.action == "allow" or e.protocol == "-1")]
    assert (out.status is Status.PASS) == bool(decisive and decisive[0].action == "deny")


def test_root_access_keys_fail_and_an_unreported_summary_is_unverified(fabric_config):
    from compliance.checks.iam.iam_no_user_access_keys import iam_no_user_access_keys

    def root(n):
        return [o for o in iam_no_user_access_keys(inv(root_access_keys=n), fabric_config) if "root" in o.resource]
    assert root(0)[0].status is Status.PASS
    assert root(1)[0].status is Status.FAIL
    assert root(None)[0].status is Status.UNVERIFIED


@given(st.lists(st.sampled_from(list(Status))))
def test_rollup_fail_beats_unverified_beats_pass(statuses):
    got = rollup(statuses)
    if Status.FAIL in statuses:
        assert got is Status.FAIL
    elif Status.UNVERIFIED in statuses or not statuses:
        assert got is Status.UNVERIFIED
    else:
        assert got is Status.PASS


def test_an_empty_account_fails_and_never_passes_vacuously(fabric_config):
    report = evaluate(inv(), fabric_config)
    assert not report.ok
    aws_checks = {c for c in report.check_status if not c.startswith(("config_", "phi_"))}
    passing = {c for c in aws_checks if report.check_status[c] is Status.PASS}
    assert passing == set()   # nothing passes for want of resources (root keys unreported: UNVERIFIED)
    assert all(c.status is not Status.PASS for c in report.controls if c.framework != "comfyfab"
               or c.requirement != "PHI-EXCLUSION")


def test_dynamodb_local_gaps_are_unverified_not_failed(fabric_config):
    from compliance.checks.dynamodb.dynamodb_table_kms_encryption import dynamodb_table_kms_encryption
    from compliance.checks.dynamodb.dynamodb_table_pitr import dynamodb_table_pitr
    from compliance.inventory import Table

    local = inv(table=Table(name="t", ttl_status="ENABLED", ttl_attribute="ttl", pitr_supported=False))
    assert dynamodb_table_kms_encryption(local, fabric_config)[0].status is Status.UNVERIFIED
    assert dynamodb_table_pitr(local, fabric_config)[0].status is Status.UNVERIFIED
    real = inv(table=Table(name="t", ttl_status="ENABLED", ttl_attribute="ttl", pitr_status="DISABLED"))
    assert dynamodb_table_kms_encryption(real, fabric_config)[0].status is Status.FAIL   # AWS-owned key: not a CMK
    assert dynamodb_table_pitr(real, fabric_config)[0].status is Status.FAIL


def test_the_router_vpc_needs_an_active_flow_log_to_the_router_group(fabric_config):
    from compliance.checks.vpc.vpc_flow_logs_enabled import vpc_flow_logs_enabled
    from compliance.inventory import FlowLog

    def flow(group, status="ACTIVE"):
        return FlowLog(flow_log_id="fl-1", resource_id="vpc-r", status=status, destination_type="cloud-watch-logs",
                       log_group=group)

    router = fabric_config.router_flow_log_group()
    for logs, want in [((), Status.FAIL), ((flow(router),), Status.PASS), ((flow(router, "FAILED"),), Status.FAIL),
                       ((flow(fabric_config.flow_log_group(fabric_config.tenants[0].id)),), Status.FAIL)]:
        [out] = vpc_flow_logs_enabled(inv(router_vpcs=(Vpc(tenant="", vpc_id="vpc-r", flow_logs=logs),)),
                                      fabric_config)
        assert out.resource == "vpc-r" and out.status is want, (logs, out)


def test_log_groups_pass_only_under_their_own_key(fabric_config):
    from compliance.checks.audit.logs_log_group_encrypted import logs_log_group_encrypted
    from compliance.inventory import LogGroup

    t = fabric_config.tenants[0].id
    tenant_key = key(fabric_config, t, "kt")
    audit = KmsKey(key_id="ka", arn="arn:aws:kms:us-east-1:123456789012:key/ka", state="Enabled", manager="CUSTOMER",
                   aliases=(f"alias/{fabric_config.name}/_audit",), tags={FABRIC_TAG: fabric_config.name})
    group = fabric_config.flow_log_group(t)
    for kms_key_id, want in [(tenant_key.arn, Status.PASS), (None, Status.FAIL), (audit.arn, Status.FAIL),
                             ("arn:aws:kms:us-east-1:123456789012:key/unknown", Status.FAIL)]:
        outs = logs_log_group_encrypted(inv(keys=(tenant_key, audit),
                                            log_groups=(LogGroup(name=group, kms_key_id=kms_key_id),)), fabric_config)
        assert [(o.resource, o.status) for o in outs] == [(group, want)]


def _router_vpc(endpoints=("dynamodb", "logs", "sqs"), endpoint_groups=("sg-e",), ingress=None):
    from compliance.inventory import Rule, SecurityGroup

    rules = ingress if ingress is not None else (Rule("tcp", 443, 443, source_group="sg-r"),)
    groups = (SecurityGroup("sg-r", "f-router", "vpc-r", tags={"comfyfab:role": "router"}),
              SecurityGroup("sg-e", "f-router-endpoints", "vpc-r", ingress=rules, tags={"comfyfab:role": "endpoints"}))
    return Vpc(tenant="", vpc_id="vpc-r", endpoints=endpoints, endpoint_groups=endpoint_groups,
               security_groups=groups)


def test_the_router_vpc_needs_its_endpoints(fabric_config):
    from compliance.checks.vpc.vpc_router_endpoints_private import vpc_router_endpoints_private

    [none] = vpc_router_endpoints_private(inv(), fabric_config)
    assert none.status is Status.FAIL and "no router VPC" in none.message   # absence fails, never passes vacuously
    for endpoints, want in [(("dynamodb", "logs", "sqs"), Status.PASS), (("dynamodb", "logs", "sqs", "s3"), Status.PASS),
                            (("dynamodb", "sqs"), Status.FAIL), ((), Status.FAIL)]:
        [out] = vpc_router_endpoints_private(inv(router_vpcs=(_router_vpc(endpoints),)), fabric_config)
        assert (out.resource, out.status) == ("vpc-r", want), endpoints
        if want is Status.FAIL:
            assert "logs" in out.message or not endpoints


@pytest.mark.parametrize("ingress, groups, want", [
    (None, ("sg-e",), Status.PASS),
    ((), ("sg-e",), Status.FAIL),                                      # admits nobody: the router cannot use it
    (("tcp", 443, 443, "cidr", "10.0.0.0/8"), ("sg-e",), Status.FAIL),   # a CIDR beside the router
    (("tcp", 443, 443, "group", "sg-x"), ("sg-e",), Status.FAIL),        # another group
    (("tcp", 80, 80, "group", "sg-r"), ("sg-e",), Status.FAIL),          # the router, on the wrong port
    (("-1", None, None, "group", "sg-r"), ("sg-e",), Status.FAIL),       # the router, on every port
    (None, (), Status.FAIL),                                           # endpoints without a group of their own
    (None, ("sg-gone",), Status.FAIL),                                 # a group that is not in the VPC
])
def test_router_endpoints_admit_https_from_the_router_only(fabric_config, ingress, groups, want):
    from compliance.checks.vpc.vpc_router_endpoint_ingress import vpc_router_endpoint_ingress
    from compliance.inventory import Rule

    router_rule = Rule("tcp", 443, 443, source_group="sg-r")
    if ingress is None:
        rules = (router_rule,)
    elif not ingress:
        rules = ()
    else:
        proto, lo, hi, kind, src = ingress
        extra = Rule(proto, lo, hi, cidr=src) if kind == "cidr" else Rule(proto, lo, hi, source_group=src)
        rules = (extra,) if proto == "-1" or lo == 80 else (router_rule, extra)
    outs = vpc_router_endpoint_ingress(inv(router_vpcs=(_router_vpc(endpoint_groups=groups, ingress=rules),),
                                           router_groups=("sg-r",)), fabric_config)
    assert [o.status for o in outs] == [want]


def test_a_group_tagged_with_another_role_is_not_the_router_whatever_its_name():
    """The router VPC's endpoint group is named <fabric>-router-endpoints: read as a router group, a worker group
    admitting it (or an endpoint group admitting itself) would pass."""
    from compliance.checks.vpc._vpcs import worker_groups
    from compliance.collect.network import _has_role
    from compliance.inventory import SecurityGroup

    tagged = {"GroupName": "f-router-endpoints", "Tags": [{"Key": "comfyfab:role", "Value": "endpoints"}]}
    assert not _has_role(tagged, "router")
    assert _has_role({"GroupName": "f-router", "Tags": [{"Key": "comfyfab:role", "Value": "router"}]}, "router")
    assert _has_role({"GroupName": "legacy-Router-sg"}, "router")          # untagged: the name decides
    assert not _has_role({"GroupName": "f-workers", "Tags": [{"Key": "comfyfab:role", "Value": "worker"}]}, "router")
    vpc = Vpc(tenant="t", security_groups=(
        SecurityGroup("sg-1", "t-workers", "v", tags={"comfyfab:role": "worker"}),
        SecurityGroup("sg-2", "t-worker-endpoints", "v", tags={"comfyfab:role": "endpoints"}),
        SecurityGroup("sg-3", "old-worker-sg", "v")))
    assert [g.group_id for g in worker_groups(vpc)] == ["sg-1", "sg-3"]


def test_tenant_endpoints_admit_https_from_the_tenant_workers_only(fabric_config):
    from compliance.checks.vpc.vpc_endpoint_ingress_workers_only import vpc_endpoint_ingress_workers_only
    from compliance.inventory import Rule, SecurityGroup

    def vpc(rules, endpoint_groups=("sg-e",)):
        groups = (SecurityGroup("sg-w", "t-workers", "vpc-t", tags={"comfyfab:role": "worker"}),
                  SecurityGroup("sg-e", "t-endpoints", "vpc-t", ingress=rules, tags={"comfyfab:role": "endpoints"}))
        return Vpc(tenant=fabric_config.tenants[0].id, vpc_id="vpc-t", endpoints=("ecr.api", "s3", "sqs"),
                   endpoint_groups=endpoint_groups, security_groups=groups)

    workers = Rule("tcp", 443, 443, source_group="sg-w")
    for rules, groups, want in [((workers,), ("sg-e",), Status.PASS),
                                ((workers, Rule("tcp", 443, 443, source_group="sg-router")), ("sg-e",), Status.FAIL),
                                ((workers, Rule("tcp", 443, 443, cidr="10.0.0.0/8")), ("sg-e",), Status.FAIL),
                                ((), ("sg-e",), Status.FAIL), ((workers,), (), Status.FAIL)]:
        outs = vpc_endpoint_ingress_workers_only(inv(vpcs=(vpc(rules, groups),), router_groups=("sg-router",)),
                                                 fabric_config)
        assert [o.status for o in outs] == [want], (rules, groups)
