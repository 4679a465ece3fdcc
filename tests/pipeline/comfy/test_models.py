"""Architectures from the shipped configs: shapes, seeded weights, checkpoints."""
from __future__ import annotations

import pytest
import torch

from pipeline.comfy.models import (ModelError, architectures, build_components, builtin_checkpoints,
                                   checkpoint_names, load_bundle, save_checkpoint)
from pipeline.comfy.sampling import encode_text, ksample, vae_decode


def _params(module):
    return sum(p.numel() for p in module.parameters())


def test_shipped_architectures_and_aliases():
    assert set(architectures()) == {"tiny", "tiny-xl", "sd15", "sdxl"}
    names = builtin_checkpoints()
    assert names["sd_xl_base_1.0.safetensors"] == "sdxl" and names["tiny.safetensors"] == "tiny"


def test_sdxl_has_the_published_shape_on_the_meta_device():
    unet, vae, (clip_l, clip_g) = build_components(architectures()["sdxl"], "meta")
    assert _params(unet) == 2_567_463_684
    assert _params(vae) == 83_653_863
    assert clip_l.config.hidden_size + clip_g.config.hidden_size == unet.config.cross_attention_dim == 2048
    assert clip_g.config.projection_dim + 6 * unet.config.addition_time_embed_dim == \
        unet.config.projection_class_embeddings_input_dim


def test_sd15_has_the_published_shape_on_the_meta_device():
    unet, _, (clip_l,) = build_components(architectures()["sd15"], "meta")
    assert _params(unet) == 859_520_964
    assert _params(clip_l) == 123_060_480


def test_random_weights_are_deterministic():
    a = build_components(architectures()["tiny"])
    b = build_components(architectures()["tiny"])
    for x, y in zip([a[0], a[1], *a[2]], [b[0], b[1], *b[2]]):
        for (name, p), (_, q) in zip(x.state_dict().items(), y.state_dict().items()):
            assert torch.equal(p, q), name


def test_building_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_components(architectures()["tiny"])
    assert torch.equal(torch.rand(3), expected)


def _image(bundle, seed=3):
    pos, neg = encode_text(bundle, "a red house"), encode_text(bundle, "")
    latent = ksample(bundle, pos, neg, torch.zeros(1, 4, 8, 8), seed, 3, 5.0, "euler", "normal")
    return vae_decode(bundle, latent)


def test_checkpoint_roundtrip_gives_the_same_image(tmp_path):
    bundle = load_bundle("tiny-xl.safetensors")
    save_checkpoint(bundle, tmp_path / "mine" / "xl.safetensors")
    assert "mine/xl.safetensors" in checkpoint_names(tmp_path)
    loaded = load_bundle("mine/xl.safetensors", tmp_path)
    assert loaded.source.endswith("xl.safetensors") and loaded.arch.name == "tiny-xl"
    assert torch.equal(_image(bundle), _image(loaded))


def test_a_file_in_the_models_dir_wins_over_the_builtin(tmp_path):
    tiny = load_bundle("tiny.safetensors")
    with torch.no_grad():
        tiny.unet.conv_out.bias.add_(0.5)
    save_checkpoint(tiny, tmp_path / "tiny.safetensors")
    assert not torch.equal(_image(load_bundle("tiny.safetensors", tmp_path)),
                           _image(load_bundle("tiny.safetensors")))


def test_unknown_and_foreign_checkpoints_are_refused(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(ModelError, match="neither a file"):
        load_bundle("nope.safetensors", tmp_path)
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ModelError, match="not a comfyfab"):
        load_bundle("foreign.safetensors", tmp_path)
    with pytest.raises(ModelError, match="outside"):
        load_bundle("../escape.safetensors", tmp_path)


