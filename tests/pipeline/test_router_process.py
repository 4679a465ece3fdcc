"""The router as its own process (``Stack(router_process=True)``, ``python -m pipeline.router``).

It is configured only by its spec file (config, endpoint, key digests, catalog, delivery key) and
finds the fabric's resources itself; everything a client sees must be what the in-process router
gives, and its audit events must reach CloudWatch Logs even though it is stopped by its parent."""
from __future__ import annotations

import json
import os
import time
import uuid

import httpx
import pytest

from pipeline.client import RouterClient
from pipeline.comfy.workflows import txt2img
from pipeline.stack import Stack

pytestmark = pytest.mark.integration


def _job(prompt="a lighthouse"):
    return {"jobId": str(uuid.uuid4()), "priority": "standard", "resolution": [64, 64], "seed": 3,
            "model": "tiny-sd:1", "workflow": txt2img(prompt, seed=3, steps=2)}


def test_router_process_serves_the_same_api_and_flushes_its_audit_on_exit(embedded_aws, fabric_config):
    embedded_aws.reset()
    cloud = embedded_aws.cloud()
    cfg = fabric_config.first_tenants(2)
    a, b = (t.id for t in cfg.tenants)
    # audit batches ship only every 10 minutes here: what reaches CloudWatch is the flush on exit
    stack = Stack(cfg, cloud=cloud, engine="noop", cold_starts=False, autoscale=False, router_process=True,
                  audit_flush_s=600)
    stack.start()
    try:
        assert stack.router_pid != os.getpid()
        ca, cb = RouterClient(stack.router_url, stack.api_keys[a]), RouterClient(stack.router_url, stack.api_keys[b])
        ok = _job()
        r = ca.submit(ok)
        assert r.status_code == 202 and r.json()["tenantId"] == a
        deadline = time.monotonic() + 30
        while ca.status(ok["jobId"]).json().get("status") != "succeeded":
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.1)
        result = ca.result(ok["jobId"])
        assert result.status_code == 200 and "no-store" in result.headers["cache-control"]
        assert cb.result(ok["jobId"]).status_code == 404  # another tenant's job does not exist for b
        phi_job = _job("patient SSN 123-45-6789")
        r = ca.submit(phi_job)
        assert r.status_code == 422 and "123-45-6789" not in r.text
        assert stack.store.get(phi_job["jobId"]) is None
        assert httpx.post(f"{stack.router_url}/v1/jobs", json=_job(),
                          headers={"Authorization": "Bearer cfk_nope"}).status_code == 401
        ca.close()
        cb.close()
    finally:
        stack.stop()
    logs = cloud.client("logs")
    events = [json.loads(e["message"]) for e in logs.filter_log_events(logGroupName=cfg.audit_log_group(),
                                                                        logStreamNamePrefix="router-")["events"]]
    refused = [e for e in events if e.get("event") == "phi_rejected" and e.get("jobId") == phi_job["jobId"]]
    accepted = [e for e in events if e.get("event") == "job_accepted" and e.get("jobId") == ok["jobId"]]
    assert refused and accepted, "the router process's audit events were lost when it stopped"
    assert "123-45-6789" not in str(refused)


def test_the_router_spec_carries_the_whole_backend():
    """A router process reaches the same AWS as its parent: every BackendSpec field (a profile too)."""
    import dataclasses

    from comfyfab.cloud import BackendSpec

    spec = BackendSpec(kind="aws", region="eu-west-1", profile="prod-readonly",
                       service_endpoints={"dynamodb": "http://127.0.0.1:8001"})
    assert BackendSpec(**json.loads(json.dumps(dataclasses.asdict(spec)))) == spec
