"""Property-based tests of the isolation and compliance invariants on the running pipeline.

Each property drives the real router over HTTP (embedded backend, no-op
executor) with generated inputs; hypothesis shrinks any counterexample to a
minimal job.
"""
from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from comfyfab.config import PRIORITY_ORDER
from pipeline.client import RouterClient
from pipeline.comfy.workflows import txt2img
from pipeline.stack import Stack

from .faults import FAIL_MARK, fault

pytestmark = pytest.mark.integration
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PHI = {
    "SSN": st.builds(lambda a, b, c: f"SSN {a:03d}-{b:02d}-{c:04d}", st.integers(100, 665), st.integers(1, 99),
                     st.integers(1, 9999)),
    "EMAIL": st.builds(lambda u, d: f"{u}@{d}.org", st.from_regex(r"[a-z]{3,8}", fullmatch=True),
                       st.from_regex(r"[a-z]{3,8}", fullmatch=True)),
    "DOB": st.builds(lambda m, d, y: f"DOB: {m:02d}/{d:02d}/{y}", st.integers(1, 12), st.integers(1, 28),
                     st.integers(1930, 2020)),
    "MRN": st.builds(lambda n: f"MRN {n:08d}", st.integers(10**6, 10**8 - 1)),
    "PHONE": st.builds(lambda a, b, c: f"call ({a}) {b}-{c:04d}", st.integers(201, 989), st.integers(200, 999),
                       st.integers(0, 9999)),
}
PLACES = ["positive", "negative", "prefix"]


@pytest.fixture(scope="module")
def stack(embedded_aws, fabric_config):
    embedded_aws.reset()
    cfg = fabric_config.first_tenants(3)
    with Stack(cfg, cloud=embedded_aws.cloud(), engine="noop", fault=fault, cold_starts=False,
               autoscale=False) as s:
        yield s


@pytest.fixture(scope="module")
def clients(stack):
    cs = {t.id: RouterClient(stack.router_url, stack.api_keys[t.id]) for t in stack.cfg.tenants}
    yield cs
    for c in cs.values():
        c.close()


def job(priority="standard", positive="a lighthouse", negative="", prefix="comfyfab", seed=1):
    return {"jobId": str(uuid.uuid4()), "priority": priority, "resolution": [64, 64], "seed": seed,
            "model": "tiny-sd:1",
            "workflow": txt2img(positive, negative=negative, seed=seed, steps=2, filename_prefix=prefix)}


def queued(stack, tenant):
    return sum(stack.queues.depth(tenant, c, in_flight=True) for c in PRIORITY_ORDER)


@SETTINGS
@given(entity=st.sampled_from(sorted(PHI)), data=st.data(), place=st.sampled_from(PLACES),
       tenant_i=st.integers(0, 2), priority=st.sampled_from(PRIORITY_ORDER))
def test_phi_anywhere_is_refused_and_leaves_no_trace(stack, clients, entity, data, place, tenant_i, priority):
    value = data.draw(PHI[entity])
    tenant = stack.cfg.tenants[tenant_i].id
    fields = {"positive": "a portrait", "negative": "", "prefix": "out"}
    fields[place] = f"{fields[place]} {value}".strip()
    j = job(priority, fields["positive"], fields["negative"], fields["prefix"])
    before = queued(stack, tenant)
    r = clients[tenant].submit(j)
    assert r.status_code == 422 and r.json()["error"] == "phi_detected"
    assert entity in {f["entity"] for f in r.json()["findings"]}
    assert value not in r.text
    assert stack.store.get(j["jobId"]) is None
    assert queued(stack, tenant) == before


@SETTINGS
@given(owner_i=st.integers(0, 2), reader_i=st.integers(0, 2), priority=st.sampled_from(PRIORITY_ORDER),
       seed=st.integers(0, 2**32))
def test_only_the_owner_ever_sees_a_job(stack, clients, owner_i, reader_i, priority, seed):
    owner, reader = stack.cfg.tenants[owner_i].id, stack.cfg.tenants[reader_i].id
    j = job(priority, seed=seed)
    assert clients[owner].submit(j).status_code == 202
    status, result = clients[reader].status(j["jobId"]), clients[reader].result(j["jobId"])
    if reader == owner:
        assert status.status_code == 200 and status.json()["tenantId"] == owner
    else:
        assert status.status_code == 404 and result.status_code == 404
        assert owner not in status.text and owner not in result.text


