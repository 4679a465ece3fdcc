"""discover() finds what provision() made, creates nothing, and names what is missing."""
from __future__ import annotations

import pytest

from pipeline.provision import MissingResourceError, ProvisioningError, discover, provision



def test_discover_on_an_empty_account_names_every_missing_piece(cloud, fabric_config):
    cfg = fabric_config.first_tenants(2)
    with pytest.raises(MissingResourceError) as info:
        discover(cloud, cfg)
    err = info.value
    assert isinstance(err, ProvisioningError)
    text = str(err)
    for name in (cfg.table_name(), cfg.audit_bucket_name(), cfg.alarm_topic_name(), cfg.audit_log_group()):
        assert name in text
    for t in cfg.tenants:
        for name in (cfg.key_alias(t.id), cfg.queue_name(t.id, "realtime"), cfg.flow_log_group(t.id),
                     f"{cfg.name}-{t.id}"):
            assert name in text
    for cls in ("realtime", "standard", "batch"):
        assert cfg.queue_name(cfg.tenants[0].id, cls, dlq=True) in text
    # discovery created nothing
    assert cloud.client("s3").list_buckets()["Buckets"] == []
    assert cloud.client("sqs").list_queues().get("QueueUrls", []) == []
    assert cloud.client("ec2").describe_vpcs(Filters=[{"Name": "tag-key", "Values": ["comfyfab:fabric"]}])["Vpcs"] == []


def test_discover_names_exactly_the_resource_that_was_removed(fabric):
    cloud, cfg, made = fabric.cloud, fabric.cfg, fabric.res
    tid = cfg.tenants[1].id
    sqs = cloud.client("sqs")
    sqs.delete_queue(QueueUrl=made.tenants[tid].queue_urls["standard"])
    with pytest.raises(MissingResourceError) as info:
        discover(cloud, cfg)
    assert info.value.missing == (f"SQS queue {cfg.queue_name(tid, 'standard')}",)
    with pytest.raises(Exception):
        sqs.get_queue_url(QueueName=cfg.queue_name(tid, "standard"))   # discovery did not recreate it
    assert provision(cloud, cfg) == made   # provisioning puts it back under the same name
