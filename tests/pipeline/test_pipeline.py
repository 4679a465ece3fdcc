"""The five layers end to end over real HTTP, on every backend ``--backends`` names.

One stack per module (no-op executor engine, fault hook armed by a marker in
the workflow); each test uses fresh job ids so tests do not interfere.
"""
from __future__ import annotations

import time
import uuid

import httpx
import pytest

from comfyfab.config import PRIORITY_ORDER
from pipeline.client import RouterClient
from pipeline.comfy.workflows import txt2img
from pipeline.stack import Stack

from .faults import FAIL_MARK, fault

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def stack(backend_cloud, backend_config):
    cfg = backend_config.first_tenants(2)
    s = Stack(cfg, cloud=backend_cloud, engine="noop", fault=fault, cold_starts=False, autoscale=False)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tenants(stack):
    return [t.id for t in stack.cfg.tenants]


@pytest.fixture(scope="module")
def clients(stack, tenants):
    cs = {t: RouterClient(stack.router_url, stack.api_keys[t]) for t in tenants}
    yield cs
    for c in cs.values():
        c.close()


def job(priority="realtime", seed=1, prefix="comfyfab", prompt="a lighthouse", **extra):
    return {"jobId": str(uuid.uuid4()), "priority": priority, "resolution": [64, 64], "seed": seed,
            "model": "tiny-sd:1", "workflow": txt2img(prompt, seed=seed, steps=2, filename_prefix=prefix), **extra}


def depth_total(stack, tenant):
    return sum(stack.queues.depth(tenant, c, in_flight=True) for c in PRIORITY_ORDER)


