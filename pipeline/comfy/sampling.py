"""Text encoding, KSampler and VAE decoding on a :class:`ModelBundle`.

ComfyUI's sampler and scheduler names are mapped to diffusers schedulers:

=================  ==============================================
ComfyUI sampler    diffusers scheduler
=================  ==============================================
euler              EulerDiscreteScheduler
euler_ancestral    EulerAncestralDiscreteScheduler (with karras /
                   exponential sigmas: an ancestral Euler step on
                   EulerDiscreteScheduler's sigmas, below)
heun               HeunDiscreteScheduler
dpm_2              KDPM2DiscreteScheduler
dpm_2_ancestral    KDPM2AncestralDiscreteScheduler
lms                LMSDiscreteScheduler
dpmpp_2m           DPMSolverMultistepScheduler, dpmsolver++, order 2
dpmpp_2m_sde       DPMSolverMultistepScheduler, sde-dpmsolver++
ddim               DDIMScheduler (with karras / exponential sigmas:
                   first-order DPM-Solver++, which is DDIM)
uni_pc             UniPCMultistepScheduler
=================  ==============================================

Schedulers: ``normal`` = linspace timesteps, ``simple`` = trailing
timesteps, ``karras`` / ``exponential`` = those sigma schedules.  As in
ComfyUI, the initial noise comes from a CPU generator seeded with the seed
(so it does not depend on the device), classifier-free guidance is skipped at
cfg == 1, and ``denoise < 1`` runs the last ``steps`` of ``steps / denoise``.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import torch

from .engines import Interrupted
from .models import ModelBundle

__all__ = ["Conditioning", "Interrupted", "SamplerError", "encode_text", "ksample", "make_scheduler", "to_uint8",
           "vae_decode"]


class SamplerError(ValueError):
    """An unknown sampler or scheduler name, or an impossible combination."""


@dataclass
class Conditioning:
    """ComfyUI's CONDITIONING: token embeddings plus, for SDXL, the pooled embedding."""

    context: torch.Tensor  # [1, tokens, dim]
    pooled: torch.Tensor | None = None  # [1, pooled_dim]


@torch.no_grad()
def encode_text(bundle: ModelBundle, text: str) -> Conditioning:
    """Encode ``text`` with every text encoder of the bundle (77-token windows)."""
    contexts, pooled = [], None
    for spec, encoder, tokenizer in zip(bundle.arch.text_encoders, bundle.text_encoders, bundle.tokenizers):
        ids = torch.tensor(tokenizer.windows(text), dtype=torch.long, device=bundle.device)
        out = encoder(input_ids=ids, output_hidden_states=True)
        hidden = out.hidden_states[-2] if spec.get("layer") == "penultimate" else out.last_hidden_state
        contexts.append(hidden.reshape(1, -1, hidden.shape[-1]))
        if spec.get("pooled"):
            pooled = out.text_embeds[:1]
    return Conditioning(torch.cat(contexts, dim=-1), pooled)


class _AncestralEulerOnSigmas:
    """Mixin: an ancestral Euler step on any EulerDiscreteScheduler sigma schedule."""

    def step(self, model_output, timestep, sample, generator=None, return_dict=True, **_: Any):
        from diffusers.schedulers.scheduling_euler_discrete import EulerDiscreteSchedulerOutput
        from diffusers.utils.torch_utils import randn_tensor

        if self.step_index is None:
            self._init_step_index(timestep)
        sigma = self.sigmas[self.step_index].item()
        sigma_next = self.sigmas[self.step_index + 1].item()
        x = sample.to(torch.float32)
        denoised = x - sigma * model_output.to(torch.float32)
        sigma_up = min(sigma_next, math.sqrt(max(sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2), 0.0) / sigma ** 2))
        sigma_down = math.sqrt(max(sigma_next ** 2 - sigma_up ** 2, 0.0))
        x = x + (x - denoised) / sigma * (sigma_down - sigma)
        if sigma_next > 0:
            x = x + randn_tensor(x.shape, generator=generator, device=x.device, dtype=x.dtype) * sigma_up
        self._step_index += 1
        prev = x.to(model_output.dtype)
        return EulerDiscreteSchedulerOutput(prev_sample=prev, pred_original_sample=denoised) if return_dict else (prev,)


