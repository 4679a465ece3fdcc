"""The job table's conditional transitions (embedded DynamoDB)."""
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pipeline.jobs import JobExists, JobStore
from pipeline.models import InferenceJob, JobRecord, JobStatus

WF = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}}


@pytest.fixture
def store(cloud):
    ddb = cloud.client("dynamodb")
    ddb.create_table(TableName="jobs", KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    return JobStore(cloud, "jobs")


def record(tenant="acme-health", **kw):
    job = InferenceJob(priority="realtime", workflow=WF, resolution=(64, 64), seed=1, model="tiny", **kw)
    return JobRecord.new(job, tenant, datetime(2026, 1, 1, tzinfo=timezone.utc), ttl_hours=72)


def test_create_sets_ttl_72h_after_creation(store):
    r = store.create(record())
    assert r.ttl - int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()) == 72 * 3600
    assert store.get(r.jobId) == r


def test_repeat_job_id_is_refused_with_the_stored_record(store):
    r = store.create(record())
    with pytest.raises(JobExists) as e:
        store.create(record(jobId=r.jobId))
    assert e.value.record.jobId == r.jobId


def test_lifecycle_and_no_second_run_after_success(store):
    r = store.create(record())
    assert store.start(r.jobId, "w1", attempt=1)
    assert store.succeed(r.jobId, "w1", ["k/1.png"], "arn:key")
    got = store.get(r.jobId)
    assert got.status is JobStatus.SUCCEEDED and got.outputs == ("k/1.png",) and got.kmsKeyId == "arn:key"
    assert not store.start(r.jobId, "w2", attempt=2), "a succeeded job must not start again"
    assert not store.attempt_failed(r.jobId, "late", final=True)


def test_only_the_running_worker_can_succeed(store):
    r = store.create(record())
    store.start(r.jobId, "w1", 1)
    store.start(r.jobId, "w2", 2)  # redelivered to w2 after w1's lease was lost
    assert not store.succeed(r.jobId, "w1", ["a"], "k")
    assert store.succeed(r.jobId, "w2", ["b"], "k")


def test_final_failure_is_terminal(store):
    r = store.create(record())
    store.start(r.jobId, "w1", 1)
    assert store.attempt_failed(r.jobId, "boom", final=False)
    assert store.get(r.jobId).status is JobStatus.RUNNING
    store.start(r.jobId, "w1", 2)
    assert store.attempt_failed(r.jobId, "boom again", final=True)
    got = store.get(r.jobId)
    assert got.status is JobStatus.FAILED and got.error == "boom again"
    assert not store.start(r.jobId, "w3", 3)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.sampled_from(["start", "succeed", "fail", "final"]), min_size=1, max_size=8))
def test_terminal_states_never_change(store, ops):
    r = store.create(record())
    terminal = None
    for i, op in enumerate(ops):
        worker = f"w{i % 2}"
        if op == "start":
            store.start(r.jobId, worker, i)
        elif op == "succeed":
            store.succeed(r.jobId, worker, ["x"], "k")
        else:
            store.attempt_failed(r.jobId, op, final=(op == "final"))
        status = store.get(r.jobId).status
        if terminal is not None:
            assert status is terminal
        if status.terminal:
            terminal = status
