"""``comfyfab bench attention``: a model's attention calls, each SDPA kernel timed on them."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import comfyfab.cli as comfy_cli
from pipeline.calibrate.attention import attention_calls, summarise, time_kernels
from pipeline.comfy.archs import architectures
from pipeline.comfy.models import build_components


def _attention_modules(module: torch.nn.Module) -> int:
    from diffusers.models.attention_processor import Attention

    return sum(isinstance(m, Attention) for m in module.modules())


def test_every_attention_module_is_recorded_once_per_pass():
    arch = architectures()["tiny"]
    unet, vae, _ = build_components(arch, "meta")
    calls = attention_calls("tiny", 64, batch=3)
    unet_calls = [c for c in calls if c.component == "unet"]
    vae_calls = [c for c in calls if c.component == "vae"]
    assert sum(c.count for c in unet_calls) == _attention_modules(unet)
    assert sum(c.count for c in vae_calls) == _attention_modules(vae.decoder)
    assert {c.batch for c in unet_calls} == {6}  # classifier-free guidance doubles the UNet's batch
    assert {c.batch for c in vae_calls} == {3}
    side = 64 // arch.vae_scale_factor
    assert max(c.q_len for c in unet_calls) <= side * side
    assert {c.kv_len for c in unet_calls if c.kv_len != c.q_len} == {77}  # cross-attention to the prompt
    assert {c.batch for c in attention_calls("tiny", 64, batch=3, cfg=1.0) if c.component == "unet"} == {3}


def test_sdxl_1024_has_140_attention_calls_per_step_and_a_512_wide_vae_head():
    calls = attention_calls("sdxl", 1024, batch=4)
    assert sum(c.count for c in calls if c.component == "unet") == 140  # 70 transformer blocks, 2 each
    (vae,) = [c for c in calls if c.component == "vae"]
    assert (vae.batch, vae.heads, vae.q_len, vae.head_dim) == (4, 1, 128 * 128, 512)


def test_kernels_that_cannot_run_are_reported_not_raised():
    calls = attention_calls("tiny", 64, batch=1)
    timings = time_kernels(calls, "cpu", torch.float32, ["math", "cudnn"], reps=2)
    assert len(timings) == 2 * len(calls)
    assert all(t.seconds and t.seconds > 0 for t in timings if t.kernel == "math")
    assert all(t.seconds is None and "kernel" in t.error for t in timings if t.kernel == "cudnn")
    rows = {(r["kernel"], r["component"]): r for r in summarise(timings, steps=5)}
    math_unet = rows[("math", "unet")]
    unet_math = [t for t in timings if t.kernel == "math" and t.call.component == "unet"]
    assert math_unet["s_per_run"] == pytest.approx(5 * sum(t.seconds * t.call.count for t in unet_math))
    assert math_unet["calls"] == 5 * sum(t.call.count for t in unet_math)
    assert rows[("cudnn", "unet")]["s_per_run"] is None
    assert rows[("cudnn", "unet")]["unsupported"] == rows[("cudnn", "unet")]["shapes"]


def test_cli_ranks_the_kernels_and_writes_rows(tmp_path, capsys):
    out = tmp_path / "att.csv"
    assert comfy_cli.main(["bench", "attention", "--model", "tiny", "--kernels", "auto,math,cudnn", "--reps", "2",
                           "--steps", "3", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fastest for the unet:" in printed and "cudnn could not run" in printed
    rows = pd.read_csv(out)
    assert set(rows.kernel) == {"auto", "math", "cudnn"} and rows.loc[rows.kernel == "cudnn", "seconds"].isna().all()


@pytest.mark.parametrize("flags, message", [
    (["--kernels", "fast"], "--kernels takes"),
    (["--reps", "0"], "--reps must be at least 1"),
    (["--model", "sd3"], "not a shipped architecture"),
    (["--resolution", "60"], "multiple of 8"),
    (["--batch", "0"], "--batch must be at least 1"),
])
def test_bad_flags_are_clear_errors(flags, message, capsys):
    assert comfy_cli.main(["bench", "attention", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