@pytest.mark.parametrize("priority", PRIORITY_ORDER)
def test_job_runs_end_to_end_and_is_delivered_by_presigned_url(stack, clients, tenants, priority):
    c = clients[tenants[0]]
    j = job(priority)
    r = c.submit(j)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["jobId"] == j["jobId"] and body["priority"] == priority and body["etaSeconds"] >= 0
    assert body["estimatedCompletionAt"] >= body["createdAt"]
    assert r.headers["cache-control"] == "no-store, no-cache"
    assert c.wait(j["jobId"], timeout_s=60)["status"] == "succeeded"
    res = c.result(j["jobId"])
    assert res.status_code == 200 and res.headers["cache-control"] == "no-store, no-cache"
    out = res.json()
    assert out["expiresIn"] == 900
    png = httpx.get(out["outputs"][0]["url"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert "X-Amz-Expires=900" in out["outputs"][0]["url"]


def test_every_output_carries_the_tenant_kms_key(stack, clients, tenants):
    s3 = stack.cloud.client("s3")
    for t in tenants:
        j = job("standard")
        assert clients[t].submit(j).status_code == 202
        assert clients[t].wait(j["jobId"], 60)["status"] == "succeeded"
        key = stack.store.get(j["jobId"]).outputs[0]
        head = s3.head_object(Bucket=stack.resources.tenants[t].bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] in (stack.resources.tenants[t].key_arn, stack.resources.tenants[t].key_id)
        other = [o for o in tenants if o != t][0]
        assert head["SSEKMSKeyId"] not in (stack.resources.tenants[other].key_arn, stack.resources.tenants[other].key_id)


def test_cross_tenant_read_of_a_result_is_refused(stack, clients, tenants):
    a, b = tenants
    j = job()
    clients[a].submit(j)
    clients[a].wait(j["jobId"], 60)
    for r in (clients[b].result(j["jobId"]), clients[b].status(j["jobId"])):
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        assert "outputs" not in r.text
    assert clients[a].result(j["jobId"]).status_code == 200


def test_cross_tenant_submit_is_forbidden_and_nothing_is_enqueued(stack, clients, tenants):
    a, b = tenants
    before = depth_total(stack, b), depth_total(stack, a)
    j = job(tenantId=b)
    r = clients[a].submit(j)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert stack.store.get(j["jobId"]) is None
    assert (depth_total(stack, b), depth_total(stack, a)) == before


def test_phi_payload_gets_422_and_is_neither_enqueued_nor_stored(stack, clients, tenants):
    a = tenants[0]
    before = depth_total(stack, a)
    j = job(prompt="chest x-ray for patient, SSN 123-45-6789, DOB: 04/12/1961")
    r = clients[a].submit(j)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "phi_detected"
    entities = {f["entity"] for f in body["findings"]}
    assert {"SSN", "DOB"} <= entities
    assert all(f["field"].endswith("inputs.text") for f in body["findings"])
    assert "123-45-6789" not in r.text and "04/12/1961" not in r.text
    assert stack.store.get(j["jobId"]) is None
    assert depth_total(stack, a) == before
    events = stack.audit.events()
    phi_events = [e for e in events if e["event"] == "phi_rejected" and e.get("jobId") == j["jobId"]]
    assert phi_events and "123-45-6789" not in str(phi_events)


def test_executor_failing_twice_ends_in_the_dlq_with_status_failed(stack, clients, tenants):
    a = tenants[0]
    j = job("realtime", prefix=FAIL_MARK)
    assert clients[a].submit(j).status_code == 202
    st = clients[a].wait(j["jobId"], 60)
    assert st["status"] == "failed" and "injected executor failure" in st["error"]
    assert st["attempts"] == 2
    assert j["jobId"] in [m["jobId"] for m in stack.queues.dlq_messages(a, "realtime", wait_s=15, until=j["jobId"])]
    assert clients[a].result(j["jobId"]).status_code == 409


def test_an_accepted_job_says_where_the_routers_time_went(stack, clients, tenants):
    """``Server-Timing`` on POST /v1/jobs: the checks, the record write and the SQS send, each within the
    whole handling; an idempotent resubmission sends nothing, so it has no ``enqueue``."""
    from pipeline.loadgen import server_timing

    c = clients[tenants[0]]
    j = job("standard")
    first, again = c.submit(j), c.submit(j)
    assert first.status_code == 202 and again.status_code == 200
    timing = server_timing(first.headers["server-timing"])
    assert set(timing) == {"checks", "store", "enqueue", "handler"}, first.headers["server-timing"]
    assert all(v > 0 for v in timing.values())
    assert timing["checks"] + timing["store"] + timing["enqueue"] <= timing["handler"]
    assert set(server_timing(again.headers["server-timing"])) == {"checks", "store", "handler"}
    c.wait(j["jobId"], 60)


def test_resubmitted_job_id_produces_one_output(stack, clients, tenants):
    a = tenants[0]
    j = job("standard")
    first = clients[a].submit(j)
    again = clients[a].submit(j)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["jobId"] == j["jobId"]
    clients[a].wait(j["jobId"], 60)
    # A duplicate delivery outside SQS's dedup window (new dedup id) must not run again.
    rec = stack.store.get(j["jobId"])
    stack.cloud.client("sqs").send_message(
        QueueUrl=stack.queues.urls[(a, "standard")], MessageBody=__import__("json").dumps(
            {**j, "tenantId": a, "createdAt": rec.createdAt, "ttl": rec.ttl}),
        MessageGroupId="dup", MessageDeduplicationId=str(uuid.uuid4()))
    # Wait for the worker's verdict itself: the queue can read empty (message deleted)
    # a moment before the worker records the drop.
    def dropped():
        return any(e[1] == "duplicate_dropped" and e[2] == j["jobId"] for e in stack.events)

    deadline = time.time() + 30
    while not dropped() and time.time() < deadline:
        time.sleep(0.1)
    assert dropped()
    while depth_total(stack, a) and time.time() < deadline:
        time.sleep(0.1)
    versions = stack.cloud.client("s3").list_object_versions(
        Bucket=stack.resources.tenants[a].bucket, Prefix=f"{a}/{j['jobId']}/").get("Versions", [])
    assert len(versions) == 1


def test_the_same_job_id_sent_at_once_by_many_clients_is_accepted_once(stack, clients, tenants):
    from concurrent.futures import ThreadPoolExecutor

    a = tenants[0]
    j = job("realtime")
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(lambda _: clients[a].submit(j).status_code, range(8)))
    assert codes == [200] * 7 + [202]
    assert clients[a].wait(j["jobId"], 60)["status"] == "succeeded"
    versions = stack.cloud.client("s3").list_object_versions(
        Bucket=stack.resources.tenants[a].bucket, Prefix=f"{a}/{j['jobId']}/").get("Versions", [])
    assert len(versions) == 1
    assert sum(1 for e in stack.events if e[1] == "started" and e[2] == j["jobId"]) == 1


def _record_only(stack, tenant, payload, queued_for_s):
    """What a router that died between writing the record and sending the message leaves: a record
    queued for ``queued_for_s`` seconds (by the router's clock) and no message."""
    from datetime import timedelta

    from pipeline.models import InferenceJob, JobRecord, utcnow

    now = utcnow()
    record = JobRecord.new(InferenceJob.model_validate(payload), tenant, now, stack.cfg.jobs.ttl_hours,
                           now=now - timedelta(seconds=queued_for_s))
    stack.store.create(record)
    return record


def test_a_job_whose_router_died_before_sending_runs_when_resubmitted(stack, clients, tenants):
    a = tenants[0]
    j = job("standard")
    _record_only(stack, a, j, stack.cfg.router.requeue_after_s + 5)
    r = clients[a].submit(j)
    assert r.status_code == 200 and r.json()["status"] == "queued"
    assert clients[a].wait(j["jobId"], 60)["status"] == "succeeded"
    assert sum(1 for e in stack.events if e[1] == "started" and e[2] == j["jobId"]) == 1


def test_a_recently_queued_resubmission_is_not_sent_again(stack, clients, tenants):
    # Within requeue_after_s the first router may still be sending: the answer is 200 and nothing is enqueued.
    a = tenants[1]
    j = job("batch")
    before = depth_total(stack, a)
    _record_only(stack, a, j, 0)
    assert clients[a].submit(j).status_code == 200
    assert depth_total(stack, a) == before
    assert stack.store.get(j["jobId"]).status.value == "queued"
    stack.store.delete(j["jobId"])


def test_a_stale_resubmission_of_a_job_that_was_sent_still_runs_once(stack, clients, tenants):
    # The message did go out (the job only waited long): the copy is deduplicated by SQS, or dropped by the
    # worker that finds the record no longer queued; either way one run, one output.
    a = tenants[0]
    j = job("realtime")
    rec = _record_only(stack, a, j, stack.cfg.router.requeue_after_s + 5)
    stack.queues.send(a, "realtime", {**j, "tenantId": a, "createdAt": rec.createdAt, "ttl": rec.ttl})
    assert clients[a].submit(j).status_code == 200
    assert clients[a].wait(j["jobId"], 60)["status"] == "succeeded"
    deadline = time.time() + 30
    while depth_total(stack, a) and time.time() < deadline:
        time.sleep(0.1)
    versions = stack.cloud.client("s3").list_object_versions(
        Bucket=stack.resources.tenants[a].bucket, Prefix=f"{a}/{j['jobId']}/").get("Versions", [])
    assert len(versions) == 1
    assert sum(1 for e in stack.events if e[1] == "started" and e[2] == j["jobId"]) == 1


def test_every_job_accepted_under_concurrent_load_runs_once(stack, clients, tenants):
    # Submissions, receives, deletes and conditional writes all at once: none may be lost or doubled.
    # On the embedded backend this guards against moto's own races too; they are rare over HTTP
    # (one job lost in about two thousand), so tests/comfyfab/test_moto_threads.py provokes them.
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(tenants[i % 2], job(PRIORITY_ORDER[i % 3], seed=i)) for i in range(60)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda tj: clients[tj[0]].submit(tj[1]).status_code, jobs))
    assert codes == [202] * len(jobs)
    for t, j in jobs:
        assert clients[t].wait(j["jobId"], 120)["status"] == "succeeded", j["jobId"]
    for t, j in jobs:
        assert sum(1 for e in stack.events if e[1] == "started" and e[2] == j["jobId"]) == 1, j["jobId"]


