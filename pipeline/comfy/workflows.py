"""API-format workflow builders.

The graphs are exactly what ComfyUI's "Save (API format)" writes for its
default txt2img workflow (node ids 3-9), so they run unchanged on a real
ComfyUI that has the named checkpoint.
"""

from __future__ import annotations

from typing import Any


def txt2img(prompt: str, negative: str = "", seed: int = 0, steps: int = 4, cfg: float = 7.0,
            width: int = 64, height: int = 64, sampler: str = "euler", scheduler: str = "normal",
            ckpt: str = "tiny.safetensors", batch_size: int = 1, filename_prefix: str = "comfyfab",
            denoise: float = 1.0) -> dict[str, Any]:
    """ComfyUI's default text-to-image graph in API format."""
    return {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler, "scheduler": scheduler,
            "denoise": denoise, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": height,
                                                           "batch_size": batch_size}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": filename_prefix, "images": ["8", 0]}},
    }