def make_scheduler(sampler: str, scheduler: str, base: dict[str, Any]):
    """A fresh configured diffusers scheduler for ComfyUI's (sampler, scheduler)
    pair (a copy of a cached prototype: some constructors cost 0.25 s)."""
    return copy.deepcopy(_prototype(sampler, scheduler, json.dumps(base, sort_keys=True)))


@lru_cache(maxsize=64)
def _prototype(sampler: str, scheduler: str, base_json: str):
    import diffusers

    base = json.loads(base_json)

    table: dict[str, tuple[str, dict[str, Any]]] = {
        "euler": ("EulerDiscreteScheduler", {}),
        "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
        "heun": ("HeunDiscreteScheduler", {}),
        "dpm_2": ("KDPM2DiscreteScheduler", {}),
        "dpm_2_ancestral": ("KDPM2AncestralDiscreteScheduler", {}),
        "lms": ("LMSDiscreteScheduler", {}),
        "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
        "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
        "ddim": ("DDIMScheduler", {"set_alpha_to_one": False, "clip_sample": False}),
        "uni_pc": ("UniPCMultistepScheduler", {}),
    }
    if sampler not in table:
        raise SamplerError(f"unknown sampler {sampler!r}; known: {', '.join(table)}")
    schedules = {"normal": {"timestep_spacing": "linspace"}, "simple": {"timestep_spacing": "trailing"},
                 "karras": {"use_karras_sigmas": True}, "exponential": {"use_exponential_sigmas": True}}
    if scheduler not in schedules:
        raise SamplerError(f"unknown scheduler {scheduler!r}; known: {', '.join(schedules)}")
    class_name, extra = table[sampler]
    sigma_schedule = scheduler in ("karras", "exponential")
    if sigma_schedule and sampler == "euler_ancestral":
        base_cls = diffusers.EulerDiscreteScheduler
        cls = type("AncestralEulerScheduler", (_AncestralEulerOnSigmas, base_cls), {})
        extra = {}
    elif sigma_schedule and sampler == "ddim":
        cls = diffusers.DPMSolverMultistepScheduler
        extra = {"algorithm_type": "dpmsolver++", "solver_order": 1}
    else:
        cls = getattr(diffusers, class_name)
    config = {**base, **extra, **schedules[scheduler]}
    accepted = set(inspect.signature(cls.__init__).parameters)
    return cls(**{k: v for k, v in config.items() if k in accepted})