@SETTINGS
@given(times=st.integers(1, 4), tenant_i=st.integers(0, 2))
def test_a_job_id_is_accepted_once_however_often_it_is_sent(stack, clients, times, tenant_i):
    tenant = stack.cfg.tenants[tenant_i].id
    j = job()
    codes = [clients[tenant].submit(j).status_code for _ in range(times)]
    assert codes == [202] + [200] * (times - 1)
    assert clients[tenant].wait(j["jobId"], 60)["status"] == "succeeded"
    keys = stack.cloud.client("s3").list_object_versions(
        Bucket=stack.resources.tenants[tenant].bucket, Prefix=f"{tenant}/{j['jobId']}/").get("Versions", [])
    assert len(keys) == 1


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcomes=st.lists(st.tuples(st.booleans(), st.sampled_from(PRIORITY_ORDER)), min_size=1, max_size=4),
       tenant_i=st.integers(0, 2))
def test_every_accepted_job_ends_with_exactly_one_outcome(stack, clients, outcomes, tenant_i):
    """Succeeded with exactly one output, in its own tenant's bucket under its own tenant's key; or failed,
    in its class DLQ, with no output anywhere."""
    tenant = stack.cfg.tenants[tenant_i].id
    jobs = [(job(prio, prefix=FAIL_MARK if fails else "ok"), fails) for fails, prio in outcomes]
    for j, _ in jobs:
        assert clients[tenant].submit(j).status_code == 202
    s3 = stack.cloud.client("s3")
    for j, fails in jobs:
        status = clients[tenant].wait(j["jobId"], 60)["status"]
        outputs = s3.list_objects_v2(Bucket=stack.resources.tenants[tenant].bucket,
                                     Prefix=f"{tenant}/{j['jobId']}/").get("KeyCount", 0)
        if fails:
            assert status == "failed" and outputs == 0
            dlq = stack.queues.dlq_messages(tenant, j["priority"], wait_s=15, until=j["jobId"])
            assert j["jobId"] in [m["jobId"] for m in dlq]
        else:
            assert status == "succeeded" and outputs == 1
            key = stack.store.get(j["jobId"]).outputs[0]
            own = stack.resources.tenants[tenant]
            head = s3.head_object(Bucket=own.bucket, Key=key)
            assert head["SSEKMSKeyId"] in (own.key_arn, own.key_id), "encrypted under its own tenant's key"
        for other, res in stack.resources.tenants.items():
            if other != tenant:
                assert s3.list_objects_v2(Bucket=res.bucket, Prefix=f"{tenant}/{j['jobId']}/").get("KeyCount", 0) == 0
                assert s3.list_objects_v2(Bucket=res.bucket, Prefix=f"{other}/{j['jobId']}/").get("KeyCount", 0) == 0


@SETTINGS
@given(tenant_i=st.integers(0, 2))
def test_every_delivery_credential_expires_within_900_s(stack, clients, tenant_i):
    import json as _json
    import time as _time
    from urllib.parse import parse_qs, urlparse

    from pipeline.delivery import COOKIE_POLICY, _unb64

    tenant = stack.cfg.tenants[tenant_i].id
    j = job()
    clients[tenant].submit(j)
    clients[tenant].wait(j["jobId"], 60)
    for out in clients[tenant].result(j["jobId"]).json()["outputs"]:
        assert 0 < int(parse_qs(urlparse(out["url"]).query)["X-Amz-Expires"][0]) <= 900
    r = __import__("httpx").post(f"{stack.router_url}/v1/session",
                                 headers={"Authorization": f"Bearer {stack.api_keys[tenant]}"})
    policy = _json.loads(_unb64(r.cookies[COOKIE_POLICY]))
    left = policy["Statement"][0]["Condition"]["DateLessThan"]["AWS:EpochTime"] - _time.time()
    assert 0 < left <= 900
