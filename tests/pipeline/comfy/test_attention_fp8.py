"""The attention kernel choice and FP8: what can be checked without a GPU.

FP8 itself needs an Ada or Hopper GPU (torchao refuses anything else), so on the CPU the
test is that asking for it is a clear error; the H100 run is in profiles/README.md."""

from __future__ import annotations

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