def test_a_diffusers_model_folder_loads_with_its_own_configs(tmp_path):
    bundle = load_bundle("tiny-xl.safetensors")
    folder = tmp_path / "my-sdxl"
    bundle.unet.save_pretrained(folder / "unet")
    bundle.vae.save_pretrained(folder / "vae")
    for sub, encoder in zip(("text_encoder", "text_encoder_2"), bundle.text_encoders):
        encoder.save_pretrained(folder / sub)
    names = checkpoint_names(tmp_path)
    assert "my-sdxl" in names and not any(n.startswith("my-sdxl/") for n in names)
    loaded = load_bundle("my-sdxl", tmp_path)
    assert loaded.arch.family == "sdxl" and loaded.arch.name == "my-sdxl"
    assert loaded.arch.vae_scale_factor == 8
    # same tensors; the pooled projection may take another matmul path: equal up to rounding
    assert torch.allclose(_image(bundle), _image(loaded), atol=1e-5)


def _assert_same_image(eager, compiled, side: int) -> None:
    """Two sampling steps and a decode give the eager bundle's image (to compile's rounding)."""
    pos, neg = encode_text(eager, "a red cube"), encode_text(eager, "")
    lat = torch.zeros(1, 4, side, side)
    want = vae_decode(eager, ksample(eager, pos, neg, lat, 5, 2, 6.0, "euler", "normal"))
    got = vae_decode(compiled, ksample(compiled, pos, neg, lat, 5, 2, 6.0, "euler", "normal"))
    assert torch.allclose(want, got, atol=1e-3)


def test_compiled_bundle_gives_the_eager_image_and_unwraps():
    """torch.compile of the UNet and VAE decoder (the stand-in's --compile, calibrate's --compile).
    The graphs are captured as inductor would get them; the ``eager`` backend skips the code generation
    (a minute of C++ compiling on this CPU; the H100 check runs inductor itself)."""
    from pipeline.comfy.engines import TorchEngine, TorchOptions
    from pipeline.comfy.models import compile_bundle, uncompiled

    eager = load_bundle("tiny.safetensors")
    compiled = compile_bundle(eager, backend="eager")
    assert hasattr(compiled.unet, "_orig_mod") and hasattr(compiled.vae.decoder, "_orig_mod")
    assert not hasattr(eager.vae.decoder, "_orig_mod"), "compiling must not change the eager bundle"
    back = uncompiled(compiled)
    assert back.unet is eager.unet and back.vae is eager.vae
    _assert_same_image(eager, compiled, side=4)
    engine = TorchEngine(options=TorchOptions(compile="full"))
    assert hasattr(engine.bundle("tiny.safetensors").unet, "_orig_mod")


def test_regional_compile_gives_the_eager_image_reuses_code_and_leaves_the_eager_modules():
    """``--compile regional``: each repeated block compiled on its own.  Blocks of one shape share one
    compiled graph (fewer graphs than blocks: the point, compile time), the image is the eager one, and
    the eager bundle keeps running eagerly (FLOP counting needs it)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    from pipeline.comfy.engines import TorchEngine, TorchOptions
    from pipeline.comfy.models import REGIONS, compile_bundle, compile_scope, uncompiled

    eager = load_bundle("tiny.safetensors")
    torch._dynamo.reset()
    counters.clear()
    regional = compile_bundle(eager, backend="eager", scope="regional")
    assert compile_scope(regional.unet) == "regional" and compile_scope(eager.unet) is None
    regions = [m for m in regional.unet.modules() if type(m).__name__ in REGIONS]
    regions += [m for m in regional.vae.decoder.modules() if type(m).__name__ in REGIONS]
    assert regions and all(m._compiled_call_impl is not None for m in regions)
    assert not any(getattr(m, "_compiled_call_impl", None) is not None
                   for m in [*eager.unet.modules(), *eager.vae.decoder.modules()])
    # the copy holds the very same tensors: no second copy of the weights
    assert all(a is b for a, b in zip(regional.unet.parameters(), eager.unet.parameters()))
    back = uncompiled(regional)
    assert back.unet is eager.unet and back.vae is eager.vae
    _assert_same_image(eager, regional, side=8)
    graphs = counters["stats"]["unique_graphs"]
    assert 0 < graphs < len(regions), (graphs, len(regions))
    engine = TorchEngine(options=TorchOptions(compile="regional"))
    assert compile_scope(engine.bundle("tiny.safetensors").unet) == "regional"
    with pytest.raises(ModelError, match="compile scope must be one of"):
        compile_bundle(eager, scope="partial")
    with pytest.raises(ValueError, match="compile scope must be one of"):
        TorchOptions(compile="partial")
