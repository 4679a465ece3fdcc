"""Same-shape prompts sampled together (``python -m pipeline.comfy --max-batch N``)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.comfy.archs import checkpoint_names
from pipeline.comfy.batching import batch_key
from pipeline.comfy.engines import TorchEngine, TorchOptions
from pipeline.comfy.executor import ExecutionService
from pipeline.comfy.models import load_bundle
from pipeline.comfy.sampling import encode_text, ksample
from pipeline.comfy.workflows import txt2img


def _wf(text="a lighthouse", seed=1, prefix="p", **kw):
    return txt2img(text, seed=seed, steps=kw.pop("steps", 3), width=64, height=64, filename_prefix=prefix, **kw)


def test_batch_key_ignores_seed_text_and_prefix_and_refuses_what_cannot_batch():
    assert batch_key(_wf("a", 1, "x")) == batch_key(_wf("b", 2, "y")) is not None
    assert batch_key(_wf(steps=3)) != batch_key(_wf(steps=4))
    ancestral = _wf()
    ancestral["3"]["inputs"]["sampler_name"] = "euler_ancestral"  # its steps draw noise for the whole batch
    assert batch_key(ancestral) is None
    two = _wf()
    two["5"]["inputs"]["batch_size"] = 2
    assert batch_key(two) is None
    extra = _wf()
    extra["99"] = {"class_type": "LatentUpscale", "inputs": {}}
    assert batch_key(extra) is None
    partial = _wf()
    partial["3"]["inputs"]["denoise"] = 0.5
    assert batch_key(partial) is None


def test_batched_samples_equal_their_unbatched_runs():
    b = load_bundle("tiny.safetensors")
    texts, seeds = ["a red cube", "a blue sphere, very long " * 20, "x"], [4, 9, 4]
    pos = [encode_text(b, t) for t in texts]
    neg = [encode_text(b, "")] * 3
    together = ksample(b, pos, neg, torch.zeros(3, 4, 8, 8), seeds, 3, 6.0, "dpmpp_2m", "karras")
    for i in range(3):
        alone = ksample(b, pos[i], neg[i], torch.zeros(1, 4, 8, 8), seeds[i], 3, 6.0, "dpmpp_2m", "karras")
        assert torch.allclose(together[i:i + 1], alone, atol=1e-4), i
    with pytest.raises(ValueError, match="2 seeds for a batch of 3"):
        ksample(b, pos, neg, torch.zeros(3, 4, 8, 8), [1, 2], 3, 6.0, "dpmpp_2m", "karras")


def run_queued(tmp_path, prompts, max_batch, options=TorchOptions(cpu_threads=1)):
    """Queue ``prompts`` on a torch-engine executor before it starts (so same-shape ones can batch),
    run them, and return the service and each prompt's image."""
    service = ExecutionService(TorchEngine(options=options), tmp_path, lambda: checkpoint_names(None),
                               lambda *_: None, max_batch=max_batch)
    ids = [service.submit(p)["prompt_id"] for p in prompts]  # all queued before the worker starts
    service.start()
    try:
        deadline = time.monotonic() + 120
        while service.queue.remaining():
            assert time.monotonic() < deadline, "the prompts did not finish"
            time.sleep(0.02)
    finally:
        service.stop()
    images = []
    for pid in ids:
        entry = service.queue.get_history(pid)[pid]
        assert entry["status"]["status_str"] == "success", entry["status"]
        (ref,) = entry["outputs"]["9"]["images"]
        images.append(np.asarray(Image.open(tmp_path / ref["subfolder"] / ref["filename"]), dtype=int))
    return service, images


def test_queued_same_shape_prompts_run_as_one_batch_with_their_own_outputs(tmp_path):
    prompts = [_wf("a lighthouse", 1, "one"), _wf("a harbour", 2, "two"), _wf("a storm", 3, "three"),
               _wf("odd one out", 4, "four", steps=2)]
    batched, got = run_queued(tmp_path / "b", prompts, max_batch=4)
    alone, want = run_queued(tmp_path / "a", prompts, max_batch=1)
    assert batched.batches == [3] and alone.batches == []  # the 2-step prompt could not join
    for g, w in zip(got, want):
        assert np.abs(g - w).max() <= 2  # the same image up to float rounding in a batched convolution
    assert not np.array_equal(got[0], got[1])  # and each its own prompt and seed
