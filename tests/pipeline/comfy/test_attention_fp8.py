"""The attention kernel choice and FP8: what can be checked without a GPU.

FP8 itself needs an Ada or Hopper GPU (torchao refuses anything else), so on the CPU the
test is that asking for it is a clear error; the H100 run is in profiles/README.md."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.nn.attention import SDPBackend

from pipeline.comfy.models import ModelError, attention_backend, fp8_layers, load_bundle, quantize_fp8


KERNELS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
           "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}


def _order() -> list[int]:
    return list(torch._C._get_sdp_priority_order())


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_the_preferred_kernel_goes_first_and_the_others_stay_as_fallbacks(kernel):
    """torch's CPU dispatch ignores the priority order (it takes its flash kernel whenever it can), so
    the choice shows on a GPU only; here the test is the order handed to torch, and that a call the
    preferred kernel cannot take still runs."""
    before = _order()
    with attention_backend(kernel):
        inside = _order()
        q = torch.randn(2, 4, 64, 16)
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert inside[0] == KERNELS[kernel].value
    assert {b.value for b in KERNELS.values()} <= set(inside)
    assert out.shape == q.shape and torch.isfinite(out).all()
    assert _order() == before


def test_auto_leaves_torchs_order():
    before = _order()
    with attention_backend("auto"):
        assert _order() == before


def test_an_unknown_kernel_is_a_clear_error():
    with pytest.raises(ModelError, match="attention backend must be one of"):
        with attention_backend("fast"):
            pass


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_fp8_on_a_cpu_is_a_clear_error():
    bundle = load_bundle("tiny.safetensors")
    with pytest.raises(ModelError, match="compute capability 8.9"):
        quantize_fp8(bundle)
    assert fp8_layers(bundle.unet) == 0


def test_the_stand_in_samples_and_decodes_under_its_attention_option(monkeypatch, tmp_path):
    """``python -m pipeline.comfy --attention math``: every sampling and decode of the torch engine
    runs inside that preference, the single-prompt path and the batched one alike."""
    import pipeline.comfy.models as models
    from pipeline.comfy.engines import TorchOptions
    from pipeline.comfy.workflows import txt2img

    from .test_batching import run_queued

    entered = []
    real = models.attention_backend

    def spy(name="auto"):
        entered.append(name)
        return real(name)

    monkeypatch.setattr(models, "attention_backend", spy)
    for max_batch in (1, 2):
        entered.clear()
        prompts = [txt2img("a red cube", seed=s, steps=1) for s in range(2)]
        run_queued(tmp_path, prompts, max_batch, TorchOptions(cpu_threads=1, attention="math"))
        assert set(entered) == {"math"}
        # one prompt at a time: sampling and decoding each enter it; two batched: one entry for both
        assert len(entered) == (4 if max_batch == 1 else 1)


def test_torch_options_refuse_what_cannot_run():
    from pipeline.comfy.engines import TorchOptions

    with pytest.raises(ValueError, match="attention must be one of"):
        TorchOptions(attention="fast")
    with pytest.raises(ValueError, match="fp8 needs a CUDA device"):
        TorchOptions(fp8=True)
    assert TorchOptions(device="cuda", fp8=True).fp8  # checked against the GPU when the model loads


def test_the_stand_in_command_refuses_fp8_without_a_gpu(capsys):
    from pipeline.comfy.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["--fp8", "--port", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "fp8 needs a CUDA device" in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_an_fp8_stand_in_on_a_machine_without_the_gpu_is_refused_at_start(capsys):
    from pipeline.comfy.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["--fp8", "--device", "cuda", "--port", "0"])
    assert exc.value.code == 2 and "sees no CUDA device" in capsys.readouterr().err


def test_fp8_takes_the_transformer_projections_that_run_on_latent_rows_and_nothing_else():
    """What --fp8 quantizes, checked on SDXL's own UNet (built on the meta device): each projection of
    the transformer blocks that runs on the latent pixels; none of the embeddings' few-row matmuls, none
    of cross-attention's key/value projections (the text's 77 rows), none of the separate Q/K/V that
    diffusers keeps unused beside a fused QKV, no convolution."""
    from pipeline.comfy.archs import architectures
    from pipeline.comfy.models import build_components, fp8_targets

    unet, _, _ = build_components(architectures()["sdxl"], "meta")
    unet.fuse_qkv_projections()
    picked = fp8_targets(unet)
    assert picked and all(".attentions." in f".{name}" for name in picked)
    ends = Counter(name.split(".transformer_blocks.")[-1].split(".", 1)[-1] for name in picked
                   if ".transformer_blocks." in name)
    # SDXL has 70 transformer blocks, each with these six projections on the latent rows
    assert ends == {"attn1.to_qkv": 70, "attn1.to_out.0": 70, "attn2.to_q": 70, "attn2.to_out.0": 70,
                    "ff.net.0.proj": 70, "ff.net.2": 70}
    assert sum(name.endswith(("proj_in", "proj_out")) for name in picked) == 22
    assert len(picked) == 442
    assert not any(name.startswith(("time_embedding", "add_embedding")) for name in picked)
    # unfused, the same rules hold: self-attention's three projections go, cross-attention's key/value stay out
    plain, _, _ = build_components(architectures()["sdxl"], "meta")
    unfused = Counter(name.rsplit(".", 1)[-1] for name in fp8_targets(plain) if ".attn" in name)
    assert unfused["to_k"] == unfused["to_v"] == 70 and unfused["to_q"] == 140
