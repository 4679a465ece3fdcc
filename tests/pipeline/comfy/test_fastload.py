"""The parallel safetensors reader gives exactly what safetensors' own loader gives.

The CUDA path (pinned buffers, per-thread streams) runs only on a GPU; here the same
chunking, threading and header parsing run against a host buffer (``parallel=True``)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from pipeline.comfy.fastload import ReadOptions, read_safetensors
from pipeline.comfy.models import load_bundle, save_checkpoint
from pipeline.comfy.sampling import encode_text, ksample

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.int64, torch.uint8, torch.bool]


@settings(max_examples=25, deadline=None)
@given(shapes=st.lists(st.tuples(st.sampled_from(range(len(DTYPES))),
                                 st.lists(st.integers(0, 7), min_size=0, max_size=3)), min_size=1, max_size=12),
       workers=st.integers(1, 5), chunk=st.integers(1, 300), direct=st.booleans())
def test_parallel_read_equals_the_library(tmp_path_factory, shapes, workers, chunk, direct):
    gen = torch.Generator().manual_seed(len(shapes) * 31 + chunk)
    tensors = {}
    for i, (d, shape) in enumerate(shapes):
        dtype = DTYPES[d]
        raw = torch.randint(0, 255, shape, generator=gen)
        tensors[f"t{i}"] = (raw % 2).to(dtype) if dtype == torch.bool else raw.to(dtype)
    path = tmp_path_factory.mktemp("st") / "w.safetensors"
    save_file(tensors, str(path), metadata={"format": "test"})
    got = read_safetensors(path, "cpu", ReadOptions(workers=workers, chunk_mb=chunk / (1 << 20), direct=direct,
                                                    parallel=True))
    want = load_file(str(path))
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape
        assert torch.equal(got[key], want[key]), key


def test_direct_reads_span_many_aligned_chunks(tmp_path):
    """O_DIRECT reads whole 4 KiB blocks: a file of many blocks, an odd tail and an unaligned
    header comes back exactly (where the filesystem refuses O_DIRECT, the buffered path runs
    and the phases say so)."""
    gen = torch.Generator().manual_seed(7)
    tensors = {f"w{i}": torch.randn(1000 + 37 * i, generator=gen) for i in range(9)}
    path = tmp_path / "w.safetensors"
    save_file(tensors, str(path), metadata={"pad": "x" * 13})
    phases: dict = {}
    got = read_safetensors(path, "cpu", ReadOptions(workers=3, chunk_mb=4096 / (1 << 20), direct=True, parallel=True),
                           phases=phases)
    assert all(torch.equal(got[k], v) for k, v in tensors.items())
    assert set(phases) >= {"pin_s", "read_s", "split_s", "reader"}
    assert ("O_DIRECT" in phases["reader"] or "buffered" in phases["reader"])


@pytest.mark.parametrize("text, want", [
    ("8x32", ReadOptions(8, 32, False, True)), ("16x64d", ReadOptions(16, 64, True, True)),
    ("4x0.5", ReadOptions(4, 0.5, False, True)), (" Library ", ReadOptions(parallel=False)),
])
def test_reader_names_parse(text, want):
    assert ReadOptions.parse(text) == want


@pytest.mark.parametrize("text", ["8", "x32", "8x", "0x32", "8x0", "8x-1", "fast", "8x32dd"])
def test_bad_reader_names_are_clear_errors(text):
    with pytest.raises(ValueError, match="reader|must be"):
        ReadOptions.parse(text)


def test_load_bundle_reports_its_steps(tmp_path):
    bundle = load_bundle("tiny.safetensors")
    save_checkpoint(bundle, tmp_path / "t.safetensors")
    phases: dict = {}
    load_bundle("t.safetensors", models_dir=tmp_path, phases=phases,
                reader=ReadOptions(workers=2, chunk_mb=0.25, parallel=True))
    for step in ("read_s", "split_s", "build_s", "assign_s", "cast_s", "layout_s", "fuse_s"):
        assert phases[step] >= 0, step
    assert phases["reader"].startswith("2 threads")


def test_tensors_do_not_alias_one_buffer(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(4), "b": torch.ones(4)}, str(path))
    got = read_safetensors(path, "cpu", ReadOptions(workers=2, chunk_mb=8 / (1 << 20), parallel=True))
    got["a"].add_(5)
    assert torch.equal(got["b"], torch.ones(4))
    assert got["a"].untyped_storage().data_ptr() != got["b"].untyped_storage().data_ptr()


def test_a_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\xff" * 12)
    with pytest.raises(ValueError, match="header length"):
        read_safetensors(path, "cpu", ReadOptions(parallel=True))


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
