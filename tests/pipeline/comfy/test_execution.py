"""Queue, fault hook, interrupt and the noop engine."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from pipeline.comfy.client import ComfyClient, ComfyExecutionError
from pipeline.comfy.engines import NoopEngine, NoopTensor
from pipeline.comfy.server import ComfyServer
from pipeline.comfy.workflows import txt2img


def _wait_entry(base, prompt_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = httpx.get(f"{base}/history/{prompt_id}").json()
        if prompt_id in got:
            return got[prompt_id]
        time.sleep(0.02)
    raise AssertionError("no history entry")


def test_fault_hook_fails_the_prompt_like_a_node_exception(tmp_path):
    def fault(prompt):
        return "GPU fell off the bus" if "boom" in prompt["6"]["inputs"]["text"] else None

    with ComfyServer(engine="noop", output_dir=tmp_path, fault=fault) as server, \
            ComfyClient(server.url) as client:
        assert client.run(txt2img("fine"))  # the hook lets other prompts through
        with pytest.raises(ComfyExecutionError, match="GPU fell off the bus") as failure:
            client.run(txt2img("boom"))
        details = failure.value.details
        assert details["exception_type"] == "pipeline.comfy.executor.InjectedFault"
        assert details["node_id"] == "6" and details["node_type"] == "CLIPTextEncode"
        assert details["executed"] == ["4"]  # the cached loader
        assert isinstance(details["traceback"], list)
        entry = _wait_entry(server.url, failure.value.prompt_id)  # the socket may report before it is stored
        assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
        assert entry["outputs"] == {}
        assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_error"
        assert len(list(tmp_path.glob("*.png"))) == 1


def test_one_execution_at_a_time_and_queue_reports_it(tmp_path):
    gate = threading.Event()
    running = []

    def hold(prompt):
        running.append(prompt["3"]["inputs"]["seed"])
        gate.wait(20)
        return None

    with ComfyServer(engine="noop", output_dir=tmp_path, fault=hold) as server:
        base = server.url
        ids = [httpx.post(f"{base}/prompt", json={"prompt": txt2img("x", seed=s)}).json()["prompt_id"]
               for s in range(3)]
        deadline = time.monotonic() + 10
        while not running and time.monotonic() < deadline:
            time.sleep(0.01)
        queue = httpx.get(f"{base}/queue").json()
        assert [item[1] for item in queue["queue_running"]] == ids[:1]
        assert [item[1] for item in queue["queue_pending"]] == ids[1:]
        assert httpx.get(f"{base}/prompt").json()["exec_info"]["queue_remaining"] == 3
        httpx.post(f"{base}/queue", json={"delete": [ids[2]]})
        gate.set()
        assert _wait_entry(base, ids[1])["status"]["status_str"] == "success"
        assert running == [0, 1]
        assert httpx.get(f"{base}/history/{ids[2]}").json() == {}


def test_interrupt_stops_the_running_prompt(tmp_path):
    started, release = threading.Event(), threading.Event()

    def hold(prompt):
        started.set()
        release.wait(20)
        return None

    with ComfyServer(engine="noop", output_dir=tmp_path, fault=hold) as server:
        prompt_id = httpx.post(f"{server.url}/prompt", json={"prompt": txt2img("x")}).json()["prompt_id"]
        assert started.wait(10)
        httpx.post(f"{server.url}/interrupt")
        release.set()
        entry = _wait_entry(server.url, prompt_id)
    assert entry["status"]["status_str"] == "error"
    interrupted = dict(entry["status"]["messages"])["execution_interrupted"]
    assert interrupted["node_type"] == "KSampler" and interrupted["node_id"] == "3"


def test_noop_engine_is_deterministic_and_seeded(noop_client):
    (_, first), = noop_client.run(txt2img("x", seed=5, width=512, height=256))
    (_, again), = noop_client.run(txt2img("x", seed=5, width=512, height=256))
    (_, other), = noop_client.run(txt2img("x", seed=6, width=512, height=256))
    assert first == again and first != other
    pixels = NoopEngine().pixels(NoopTensor("IMAGE", 512, 256, 2, 5))
    assert [p.shape for p in pixels] == [(64, 64, 3), (64, 64, 3)] and (pixels[0] != pixels[1]).any()
    # the pixels themselves follow the seed, not only the prompt in the PNG's text chunk
    assert all(bool((NoopEngine().pixels(NoopTensor("IMAGE", 64, 64, 1, s))[0] == pixels[0]).all()) is (s == 5)
               for s in (5, 6, 7))
    assert len(first) < 4096  # a gradient: small in every hop a job's image makes


def test_noop_engine_reports_progress_and_validates_like_torch(noop_client):
    seen = []
    noop_client.run(txt2img("x", steps=5), on_progress=lambda v, m: seen.append((v, m)))
    assert seen == [(i, 5) for i in range(1, 6)]
    assert noop_client.object_info() == httpx.get(f"{noop_client.url}/object_info").json()
