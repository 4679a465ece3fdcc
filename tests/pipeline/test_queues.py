"""FIFO queues: message groups, deduplication, redrive (embedded SQS)."""
import json
from collections import Counter

import pytest
from hypothesis import given, strategies as st

from comfyfab.config import PRIORITY_ORDER, load_config
from pipeline.queues import JobQueues, message_group


@pytest.fixture
def queues(cloud):
    cfg = load_config()
    sqs = cloud.client("sqs")
    urls, dlqs = {}, {}
    for t in cfg.tenants:
        for c in PRIORITY_ORDER:
            cls = cfg.queues.cls(c)
            dlq = sqs.create_queue(QueueName=cfg.queue_name(t.id, c, dlq=True), Attributes={"FifoQueue": "true"})
            arn = sqs.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            q = sqs.create_queue(QueueName=cfg.queue_name(t.id, c), Attributes={
                "FifoQueue": "true", "VisibilityTimeout": str(cls.visibility_timeout_s),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": cls.max_receive_count})})
            urls[(t.id, c)], dlqs[(t.id, c)] = q["QueueUrl"], dlq["QueueUrl"]
    return JobQueues(cloud, cfg, urls, dlqs)


@given(st.uuids(version=4))
def test_message_group_is_stable_and_in_range(u):
    g = message_group(str(u), 64)
    assert g == message_group(str(u), 64) and 0 <= int(g[1:]) < 64


def test_jobs_spread_over_groups_so_a_pool_drains_in_parallel():
    import uuid
    groups = Counter(message_group(str(uuid.uuid4()), 64) for _ in range(2000))
    assert len(groups) == 64 and max(groups.values()) < 3 * 2000 / 64


def _ids_in_distinct_groups(n, groups=64):
    import uuid
    seen, ids = set(), []
    while len(ids) < n:
        j = str(uuid.uuid4())
        if message_group(j, groups) not in seen:
            seen.add(message_group(j, groups))
            ids.append(j)
    return ids


def test_parallel_receivers_each_get_a_message(queues):
    t = "acme-health"
    for j in _ids_in_distinct_groups(6):
        queues.send(t, "standard", {"jobId": j, "tenantId": t})
    got = [queues.receive(t, "standard") for _ in range(6)]
    assert all(len(g) == 1 for g in got), "FIFO groups must not serialise one tenant's queue"
    assert len({g[0].job_id for g in got}) == 6


def test_one_group_is_served_in_order_one_at_a_time(queues):
    """Why jobs are spread: SQS FIFO holds back a group while one of its messages is in flight."""
    t = "acme-health"
    first = _ids_in_distinct_groups(1)[0]
    sqs, url = queues._sqs, queues.urls[(t, "standard")]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"jobId": f"{first}-{i}"}),
                         MessageGroupId="one", MessageDeduplicationId=str(i))
    assert len(queues.receive(t, "standard")) == 1
    assert queues.receive(t, "standard") == []


def test_same_job_id_is_deduplicated(queues):
    t = "acme-health"
    body = {"jobId": "00000000-0000-4000-8000-000000000001", "tenantId": t}
    queues.send(t, "realtime", body)
    queues.send(t, "realtime", body)
    assert queues.depth(t, "realtime") == 1


def test_two_failed_receives_move_the_message_to_the_dlq(queues):
    t = "globex-retail"
    queues.send(t, "batch", {"jobId": "00000000-0000-4000-8000-000000000009", "tenantId": t})
    for attempt in (1, 2):
        d = queues.receive(t, "batch")[0]
        assert d.receive_count == attempt
        queues.release(d)
    assert queues.receive(t, "batch") == []
    assert [m["jobId"] for m in queues.dlq_messages(t, "batch")] == ["00000000-0000-4000-8000-000000000009"]


def test_dlq_peek_sees_every_message_and_leaves_them_in_place(queues, cloud):
    """More than one receive's worth (10): the peek walks past the first batch, then puts all back."""
    t, sqs = "globex-retail", cloud.client("sqs")
    url = queues.dlq_urls[(t, "standard")]
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(13)]
    for i, job_id in enumerate(ids):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"jobId": job_id}), MessageGroupId=f"g{i}",
                         MessageDeduplicationId=job_id)
    assert sorted(m["jobId"] for m in queues.dlq_messages(t, "standard")) == ids
    assert sorted(m["jobId"] for m in queues.dlq_messages(t, "standard")) == ids
    assert queues.dlq_depth(t, "standard") == 13


def test_dlq_peek_until_a_job_waits_for_it_and_gives_up_after_wait_s(queues):
    t = "globex-retail"
    first, second = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
    for job_id in (first, second):
        queues.send(t, "realtime", {"jobId": job_id, "tenantId": t})
        for _ in (1, 2):
            queues.release(queues.receive(t, "realtime")[0])
    queues.receive(t, "realtime")  # moves both to the DLQ
    assert second in [m["jobId"] for m in queues.dlq_messages(t, "realtime", until=second)]
    missing = "00000000-0000-4000-8000-00000000000c"
    assert missing not in [m["jobId"] for m in queues.dlq_messages(t, "realtime", wait_s=0.3, until=missing)]


def test_counts_split_visible_from_held(queues):
    t = "globex-retail"
    for j in _ids_in_distinct_groups(5):
        queues.send(t, "batch", {"jobId": j, "tenantId": t})
    held = [queues.receive(t, "batch") for _ in range(2)]
    counts = queues.counts(t)
    assert counts["batch"] == (3, 2) and counts["realtime"] == (0, 0)
    assert queues.depths(t)["batch"] == 3
    for got in held:
        queues.delete(got[0])


def test_the_eta_counts_busy_workers_a_separate_router_cannot_see(queues):
    """A router in its own process knows only the warm pool; the workers holding messages are at least
    the fleet, so a backlog on an autoscaled fleet is divided among them, not among the warm few."""
    from pipeline.models import InferenceJob
    from pipeline.router.service import RouterService

    cfg = queues.cfg
    t = "initech-legal"
    svc = RouterService(cfg=cfg, cloud=None, store=None, queues=queues, audit=None, api_keys={},
                        object_info=dict, bucket_of={})
    job = InferenceJob.model_validate({"jobId": "00000000-0000-4000-8000-000000000001", "priority": "realtime",
                                       "resolution": [1024, 1024], "seed": 1, "model": "sdxl-base:1",
                                       "workflow": {"3": {"class_type": "KSampler", "inputs": {"steps": 20}}}})
    one = cfg.tenant_gpu(t).service_time("sdxl", 1024, 20).mean_s
    warm = max(1, cfg.fleet.warm_realtime_workers)
    ids = _ids_in_distinct_groups(16)
    for j in ids:
        queues.send(t, "realtime", {"jobId": j, "tenantId": t})
    assert svc.eta_s(t, job) == pytest.approx(one * (1 + 16 / warm))
    busy = max(warm + 3, 6)
    held = [queues.receive(t, "realtime")[0] for _ in range(busy)]
    svc._depth_cache.clear()
    assert svc.eta_s(t, job) == pytest.approx(one * (1 + (16 - busy) / busy))
    # a router beside the fleet knows its size; the busy count never lowers it
    svc.pool_size = lambda tenant: busy + 4
    svc._depth_cache.clear()
    assert svc.eta_s(t, job) == pytest.approx(one * (1 + (16 - busy) / (busy + 4)))
    for d in held:
        queues.delete(d)