@torch.no_grad()
def ksample(bundle: ModelBundle, positive: Conditioning | list[Conditioning],
            negative: Conditioning | list[Conditioning], latent: torch.Tensor,
            seed: int | list[int], steps: int, cfg: float, sampler: str, scheduler: str, denoise: float = 1.0,
            on_step: Callable[[int, int], None] | None = None,
            interrupted: Callable[[], bool] | None = None) -> torch.Tensor:
    """Denoise ``latent`` ([B, C, h, w]) and return the sampled latent (float32, CPU).

    Several jobs in one batch: ``seed`` a list (one per latent: each sample's initial noise
    is what its own seed gives at batch 1) and ``positive``/``negative`` lists of the same
    length.  Only a deterministic sampler keeps each sample equal to its unbatched run (an
    ancestral or SDE step draws its noise for the whole batch from the first seed)."""
    if denoise <= 0:
        return latent.clone()
    sched = make_scheduler(sampler, scheduler, bundle.arch.scheduler)
    device, dtype = bundle.device, bundle.dtype
    total = steps if denoise >= 1 else max(steps, int(steps / denoise))
    sched.set_timesteps(total, device=device)
    begin = (total - steps) * sched.order
    timesteps = sched.timesteps[begin:]
    if hasattr(sched, "set_begin_index"):
        sched.set_begin_index(begin)
    batch = latent.shape[0]
    if isinstance(seed, (list, tuple)):
        if len(seed) != batch:
            raise SamplerError(f"{len(seed)} seeds for a batch of {batch}")
        one = (1, *latent.shape[1:])
        noise = torch.cat([torch.randn(one, generator=torch.Generator("cpu").manual_seed(int(s)),
                                       dtype=torch.float32) for s in seed]).to(device)
        generator = torch.Generator("cpu").manual_seed(int(seed[0]))
    else:
        generator = torch.Generator("cpu").manual_seed(int(seed))
        noise = torch.randn(latent.shape, generator=generator, dtype=torch.float32).to(device)
    x0 = latent.to(device=device, dtype=torch.float32)
    x = x0 + noise * sched.init_noise_sigma if denoise >= 1 else sched.add_noise(x0, noise, timesteps[:1])

    guided = cfg != 1.0
    groups = 2 if guided else 1  # the UNet sees [uncond x batch, cond x batch]
    pos_l = positive if isinstance(positive, list) else [positive] * batch
    neg_l = negative if isinstance(negative, list) else [negative] * batch
    if len(pos_l) != batch or len(neg_l) != batch:
        raise SamplerError(f"{len(pos_l)} positive and {len(neg_l)} negative conditionings for a batch of {batch}")
    conds = (neg_l + pos_l) if guided else pos_l
    # token windows repeated to a common length, as ComfyUI does for a positive/negative pair
    length = math.lcm(*(c.context.shape[1] for c in conds))
    ctx = torch.cat([c.context.repeat(1, length // c.context.shape[1], 1) for c in conds])
    pooled_all = [c.pooled for c in conds]
    ctx = ctx.to(device=device, dtype=dtype)
    added = None
    if bundle.arch.family == "sdxl":
        if any(p is None for p in pooled_all):
            raise SamplerError("an SDXL model needs pooled text embeddings: encode the prompt with its own CLIP")
        height, width = (d * bundle.arch.vae_scale_factor for d in latent.shape[-2:])
        time_ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=dtype, device=device)
        added = {"text_embeds": torch.cat(pooled_all).to(device=device, dtype=dtype),
                 "time_ids": time_ids.repeat(batch * groups, 1)}
    takes_generator = "generator" in inspect.signature(sched.step).parameters
    reported = 0
    for i, t in enumerate(timesteps):
        if interrupted is not None and interrupted():
            raise Interrupted("Processing interrupted")
        x_in = torch.cat([x] * groups)
        x_in = sched.scale_model_input(x_in, t).to(dtype)
        if device.type == "cuda":
            x_in = x_in.contiguous(memory_format=torch.channels_last)
        eps = bundle.unet(x_in, t, encoder_hidden_states=ctx, added_cond_kwargs=added).sample.float()
        if guided:
            uncond, cond = eps.chunk(2)
            eps = uncond + cfg * (cond - uncond)
        kwargs = {"generator": generator} if takes_generator else {}
        x = sched.step(eps, t, x, **kwargs).prev_sample.float()
        done = round((i + 1) * steps / len(timesteps))
        if on_step is not None and done != reported:
            reported = done
            on_step(done, steps)
    return x.cpu()


@torch.no_grad()
def vae_decode(bundle: ModelBundle, latent: torch.Tensor) -> torch.Tensor:
    """ComfyUI's IMAGE: [B, H, W, 3] float32 in [0, 1] on the CPU."""
    vae = bundle.vae
    scaled = latent.to(device=bundle.device, dtype=bundle.dtype) / vae.config.scaling_factor
    pixels = vae.decode(scaled).sample.float()
    pixels = torch.nan_to_num((pixels / 2 + 0.5).clamp(0, 1), nan=0.0)
    return pixels.permute(0, 2, 3, 1).cpu()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[H, W, 3] float image -> uint8 array, the way ComfyUI's SaveImage converts."""
    return np.clip(255.0 * image.numpy(), 0, 255).astype(np.uint8)
