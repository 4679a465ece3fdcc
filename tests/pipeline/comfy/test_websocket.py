"""The /ws message sequence of one prompt, as ComfyUI sends it."""
from __future__ import annotations

import json

import httpx
from websockets.sync.client import connect

from pipeline.comfy.workflows import txt2img


def _messages_until_done(ws, prompt_id):
    out = []
    while True:
        message = json.loads(ws.recv(timeout=60))
        out.append(message)
        data = message["data"]
        if message["type"] == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
            return out


def _ours(messages, prompt_id):
    return [(m["type"], m["data"].get("node")) for m in messages if m["data"].get("prompt_id") == prompt_id]


def test_message_sequence_of_a_txt2img_prompt(torch_server):
    ws_url = "ws" + torch_server.url[4:] + "/ws?clientId=seq-client"
    with connect(ws_url) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "status" and hello["data"]["sid"] == "seq-client"
        assert hello["data"]["status"]["exec_info"]["queue_remaining"] >= 0
        prompt_id = httpx.post(f"{torch_server.url}/prompt", json={
            "prompt": txt2img("waves", seed=3, steps=3, ckpt="tiny-xl.safetensors"),
            "client_id": "seq-client"}).json()["prompt_id"]
        messages = _messages_until_done(ws, prompt_id)
    ours = _ours(messages, prompt_id)
    kinds = [k for k, _ in ours]
    assert kinds[:2] == ["execution_start", "execution_cached"]
    assert kinds[-2:] == ["execution_success", "executing"]
    executing = [node for kind, node in ours if kind == "executing" and node is not None]
    cached = next(m for m in messages if m["type"] == "execution_cached")["data"]["nodes"]
    assert sorted(executing + cached) == ["3", "4", "5", "6", "7", "8", "9"]
    assert executing.index("3") < executing.index("8") < executing.index("9")
    progress = [m["data"] for m in messages if m["type"] == "progress"]
    assert [(p["value"], p["max"], p["node"]) for p in progress] == [(1, 3, "3"), (2, 3, "3"), (3, 3, "3")]
    executed = [m["data"] for m in messages if m["type"] == "executed"]
    assert len(executed) == 1 and executed[0]["node"] == "9"
    assert executed[0]["output"]["images"][0]["type"] == "output"
    assert any(m["type"] == "status" and "sid" not in m["data"] for m in messages)  # queue broadcasts


def test_other_clients_do_not_get_my_execution_messages(noop_server):
    base = "ws" + noop_server.url[4:]
    with connect(base + "/ws?clientId=me") as mine, connect(base + "/ws?clientId=bystander") as theirs:
        mine.recv(timeout=10)
        theirs.recv(timeout=10)
        prompt_id = httpx.post(f"{noop_server.url}/prompt", json={
            "prompt": txt2img("x"), "client_id": "me"}).json()["prompt_id"]
        assert _ours(_messages_until_done(mine, prompt_id), prompt_id)
        seen = []
        try:
            while True:
                seen.append(json.loads(theirs.recv(timeout=0.3)))
        except TimeoutError:
            pass
    assert seen and all(m["type"] == "status" for m in seen)


def test_the_worker_client_asks_for_no_compression_and_still_follows_progress(noop_server):
    from pipeline.comfy.client import ComfyClient

    with ComfyClient(noop_server.url, timeout=30) as client:
        ws = client._connect()
        assert ws is not None
        try:
            # nothing negotiated: the handshake offered no permessage-deflate
            assert ws.protocol.extensions == []
            assert "Sec-WebSocket-Extensions" not in ws.request.headers
        finally:
            ws.close()
        seen = []
        images = client.run(txt2img("x", steps=2), on_progress=lambda v, m: seen.append((v, m)))
    assert images and seen[-1] == (2, 2)
