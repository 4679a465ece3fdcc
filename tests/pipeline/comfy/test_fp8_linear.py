"""comfyfab's own FP8 projections (``--fp8`` / ``--fp8 scaled-mm``): plain tensors and ``torch._scaled_mm``.

The speed is a GPU question (profiles/README.md); what the CPU can check is the arithmetic (this torch
runs ``_scaled_mm`` with row-wise scales on the CPU too), which layers are swapped, and that the swapped
UNet traces as one graph, the property the recipe exists for: torchao's tensor-subclass recipe outran
every compile budget on the H100."""

from __future__ import annotations

import pytest
import torch

from pipeline.comfy.models import (FP8_RECIPES, Fp8Linear, ModelError, fp8_calibration_run, fp8_layers,
                                   fp8_observe, fp8_recipe, fp8_swap, fp8_targets, load_bundle)


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.float() - want.float()).norm() / want.float().norm()).item()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_an_fp8_layer_computes_what_its_linear_layer_does_within_e4m3s_precision(bias, dtype):
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 512, bias=bias).to(dtype)
    x = torch.randn(3, 64, 256, dtype=dtype)
    want = linear(x)
    layer = Fp8Linear(linear)
    got = layer(x)
    assert got.shape == want.shape and got.dtype == dtype
    assert layer.weight.dtype == torch.float8_e4m3fn and layer.weight_scale.shape == (1, 512)
    # e4m3 keeps 3 mantissa bits: about 3-4 % relative error on random data, never more than 6 %
    assert 0.005 < _rel(got, want) < 0.06


def test_an_fp8_layer_scales_each_row_on_its_own():
    """One row a thousand times larger than the others must not crush them to zero (a per-tensor scale
    would): each row of the input and of the weight has its own scale."""
    torch.manual_seed(1)
    linear = torch.nn.Linear(64, 32, bias=False)
    with torch.no_grad():
        linear.weight[0] *= 1000
    x = torch.randn(8, 64)
    x[0] *= 1000
    want, got = linear(x), Fp8Linear(linear)(x)
    for row in range(1, 8):
        assert _rel(got[row, 1:], want[row, 1:]) < 0.06


