"""ComfyClient against the stand-in: run, validation errors, polling fallback, timeouts."""
from __future__ import annotations

import io
import threading

import pytest
from PIL import Image

from pipeline.comfy.client import (ComfyClient, ComfyError, ComfyExecutionError, ComfyTimeout,
                                   ComfyValidationError, _Followed)
from pipeline.comfy.server import ComfyServer
from pipeline.comfy.workflows import txt2img


def test_run_returns_png_bytes_with_progress(torch_client):
    seen = []
    (name, png), = torch_client.run(txt2img("a kite", seed=21, steps=4), on_progress=lambda v, m: seen.append(v))
    assert name.endswith("_.png") and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(png)).size == (64, 64)
    assert seen == [1, 2, 3, 4]


def test_queue_then_wait_and_view(torch_client):
    prompt_id = torch_client.queue_prompt(txt2img("a kite", seed=21, steps=4))
    entry = torch_client.wait(prompt_id, timeout=60)
    (ref,) = torch_client.images(entry)
    assert torch_client.view(ref["filename"], ref["subfolder"]) == torch_client.run(
        txt2img("a kite", seed=21, steps=4))[0][1]


def test_validation_error_carries_comfyui_body(noop_client):
    with pytest.raises(ComfyValidationError) as refused:
        noop_client.queue_prompt(txt2img("x", steps=0))
    assert refused.value.body["error"]["type"] == "prompt_outputs_failed_validation"
    assert refused.value.node_errors["3"]["errors"][0]["type"] == "value_smaller_than_min"


def test_polling_fallback_without_websocket(noop_client, monkeypatch):
    monkeypatch.setattr(noop_client, "_connect", lambda: None)
    assert len(noop_client.run(txt2img("x", batch_size=3))) == 3


def test_timeout_and_unreachable_server(tmp_path):
    release = threading.Event()
    with ComfyServer(engine="noop", output_dir=tmp_path, fault=lambda p: release.wait(20) and None) as server:
        with ComfyClient(server.url) as client:
            prompt_id = client.queue_prompt(txt2img("x"))
            with pytest.raises(ComfyTimeout):
                client.wait(prompt_id, timeout=0.3)
            release.set()
            assert client.wait(prompt_id, timeout=20)["status"]["status_str"] == "success"
        url = server.url
    with ComfyClient(url, timeout=2) as gone:
        with pytest.raises(ComfyError):
            gone.object_info()


def test_kept_socket_survives_idle_time_and_shared_use(noop_server):
    from concurrent.futures import ThreadPoolExecutor

    with ComfyClient(noop_server.url) as idle, ComfyClient(noop_server.url) as busy:
        seen = []
        idle.run(txt2img("x", steps=3), on_progress=lambda v, m: seen.append(v))
        for seed in range(30):  # queue status piles up on the idle client's socket
            busy.run(txt2img("x", seed=seed))
        idle.run(txt2img("x", steps=3, seed=99), on_progress=lambda v, m: seen.append(v))
        assert seen == [1, 2, 3, 1, 2, 3]
        with ThreadPoolExecutor(4) as pool:  # one client, four threads at once
            results = list(pool.map(lambda s: busy.run(txt2img("x", seed=1000 + s)), range(8)))
        assert all(len(r) == 1 for r in results)
        assert len({r[0][0] for r in results}) == 8


def _count_history(client, monkeypatch):
    calls = []
    real = client.history

    def counted(prompt_id=None):
        calls.append(prompt_id)
        return real(prompt_id)

    monkeypatch.setattr(client, "history", counted)
    return calls


def test_a_followed_run_is_answered_from_the_socket_alone(tmp_path, monkeypatch):
    def fault(prompt):
        return "out of memory" if "boom" in prompt["6"]["inputs"]["text"] else None

    with ComfyServer(engine="noop", output_dir=tmp_path, fault=fault) as server, ComfyClient(server.url) as client:
        calls = _count_history(client, monkeypatch)
        for seed in range(3):  # the loader is cached after the first run; SaveImage never is
            (name, png), = client.run(txt2img("x", seed=seed))
            assert png == (tmp_path / name).read_bytes()
        with pytest.raises(ComfyExecutionError, match="out of memory") as failure:
            client.run(txt2img("boom"))
        assert failure.value.details["node_type"] == "CLIPTextEncode"
        assert calls == []  # outputs from `executed`, the failure from `execution_error`
    with ComfyServer(engine="noop", output_dir=tmp_path) as server, ComfyClient(server.url) as client:
        calls = _count_history(client, monkeypatch)
        monkeypatch.setattr(client, "_connect", lambda: None)  # no socket: /history answers
        assert len(client.run(txt2img("x", seed=7))) == 1 and calls


def _followed(prompt, *messages):
    seen = _Followed("p1", prompt)
    for kind, data in messages:
        seen.note(kind, {"prompt_id": "p1", **data})
    return seen


def test_the_socket_answer_needs_every_output_node_seen():
    wf = txt2img("x")  # node 9 (SaveImage) is the graph's only sink
    image = {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}
    ok = _followed(wf, ("execution_cached", {"nodes": ["4"]}), ("executed", {"node": "9", "output": image}),
                   ("execution_success", {}))
    assert ok.complete() and ComfyClient.images(ok.entry()) == image["images"]
    # A ComfyUI that serves a cached output node without `executed`: ask /history.
    assert not _followed(wf, ("execution_cached", {"nodes": ["4", "9"]}), ("execution_success", {})).complete()
    assert not _followed(wf, ("execution_success", {})).complete()  # no output seen at all
    assert not _followed(None, ("executed", {"node": "9", "output": image}),
                         ("execution_success", {})).complete()  # the graph is unknown
    assert not _followed(wf, ("executing", {"node": None})).complete()  # an end without its outcome
    failed = _followed(wf, ("execution_error", {"node_id": "3", "exception_message": "boom"}))
    assert failed.complete() and failed.entry()["status"]["status_str"] == "error"


def test_an_error_answer_is_a_comfy_error_naming_the_status_and_query_values_are_encoded(noop_client):
    with pytest.raises(ComfyError, match=r"GET .*/view answered 404"):
        noop_client.view("no such file & more.png")
    (name, png), = noop_client.run(txt2img("x", seed=3))
    assert noop_client.view(name) == png
    noop_client.interrupt()  # nothing running: ComfyUI answers 200 and so must the call