def test_a_job_resubmitted_with_another_workflow_is_a_conflict(stack, clients, tenants):
    a, b = tenants
    j = job()
    assert clients[a].submit(j).status_code == 202
    assert clients[a].submit({**j, "seed": 99, "workflow": txt2img("x", seed=99)}).status_code == 409
    assert clients[b].submit(j).status_code == 409


@pytest.mark.parametrize("content,status,error", [
    (b"{not json", 400, "malformed_json"),
    (b"[1, 2]", 422, "invalid_job"),
    (b'{"priority": "urgent"}', 422, "invalid_job"),
])
def test_bad_bodies_get_precise_json_errors(stack, tenants, content, status, error):
    r = httpx.post(f"{stack.router_url}/v1/jobs", content=content,
                   headers={"Authorization": f"Bearer {stack.api_keys[tenants[0]]}"})
    assert r.status_code == status and r.json()["error"] == error


def test_oversized_body_gets_413(stack, tenants):
    big = b'{"pad": "' + b"x" * (stack.cfg.router.max_body_bytes + 1) + b'"}'
    r = httpx.post(f"{stack.router_url}/v1/jobs", content=big,
                   headers={"Authorization": f"Bearer {stack.api_keys[tenants[0]]}"})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


def test_missing_and_unknown_keys_get_401(stack):
    assert httpx.post(f"{stack.router_url}/v1/jobs", json=job()).status_code == 401
    r = httpx.get(f"{stack.router_url}/v1/jobs/x", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"


def test_schema_errors_name_the_field(stack, clients, tenants):
    r = clients[tenants[0]].submit({**job(), "resolution": [63, 64], "jobId": "not-a-uuid"})
    assert r.status_code == 422
    fields = {f["field"] for f in r.json()["fields"]}
    assert {"resolution", "jobId"} <= fields


def test_invalid_workflow_gets_comfyui_error_shape(stack, clients, tenants):
    wf = txt2img("a cat")
    ks = next(k for k, n in wf.items() if n["class_type"] == "KSampler")
    wf[ks]["inputs"]["sampler_name"] = "no_such_sampler"
    r = clients[tenants[0]].submit({**job(), "workflow": wf})
    assert r.status_code == 400
    body = r.json()
    assert "error" in body and ks in body["node_errors"]
    assert body["node_errors"][ks]["errors"][0]["type"] == "value_not_in_list"


def test_a_client_created_at_is_kept_only_near_the_routers_clock(stack, clients, tenants):
    # The record's 72 h TTL counts from createdAt: a far one would cut retention short or stretch it.
    from datetime import datetime, timedelta, timezone

    c = clients[tenants[0]]
    now = datetime.now(timezone.utc)
    for far in (now - timedelta(days=3), now + timedelta(hours=1)):
        j = job(createdAt=far.isoformat())
        r = c.submit(j)
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["error"] == "invalid_job" and body["fields"][0]["field"] == "createdAt"
        assert stack.store.get(j["jobId"]) is None
    near = (now - timedelta(seconds=20)).replace(microsecond=0)
    for stamp in (near.isoformat(), near.replace(tzinfo=None).isoformat()):   # an offset-less time is UTC
        j = job(createdAt=stamp)
        assert c.submit(j).status_code == 202
        rec = stack.store.get(j["jobId"])
        assert rec.createdAt.startswith(near.strftime("%Y-%m-%dT%H:%M:%S"))
        assert rec.ttl == int((near + timedelta(hours=stack.cfg.jobs.ttl_hours)).timestamp())
        assert c.wait(j["jobId"], 60)["status"] == "succeeded"


def test_openapi_is_served(stack):
    assert httpx.get(f"{stack.router_url}/docs").status_code == 200
    assert "/v1/jobs" in httpx.get(f"{stack.router_url}/openapi.json").json()["paths"]


def test_a_job_whose_message_cannot_be_sent_is_refused_whole_and_can_be_retried(stack, clients, tenants, monkeypatch):
    # 503 with a JSON body, no record left behind, and the same jobId accepted once SQS answers again.
    a = tenants[0]
    j = job("standard")
    calls = []

    def record(model, **_):
        calls.append(model.name)

    ddb = stack.service.store._ddb
    ddb.meta.events.register("before-call.dynamodb.*", record)

    def refuse(*args, **kwargs):
        raise RuntimeError("SQS is unreachable")

    try:
        with monkeypatch.context() as m:
            m.setattr(stack.service.queues, "send", refuse)
            r = clients[a].submit(j)
    finally:
        ddb.meta.events.unregister("before-call.dynamodb.*", record)
    assert r.status_code == 503 and "retry with the same jobId" in r.json()["message"]
    assert stack.store.get(j["jobId"]) is None
    assert {"PutItem", "DeleteItem"} <= set(calls)
    # every table operation that path made is one the router role may make on AWS
    from pipeline.provision.iam import router_policy
    [records] = [s for s in router_policy([], [], [], "arn:t", "arn:g")["Statement"] if s["Sid"] == "JobRecords"]
    assert {f"dynamodb:{c}" for c in calls} <= set(records["Action"])
    assert clients[a].submit(j).status_code == 202
    assert clients[a].wait(j["jobId"], 60)["status"] == "succeeded"
