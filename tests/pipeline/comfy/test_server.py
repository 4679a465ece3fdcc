"""The stand-in over real HTTP: /prompt, /history, /view, /object_info, /queue, /system_stats."""
from __future__ import annotations

import hashlib
import io
import json
import time

import httpx
import pytest
from PIL import Image

from pipeline.comfy.workflows import txt2img


def _finish(base, prompt_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = httpx.get(f"{base}/history/{prompt_id}").json()
        if prompt_id in entry:
            return entry[prompt_id]
        time.sleep(0.02)
    raise AssertionError(f"prompt {prompt_id} did not finish")


def _png(base, prompt):
    reply = httpx.post(f"{base}/prompt", json={"prompt": prompt, "client_id": "tests"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {"prompt_id", "number", "node_errors"} and body["node_errors"] == {}
    entry = _finish(base, body["prompt_id"])
    assert entry["status"]["status_str"] == "success", entry["status"]
    (ref,) = entry["outputs"]["9"]["images"]
    view = httpx.get(f"{base}/view", params=ref)
    assert view.status_code == 200 and view.headers["content-type"] == "image/png"
    assert view.headers["content-disposition"] == f'inline; filename="{ref["filename"]}"'
    return entry, ref, view.content


def test_txt2img_end_to_end_over_http(torch_server):
    entry, ref, png = _png(torch_server.url, txt2img("a red bicycle", seed=7, filename_prefix="e2e/bike"))
    assert ref["subfolder"] == "e2e" and ref["type"] == "output"
    assert ref["filename"].startswith("bike_") and ref["filename"].endswith("_.png")
    image = Image.open(io.BytesIO(png))
    assert image.size == (64, 64) and image.mode == "RGB"
    assert json.loads(image.text["prompt"])["6"]["inputs"]["text"] == "a red bicycle"
    number, prompt_id, prompt, extra, outputs = entry["prompt"]
    assert prompt["3"]["inputs"]["seed"] == 7 and extra == {"client_id": "tests"} and outputs == ["9"]
    events = [m[0] for m in entry["status"]["messages"]]
    assert events == ["execution_start", "execution_cached", "execution_success"]
    assert entry["meta"]["9"]["node_id"] == "9"


def test_same_seed_same_bytes_different_seed_different_bytes(torch_server):
    base = torch_server.url
    _, first_ref, first = _png(base, txt2img("a lighthouse", seed=11))
    _, second_ref, second = _png(base, txt2img("a lighthouse", seed=11))
    _, _, other = _png(base, txt2img("a lighthouse", seed=12))
    assert first_ref["filename"] != second_ref["filename"]  # a new file each time, like ComfyUI
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    assert first != other


def test_batch_of_two_and_an_sdxl_shaped_model(torch_server):
    entry, _, _ = _png(torch_server.url, txt2img("x", batch_size=1, ckpt="tiny-xl.safetensors", width=72))
    assert Image.open(io.BytesIO(httpx.get(f"{torch_server.url}/view", params=entry["outputs"]["9"]["images"][0])
                                 .content)).size == (72, 64)
    reply = httpx.post(f"{torch_server.url}/prompt", json={"prompt": txt2img("x", batch_size=2)})
    images = _finish(torch_server.url, reply.json()["prompt_id"])["outputs"]["9"]["images"]
    assert len(images) == 2 and images[0]["filename"] != images[1]["filename"]


def test_loader_output_is_cached_across_prompts(torch_server):
    base = torch_server.url
    _png(base, txt2img("warm", seed=1))
    entry, _, _ = _png(base, txt2img("again", seed=2))
    cached = dict(entry["status"]["messages"])["execution_cached"]["nodes"]
    assert cached == ["4"]


def test_invalid_prompt_is_refused_with_comfyui_error_shape(noop_server):
    prompt = txt2img("x", sampler="warp_drive")
    reply = httpx.post(f"{noop_server.url}/prompt", json={"prompt": prompt})
    assert reply.status_code == 400
    body = reply.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["3"]["errors"][0]["type"] == "value_not_in_list"
    assert httpx.get(f"{noop_server.url}/queue").json()["queue_pending"] == []


@pytest.mark.parametrize("payload,kind", [({"client_id": "x"}, "no_prompt"), ({"prompt": 5}, "invalid_prompt")])
def test_malformed_requests(noop_server, payload, kind):
    reply = httpx.post(f"{noop_server.url}/prompt", json=payload)
    assert reply.status_code == 400 and reply.json()["error"]["type"] == kind
    raw = httpx.post(f"{noop_server.url}/prompt", content=b"{not json", headers={"content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_prompt"
    for route in ("/queue", "/history"):
        assert httpx.post(f"{noop_server.url}{route}", content=b"[1").status_code == 400
        assert httpx.post(f"{noop_server.url}{route}", json=[1]).status_code == 400


def test_object_info_has_comfyui_shape(noop_server):
    info = httpx.get(f"{noop_server.url}/object_info").json()
    assert set(info) >= {"CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler",
                         "VAEDecode", "SaveImage"}
    ks = info["KSampler"]
    assert ks["output"] == ["LATENT"] and ks["output_node"] is False and ks["category"] == "sampling"
    assert ks["input"]["required"]["seed"] == ["INT", {"default": 0, "min": 0, "max": 2 ** 64 - 1,
                                                       "control_after_generate": True}]
    assert {"euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "ddim"} <= set(
        ks["input"]["required"]["sampler_name"][0])
    assert {"normal", "karras"} <= set(ks["input"]["required"]["scheduler"][0])
    assert ks["input_order"]["required"][:3] == ["model", "seed", "steps"]
    assert info["CheckpointLoaderSimple"]["output"] == ["MODEL", "CLIP", "VAE"]
    assert "tiny.safetensors" in info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert info["SaveImage"]["output_node"] is True and info["SaveImage"]["output"] == []
    assert info["EmptyLatentImage"]["input"]["required"]["width"][1]["min"] == 16
    one = httpx.get(f"{noop_server.url}/object_info/VAEDecode").json()
    assert one == {"VAEDecode": info["VAEDecode"]}
    assert httpx.get(f"{noop_server.url}/object_info/Nope").json() == {}


def test_view_refuses_bad_paths(noop_server):
    base = noop_server.url
    assert httpx.get(f"{base}/view", params={"filename": "../etc/passwd"}).status_code == 400
    assert httpx.get(f"{base}/view", params={"filename": "a.png", "subfolder": "../.."}).status_code == 403
    assert httpx.get(f"{base}/view", params={"filename": "absent.png"}).status_code == 404
    assert httpx.get(f"{base}/view", params={"filename": "a.png", "type": "input"}).status_code == 400
    assert httpx.get(f"{base}/view").status_code == 400


def test_save_outside_output_folder_fails_the_prompt(noop_server):
    reply = httpx.post(f"{noop_server.url}/prompt", json={"prompt": txt2img("x", filename_prefix="../../escape")})
    entry = _finish(noop_server.url, reply.json()["prompt_id"])
    assert entry["status"]["status_str"] == "error"
    error = dict(entry["status"]["messages"])["execution_error"]
    assert error["node_id"] == "9" and "outside the output folder" in error["exception_message"]


def test_system_stats_queue_and_history_routes(noop_server):
    base = noop_server.url
    stats = httpx.get(f"{base}/system_stats").json()
    assert set(stats) == {"system", "devices"} and stats["devices"][0]["type"] == "cpu"
    assert {"ram_total", "ram_free", "comfyui_version", "python_version", "pytorch_version"} <= set(stats["system"])
    assert httpx.get(f"{base}/prompt").json() == {"exec_info": {"queue_remaining": 0}}
    reply = httpx.post(f"{base}/prompt", json={"prompt": txt2img("x", seed=2 ** 64 - 1), "prompt_id": "fixed-id-1"})
    assert reply.json()["prompt_id"] == "fixed-id-1"
    _finish(base, "fixed-id-1")
    assert "fixed-id-1" in httpx.get(f"{base}/history", params={"max_items": 50}).json()
    assert httpx.post(f"{base}/history", json={"delete": ["fixed-id-1"]}).status_code == 200
    assert httpx.get(f"{base}/history/fixed-id-1").json() == {}
    assert httpx.get(f"{base}/queue").json() == {"queue_running": [], "queue_pending": []}


def test_view_streams_a_large_file_and_reads_a_small_one_at_once(noop_server, monkeypatch):
    import pipeline.comfy.server as server_module

    (noop_server.output_dir / "big.png").write_bytes(b"\x89PNG" + bytes(4096))
    small = httpx.get(f"{noop_server.url}/view", params={"filename": "big.png"})
    monkeypatch.setattr(server_module, "_INLINE_VIEW_BYTES", 1024)
    large = httpx.get(f"{noop_server.url}/view", params={"filename": "big.png"})
    for reply in (small, large):
        assert reply.status_code == 200 and reply.content == b"\x89PNG" + bytes(4096)
        assert reply.headers["content-disposition"] == 'inline; filename="big.png"'
    assert "etag" in large.headers and "etag" not in small.headers  # FileResponse for the large one
