"""The shipped architectures (``model_configs/*.json``) and checkpoint names.

Kept free of torch so that the no-op engine and the catalog load fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).parent / "model_configs"


class ModelError(Exception):
    """An architecture or checkpoint that cannot be resolved or loaded."""


@dataclass(frozen=True)
class ArchSpec:
    """One shipped architecture: its component configs and conventions."""

    name: str
    family: str  # "sd" (one text encoder) or "sdxl" (two, pooled + time ids)
    unet: dict[str, Any]
    vae: dict[str, Any]
    text_encoders: tuple[dict[str, Any], ...]
    scheduler: dict[str, Any]
    latent_channels: int = 4
    vae_scale_factor: int = 8
    default_resolution: int = 512
    aliases: tuple[str, ...] = ()
    description: str = ""

    @property
    def ckpt_name(self) -> str:
        return f"{self.name}.safetensors"


@lru_cache(maxsize=None)
def architectures() -> dict[str, ArchSpec]:
    """All shipped architectures by name."""
    out = {}
    for path in sorted(CONFIG_DIR.glob("*.json")):
        raw = json.loads(path.read_text())
        if raw["name"] != path.stem:
            raise ModelError(f"{path.name} declares name {raw['name']!r}; the file must be named after it")
        out[raw["name"]] = ArchSpec(
            name=raw["name"], family=raw["family"], unet=raw["unet"], vae=raw["vae"],
            text_encoders=tuple(raw["text_encoders"]), scheduler=raw["scheduler"],
            latent_channels=raw.get("latent_channels", 4), vae_scale_factor=raw.get("vae_scale_factor", 8),
            default_resolution=raw.get("default_resolution", 512), aliases=tuple(raw.get("aliases", ())),
            description=raw.get("description", ""))
    return out


def builtin_checkpoints() -> dict[str, str]:
    """ckpt_name -> architecture for the random-weight built-ins and aliases."""
    names = {}
    for arch in architectures().values():
        names[arch.ckpt_name] = arch.name
        for alias in arch.aliases:
            names[alias] = arch.name
    return names


def checkpoint_names(models_dir: Path | None) -> list[str]:
    """CheckpointLoaderSimple's choices: ``.safetensors`` files and diffusers
    model folders under ``models_dir``, plus the built-ins."""
    names = set(builtin_checkpoints())
    if models_dir is not None and Path(models_dir).is_dir():
        root = Path(models_dir)
        folders = {p.parent.parent for p in root.rglob("unet/config.json") if (p.parent.parent / "vae").is_dir()}
        names.update(p.relative_to(root).as_posix() for p in folders)
        names.update(p.relative_to(root).as_posix() for p in root.rglob("*.safetensors")
                     if not any(f in p.parents for f in folders))
    return sorted(names)
