"""The shared fabric as a whole: discovery equals provisioning, tenants never share a resource."""
from __future__ import annotations

import pytest

from pipeline.provision import MissingResourceError, discover


def test_discover_returns_what_provision_made(fabric):
    assert discover(fabric.cloud, fabric.cfg) == fabric.res


def test_tenants_get_distinct_resources(fabric):
    res = fabric.res
    n = len(fabric.cfg.tenants)
    assert n >= 2
    for f in ["key_id", "key_arn", "bucket", "vpc_id", "vpc_cidr", "nacl_id", "worker_sg_id", "endpoint_sg_id",
              "route_table_id", "peering_id", "flow_log_group", "flow_log_id", "worker_role_arn", "flow_log_role_arn"]:
        values = [getattr(tr, f) for tr in res.tenants.values()]
        assert len(set(values)) == n, f
    for f in ["queue_urls", "queue_arns", "dlq_urls", "dlq_arns", "endpoint_ids"]:
        values = [v for tr in res.tenants.values() for v in getattr(tr, f).values()]
        assert len(set(values)) == len(values), f
    subnets = [s for tr in res.tenants.values() for s in tr.subnet_ids]
    alarms = [a for tr in res.tenants.values() for a in tr.alarm_names]
    assert len(set(subnets)) == len(subnets) and len(set(alarms)) == len(alarms)
    shared = {res.table_key_id, res.audit_key_id}
    assert not shared & {tr.key_id for tr in res.tenants.values()}


def test_discover_under_another_fabric_name_finds_nothing(fabric):
    with pytest.raises(MissingResourceError, match="alias/other/"):
        discover(fabric.cloud, fabric.cfg.with_overrides({"name": "other"}))


def test_the_embedded_backend_has_no_gaps(fabric):
    assert fabric.res.unsupported == ()
