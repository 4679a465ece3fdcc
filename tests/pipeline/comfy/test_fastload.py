"""The parallel safetensors reader gives exactly what safetensors' own loader gives.

The CUDA path (pinned buffers, per-thread streams) runs only on a GPU; here the same
chunking, threading and header parsing run against a host buffer (``parallel=True``)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from pipeline.comfy.fastload import read_safetensors
from pipeline.comfy.models import load_bundle, save_checkpoint
from pipeline.comfy.sampling import encode_text, ksample

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.int64, torch.uint8, torch.bool]


@settings(max_examples=25, deadline=None)
@given(shapes=st.lists(st.tuples(st.sampled_from(range(len(DTYPES))),
                                 st.lists(st.integers(0, 7), min_size=0, max_size=3)), min_size=1, max_size=12),
       workers=st.integers(1, 5), chunk=st.integers(1, 300))
def test_parallel_read_equals_the_library(tmp_path_factory, shapes, workers, chunk):
    gen = torch.Generator().manual_seed(len(shapes) * 31 + chunk)
    tensors = {}
    for i, (d, shape) in enumerate(shapes):
        dtype = DTYPES[d]
        raw = torch.randint(0, 255, shape, generator=gen)
        tensors[f"t{i}"] = (raw % 2).to(dtype) if dtype == torch.bool else raw.to(dtype)
    path = tmp_path_factory.mktemp("st") / "w.safetensors"
    save_file(tensors, str(path), metadata={"format": "test"})
    got = read_safetensors(path, "cpu", workers=workers, chunk_bytes=chunk, parallel=True)
    want = load_file(str(path))
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape
        assert torch.equal(got[key], want[key]), key


def test_tensors_do_not_alias_one_buffer(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(4), "b": torch.ones(4)}, str(path))
    got = read_safetensors(path, "cpu", workers=2, chunk_bytes=8, parallel=True)
    got["a"].add_(5)
    assert torch.equal(got["b"], torch.ones(4))
    assert got["a"].untyped_storage().data_ptr() != got["b"].untyped_storage().data_ptr()


def test_a_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\xff" * 12)
    with pytest.raises(ValueError, match="header length"):
        read_safetensors(path, "cpu", parallel=True)


def test_fused_attention_keeps_the_image_and_the_checkpoint_format(tmp_path):
    """The GPU load fuses QKV projections; the sampled latent and the saved file must not change."""
    plain = load_bundle("tiny-xl.safetensors", fuse_qkv=False)
    fused = load_bundle("tiny-xl.safetensors", fuse_qkv=True)
    assert "FusedAttnProcessor2_0" in {type(p).__name__ for p in fused.unet.attn_processors.values()}
    lat = torch.zeros(1, plain.arch.latent_channels, 8, 8)
    out = [ksample(b, encode_text(b, "a red cube"), encode_text(b, ""), lat, 3, 3, 6.0, "euler", "normal")
           for b in (plain, fused)]
    assert torch.allclose(out[0], out[1], atol=1e-4)
    save_checkpoint(fused, tmp_path / "f.safetensors")
    save_checkpoint(plain, tmp_path / "p.safetensors")
    assert load_file(str(tmp_path / "f.safetensors")).keys() == load_file(str(tmp_path / "p.safetensors")).keys()
    load_bundle("f.safetensors", models_dir=tmp_path)  # loads back: no fused-only keys in the file