def test_a_static_layer_uses_its_fixed_input_scale_and_one_weight_scale():
    """The static recipe: the input's scale comes from calibration, not from the call, so an input
    past the calibrated range saturates at e4m3's largest value instead of being rescaled."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(128, 64)
    x = torch.randn(16, 128)
    layer = Fp8Linear(linear, input_amax=float(x.abs().amax()))
    assert layer.weight_scale.shape == () and layer.input_scale.shape == ()
    assert layer.input_scale.item() == pytest.approx(x.abs().amax().item() / 448.0)
    assert _rel(layer(x), linear(x)) < 0.06
    big = x * 100  # 100 x the calibrated range: clamped, so far from the true product
    assert _rel(layer(big), linear(big)) > 0.5
    assert _rel(Fp8Linear(linear)(big), linear(big)) < 0.06  # the dynamic recipe rescales


def test_observing_records_each_called_layers_largest_input_and_removes_its_hooks():
    bundle = load_bundle("tiny-xl.safetensors")
    unet = bundle.unet
    targets = fp8_targets(unet)
    amax = fp8_observe(unet, targets, fp8_calibration_run(bundle, 64, steps=2))
    assert set(amax) == set(targets) and all(v > 0 for v in amax.values())
    assert not any(m._forward_pre_hooks for m in unet.modules())
    # only what the run called is swapped: a layer never observed keeps its linear layer
    partial = dict(list(amax.items())[1:])
    assert fp8_swap(unet, targets, partial) == len(targets) - 1
    assert fp8_layers(unet) == len(targets) - 1
    assert all(m.input_scale is not None for m in unet.modules() if isinstance(m, Fp8Linear))


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_the_swap_takes_exactly_the_fp8_targets_and_the_unet_still_agrees(tmp_path, static):
    bundle = load_bundle("tiny-xl.safetensors")
    unet = bundle.unet
    targets = fp8_targets(unet)
    cfg = unet.config
    torch.manual_seed(0)
    latent = torch.randn(2, cfg.in_channels, 8, 8)  # small: this CPU's tensor-wise _scaled_mm is a slow reference path
    context = torch.randn(2, 77, cfg.cross_attention_dim)
    extra = {}
    if cfg.addition_embed_type == "text_time":
        text = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        extra = {"added_cond_kwargs": {"text_embeds": torch.randn(2, text), "time_ids": torch.randn(2, 6)}}
    with torch.no_grad():
        want = unet(latent, 10, context, **extra).sample
        assert fp8_layers(unet) == 0
        amax = fp8_observe(unet, targets, lambda: unet(latent, 10, context, **extra)) if static else None
        assert fp8_swap(unet, targets, amax) == len(targets) > 0
        assert fp8_layers(unet) == len(targets)
        assert {n for n, m in unet.named_modules() if isinstance(m, Fp8Linear)} == set(targets)
        got = unet(latent, 10, context, **extra).sample
        assert _rel(got, want) < 0.1
        # one graph, no breaks: what lets torch.compile treat the FP8 UNet as it treats the bf16 one
        compiled = torch.compile(unet, backend="eager", fullgraph=True)
        assert torch.equal(compiled(latent, 10, context, **extra).sample, got)


def test_fp8_recipes_are_named_or_refused():
    assert fp8_recipe(None) is None and fp8_recipe(False) is None and fp8_recipe("") is None
    assert fp8_recipe(True) == "scaled-mm" == FP8_RECIPES[0]
    assert fp8_recipe("torchao") == "torchao" and fp8_recipe("static") == "static"
    with pytest.raises(ModelError, match="scaled-mm, static, torchao"):
        fp8_recipe("int8")


def test_the_recipe_reaches_the_spec_the_profile_name_and_the_stand_in_options():
    from pipeline.calibrate.measure import CalibrationError, CalibrationSpec
    from pipeline.comfy.engines import TorchOptions

    assert CalibrationSpec(device="cuda", fp8=True).fp8 == "scaled-mm"
    assert CalibrationSpec(device="cuda", fp8="scaled-mm", compile="full").variant == "-fp8-compiled"
    assert CalibrationSpec(device="cuda", fp8="torchao").variant == "-fp8-torchao"
    assert CalibrationSpec(device="cuda", fp8="static", compile="full").variant == "-fp8-static-compiled"
    with pytest.raises(CalibrationError, match="--fp8: fp8 recipe must be one of"):
        CalibrationSpec(device="cuda", fp8="int8")
    assert TorchOptions(device="cuda", fp8="torchao").fp8 == "torchao"
    assert TorchOptions(device="cuda", fp8=True).fp8 == "scaled-mm"
    with pytest.raises(ValueError, match="fp8 recipe must be one of"):
        TorchOptions(device="cuda", fp8="int8")


@pytest.mark.parametrize("argv, want", [([], None), (["--fp8"], "scaled-mm"), (["--fp8", "torchao"], "torchao"),
                                        (["--fp8", "static"], "static")])
def test_the_fp8_option_takes_an_optional_recipe(argv, want):
    import argparse

    from pipeline.comfy.models import add_fp8_argument

    parser = argparse.ArgumentParser()
    add_fp8_argument(parser)
    assert parser.parse_args(argv).fp8 == want


def test_an_unknown_recipe_on_the_command_line_exits_2_with_the_choices(capsys):
    from pipeline.calibrate.kernels import main

    with pytest.raises(SystemExit) as exc:
        main(["--fp8", "int8"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "scaled-mm" in err and "Traceback" not in err


@pytest.mark.parametrize("recipe", ["scaled-mm", "static"])
def test_quantize_fp8_runs_each_own_recipe_end_to_end(monkeypatch, recipe):
    """``quantize_fp8`` as the calibration and the stand-in call it, with the GPU check waived (the CPU
    runs the same ``_scaled_mm``): every target swapped, the static one with scales from its default
    calibration txt2img, and the quantized bundle still samples."""
    import pipeline.comfy.models as models
    from pipeline.comfy.sampling import encode_text, ksample

    monkeypatch.setattr(models, "fp8_refusal", lambda device: None)
    bundle = load_bundle("tiny-xl.safetensors")
    targets = fp8_targets(bundle.unet)
    models.quantize_fp8(bundle, recipe)
    layers = [m for m in bundle.unet.modules() if isinstance(m, Fp8Linear)]
    assert len(layers) == fp8_layers(bundle.unet) == len(targets)
    assert all((m.input_scale is not None) == (recipe == "static") for m in layers)
    side = bundle.arch.default_resolution // bundle.arch.vae_scale_factor
    out = ksample(bundle, encode_text(bundle, "a red cube"), encode_text(bundle, ""),
                  torch.zeros(1, bundle.arch.latent_channels, side, side), 0, 2, 7.0, "euler", "normal")
    assert torch.isfinite(out).all()


def test_the_static_calibration_runs_once_per_given_prompt_and_observes_them_all(monkeypatch):
    import pipeline.comfy.sampling as sampling

    bundle = load_bundle("tiny-xl.safetensors")
    seen = []
    real_encode = sampling.encode_text
    monkeypatch.setattr(sampling, "encode_text", lambda b, text: seen.append(text) or real_encode(b, text))
    unet, targets = bundle.unet, fp8_targets(bundle.unet)
    one = fp8_observe(unet, targets, fp8_calibration_run(bundle, 64, steps=1))
    assert [t for t in seen if t] == ["a lighthouse on a cliff at dusk, detailed"]  # the default: one fixed prompt
    seen.clear()
    both = fp8_observe(unet, targets, fp8_calibration_run(bundle, 64, steps=1, prompts=["a red cube", "a blue sky"]))
    assert [t for t in seen if t] == ["a red cube", "a blue sky"]
    assert set(both) == set(one) and all(v > 0 for v in both.values())


def test_calibration_prompts_come_from_a_file_and_need_the_static_recipe(tmp_path, capsys):
    from pipeline.comfy.__main__ import main
    from pipeline.comfy.engines import TorchOptions
    from pipeline.comfy.models import read_calibration_prompts

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# what the tenant serves\na red cube\n\n  a product shot, studio light  \n")
    assert read_calibration_prompts(prompts) == ("a red cube", "a product shot, studio light")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ModelError, match="holds no calibration prompts"):
        read_calibration_prompts(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="need fp8 'static', not 'scaled-mm'"):
        TorchOptions(device="cuda", fp8="scaled-mm", fp8_calibration_prompts=("a red cube",))
    assert TorchOptions(device="cuda", fp8="static", fp8_calibration_prompts=["x"]).fp8_calibration_prompts == ("x",)
    for argv, message in ((["--fp8-calibration-prompts", str(tmp_path / "missing.txt")], "cannot read calibration"),
                          (["--fp8-calibration-prompts", str(prompts)], "need fp8 'static', not None")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and message in err and "Traceback" not in err
