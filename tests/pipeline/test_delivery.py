"""Signed-cookie delivery: the verifier's rules (unit) and the edge over HTTP (embedded backend)."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import given, settings, strategies as st

from pipeline.delivery import (COOKIE_POLICY, COOKIE_SIGNATURE, CookieSigner, CookieVerifier, DeliveryDenied,
                               KeyPair)

KEY = KeyPair.generate("KTEST")
OTHER = KeyPair.generate("KTEST")  # same id, different key: a forged signer
EDGE = "http://edge.test"


def verifier():
    return CookieVerifier({KEY.key_id: KEY.private_key.public_key()})


def cookies(resource=f"{EDGE}/acme/*", ttl=900, key=KEY):
    return CookieSigner(key).cookies(resource, datetime.now(timezone.utc) + timedelta(seconds=ttl))


def test_valid_cookies_cover_the_tenant_path():
    verifier().verify(cookies(), f"{EDGE}/acme/job/1.png")


@pytest.mark.parametrize("mutate,reason", [
    (lambda c: {**c, COOKIE_SIGNATURE: cookies(key=OTHER)[COOKIE_SIGNATURE]}, "signature"),
    (lambda c: {**c, COOKIE_POLICY: cookies(resource=f"{EDGE}/*")[COOKIE_POLICY]}, "signature"),
    (lambda c: {k: v for k, v in c.items() if k != COOKIE_SIGNATURE}, "missing"),
    (lambda c: {**c, "CloudFront-Key-Pair-Id": "KNOPE"}, "unknown key"),
])
def test_tampered_cookies_are_refused(mutate, reason):
    with pytest.raises(DeliveryDenied, match=reason):
        verifier().verify(mutate(cookies()), f"{EDGE}/acme/job/1.png")


def test_expired_cookies_are_refused():
    c = cookies(ttl=60)
    verifier().verify(c, f"{EDGE}/acme/x.png", now=time.time() + 59)
    with pytest.raises(DeliveryDenied, match="expired"):
        verifier().verify(c, f"{EDGE}/acme/x.png", now=time.time() + 61)


@settings(max_examples=40, deadline=None)
@given(own=st.from_regex(r"[a-z]{3,8}", fullmatch=True), other=st.from_regex(r"[a-z]{3,8}", fullmatch=True),
       key=st.from_regex(r"[a-z0-9/._-]{1,30}", fullmatch=True))
def test_a_tenants_cookies_never_open_another_tenants_path(own, other, key):
    c = cookies(resource=f"{EDGE}/{own}/*")
    if other == own or other.startswith(own + "/"):
        return
    with pytest.raises(DeliveryDenied):
        verifier().verify(c, f"{EDGE}/{other}/{key}")


@pytest.mark.integration
def test_edge_serves_only_with_the_owners_cookies(backend_cloud, backend_config):
    from pipeline.client import RouterClient
    from pipeline.comfy.workflows import txt2img
    from pipeline.stack import Stack

    cfg = backend_config.first_tenants(2)
    with Stack(cfg, cloud=backend_cloud, engine="noop", cold_starts=False, autoscale=False) as stack:
        a, b = (t.id for t in cfg.tenants)
        ca, cb = RouterClient(stack.router_url, stack.api_keys[a]), RouterClient(stack.router_url, stack.api_keys[b])
        job = {"jobId": str(uuid.uuid4()), "priority": "realtime", "resolution": [64, 64], "seed": 3,
               "model": "tiny-sd:1", "workflow": txt2img("a cat", seed=3)}
        assert ca.submit(job).status_code == 202
        assert ca.wait(job["jobId"], 60)["status"] == "succeeded"
        cdn_url = ca.result(job["jobId"]).json()["outputs"][0]["cdnUrl"]

        sa = httpx.post(f"{stack.router_url}/v1/session", headers={"Authorization": f"Bearer {stack.api_keys[a]}"})
        sb = httpx.post(f"{stack.router_url}/v1/session", headers={"Authorization": f"Bearer {stack.api_keys[b]}"})
        assert sa.status_code == 200 and sa.headers["cache-control"] == "no-store, no-cache"
        set_cookie = sa.headers.get_list("set-cookie")
        assert len(set_cookie) == 3 and all("Secure" in c and "HttpOnly" in c and f"Path=/{a}/" in c
                                            for c in set_cookie)

        ok = httpx.get(cdn_url, cookies=dict(sa.cookies))
        assert ok.status_code == 200 and ok.content.startswith(b"\x89PNG")
        assert ok.headers["cache-control"] == "no-store, no-cache"
        assert httpx.get(cdn_url).status_code == 403
        denied = httpx.get(cdn_url, cookies=dict(sb.cookies))
        assert denied.status_code == 403 and denied.json()["error"] == "access_denied"
        ca.close()
        cb.close()
