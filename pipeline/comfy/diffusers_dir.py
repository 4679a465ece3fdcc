"""Real weights from a local diffusers model folder.

A folder laid out as diffusers saves a pipeline (``unet/``, ``vae/``,
``text_encoder/`` and, for SDXL, ``text_encoder_2/``, each with its
``config.json`` and weights; ``scheduler/scheduler_config.json`` optional),
for example a local copy of stabilityai/stable-diffusion-xl-base-1.0, is
loaded with diffusers' and transformers' ``from_pretrained`` from disk only.
Its architecture comes from the folder's own configs.  Text still goes
through :class:`~pipeline.comfy.tokenizer.HashTokenizer` (no vocabulary is
read), so real weights give real-shaped but not prompt-faithful images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .archs import ArchSpec, ModelError

DEFAULT_SCHEDULER = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                     "beta_schedule": "scaled_linear", "prediction_type": "epsilon", "steps_offset": 1}


def is_diffusers_dir(path: Path) -> bool:
    return (path / "unet" / "config.json").is_file() and (path / "vae" / "config.json").is_file()


def _config(path: Path) -> dict[str, Any]:
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


def arch_of(path: Path) -> ArchSpec:
    """The architecture a diffusers folder describes."""
    if not is_diffusers_dir(path):
        raise ModelError(f"{path} is not a diffusers model folder (needs unet/config.json and vae/config.json)")
    encoders = []
    xl = (path / "text_encoder_2" / "config.json").is_file()
    for folder, name, pad in (("text_encoder", "clip_l", "eos"), ("text_encoder_2", "clip_g", "zero")):
        cfg = path / folder / "config.json"
        if cfg.is_file():
            raw = _config(cfg)
            encoders.append({"name": name, "folder": folder, "pad": pad, "pooled": folder == "text_encoder_2",
                             "class": "CLIPTextModelWithProjection" if folder == "text_encoder_2" else "CLIPTextModel",
                             "layer": "penultimate" if xl else "last", "config": raw})
    if not encoders:
        raise ModelError(f"{path} has no text_encoder/config.json")
    scheduler = dict(DEFAULT_SCHEDULER)
    sched_cfg = path / "scheduler" / "scheduler_config.json"
    if sched_cfg.is_file():
        scheduler.update({k: v for k, v in _config(sched_cfg).items() if k in DEFAULT_SCHEDULER})
    unet = _config(path / "unet" / "config.json")
    vae = _config(path / "vae" / "config.json")
    return ArchSpec(name=path.name, family="sdxl" if xl else "sd", unet=unet, vae=vae,
                    text_encoders=tuple(encoders), scheduler=scheduler, latent_channels=vae.get("latent_channels", 4),
                    vae_scale_factor=2 ** (len(vae.get("block_out_channels", [0] * 4)) - 1))


def load_diffusers_dir(path: Path) -> tuple[ArchSpec, Any, Any, list[Any]]:
    """(arch, unet, vae, text_encoders) read from ``path`` on the CPU.

    The modules are built on the meta device from the folder's configs and
    take the stored tensors directly (no random initialisation first), which
    keeps the load time that of reading the files.
    """
    from safetensors.torch import load_file

    from .models import build_components, materialise_buffers

    arch = arch_of(path)
    unet, vae, encoders = build_components(arch, "meta")
    parts = [("unet", unet), ("vae", vae)] + [(spec["folder"], enc) for spec, enc in zip(arch.text_encoders, encoders)]
    for folder, module in parts:
        files = sorted((path / folder).glob("*.safetensors"))
        plain = [f for f in files if len(f.name.split(".")) == 2]  # prefer full precision over ".fp16." variants
        state: dict[str, Any] = {}
        for file in plain or files:
            state.update(load_file(str(file), device="cpu"))
        if not state:
            raise ModelError(f"{path / folder} holds no .safetensors weights")
        missing, unexpected = module.load_state_dict(state, strict=False, assign=True)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ModelError(f"{path / folder}: weights do not match its config "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        materialise_buffers(module)
    return arch, unet, vae, encoders
