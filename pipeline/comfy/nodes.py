"""The node catalog of the stand-in: ComfyUI's core txt2img nodes, as data.

Each :class:`NodeSpec` carries what ComfyUI's node classes declare
(``INPUT_TYPES``, ``RETURN_TYPES``, ``RETURN_NAMES``, ``OUTPUT_NODE``,
``CATEGORY``) with ComfyUI's own input names, types, defaults and bounds, so
that ``/object_info`` has the same shape as a real server's.  How a node
executes lives in the engines (:mod:`pipeline.comfy.engines`), not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_RESOLUTION = 16384
PRIMITIVE_TYPES = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
MAX_SEED = 0xFFFFFFFFFFFFFFFF

# ComfyUI's sampler and scheduler names that the stand-in maps to diffusers
# schedulers (see pipeline.comfy.sampling for the mapping).
SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms",
            "dpmpp_2m", "dpmpp_2m_sde", "ddim", "uni_pc")
SCHEDULERS = ("normal", "karras", "exponential", "simple")


@dataclass(frozen=True)
class NodeSpec:
    """What one ComfyUI node class declares: its typed inputs and outputs.

    ``required``/``optional`` map an input name to ComfyUI's input tuple:
    ``(TYPE,)`` or ``(TYPE, {options})``, where TYPE is a type name such as
    ``"INT"`` or ``"MODEL"`` or, for a combo box, the list of allowed values.
    """

    name: str
    display_name: str
    category: str
    description: str
    required: dict[str, tuple]
    outputs: tuple[str, ...]
    output_names: tuple[str, ...] | None = None
    optional: dict[str, tuple] = field(default_factory=dict)
    hidden: dict[str, str] = field(default_factory=dict)
    output_node: bool = False

    def object_info(self) -> dict[str, Any]:
        """This node's entry in ComfyUI's ``/object_info`` format."""
        inputs: dict[str, Any] = {"required": {k: _jsonable(v) for k, v in self.required.items()}}
        if self.optional:
            inputs["optional"] = {k: _jsonable(v) for k, v in self.optional.items()}
        if self.hidden:
            inputs["hidden"] = dict(self.hidden)
        order = {section: list(values) for section, values in inputs.items()}
        return {
            "input": inputs,
            "input_order": order,
            "output": list(self.outputs),
            "output_is_list": [False] * len(self.outputs),
            "output_name": list(self.output_names or self.outputs),
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": "nodes",
            "category": self.category,
            "output_node": self.output_node,
        }


def _jsonable(spec: tuple) -> list:
    kind = spec[0]
    out: list = [list(kind) if isinstance(kind, (list, tuple)) else kind]
    if len(spec) > 1:
        out.append(dict(spec[1]))
    return out


def node_specs(checkpoints: list[str]) -> dict[str, NodeSpec]:
    """The catalog, with ``checkpoints`` as CheckpointLoaderSimple's choices."""
    specs = [
        NodeSpec(
            name="CheckpointLoaderSimple", display_name="Load Checkpoint", category="loaders",
            description="Loads a diffusion model checkpoint; diffusion models are used to denoise latents.",
            required={"ckpt_name": (list(checkpoints), {"tooltip": "The name of the checkpoint (model) to load."})},
            outputs=("MODEL", "CLIP", "VAE")),
        NodeSpec(
            name="CLIPTextEncode", display_name="CLIP Text Encode (Prompt)", category="conditioning",
            description="Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion model.",
            required={"text": ("STRING", {"multiline": True, "dynamicPrompts": True}),
                      "clip": ("CLIP",)},
            outputs=("CONDITIONING",)),
        NodeSpec(
            name="EmptyLatentImage", display_name="Empty Latent Image", category="latent",
            description="Create a new batch of empty latent images to be denoised via sampling.",
            required={"width": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}),
                      "height": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}),
                      "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096})},
            outputs=("LATENT",)),
        NodeSpec(
            name="KSampler", display_name="KSampler", category="sampling",
            description="Uses the provided model, positive and negative conditioning to denoise the latent image.",
            required={"model": ("MODEL",),
                      "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}),
                      "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
                      "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
                      "sampler_name": (list(SAMPLERS),),
                      "scheduler": (list(SCHEDULERS),),
                      "positive": ("CONDITIONING",),
                      "negative": ("CONDITIONING",),
                      "latent_image": ("LATENT",),
                      "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})},
            outputs=("LATENT",)),
        NodeSpec(
            name="VAEDecode", display_name="VAE Decode", category="latent",
            description="Decodes latent images back into pixel space images.",
            required={"samples": ("LATENT",), "vae": ("VAE",)},
            outputs=("IMAGE",)),
        NodeSpec(
            name="SaveImage", display_name="Save Image", category="image",
            description="Saves the input images to your ComfyUI output directory.",
            required={"images": ("IMAGE",),
                      "filename_prefix": ("STRING", {"default": "ComfyUI"})},
            hidden={"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
            outputs=(), output_node=True),
    ]
    return {spec.name: spec for spec in specs}


def object_info(checkpoints: list[str]) -> dict[str, dict[str, Any]]:
    """The whole ``/object_info`` document for the catalog."""
    return {name: spec.object_info() for name, spec in node_specs(checkpoints).items()}
