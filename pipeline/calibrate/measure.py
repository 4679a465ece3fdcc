"""Timing the full txt2img path of the ComfyUI stand-in on one device.

What one *run* is: the path a worker's ComfyUI executes for one prompt of
``batch`` same-shape images, i.e. encoding the positive and the negative
prompt with every text encoder, sampling ``steps`` steps with
classifier-free guidance (two UNet evaluations per step, batched as one
call of ``2 * batch``), and decoding the latents with the VAE.  On CUDA a
run is timed with CUDA events (after a synchronise); on the CPU with
``time.perf_counter``.

Cold start is checkpoint load from local disk: the random-weight model is
written once with :func:`~pipeline.comfy.models.save_checkpoint` and read
back with :func:`~pipeline.comfy.models.load_bundle`, timed until the
weights are on the device.  The load is timed before anything else has read
the file in this process, but the OS page cache may hold it (it was just
written); ``drop_caches`` asks the kernel to drop it first (root only).

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode`
for one image (batch 1), per phase, on the uncompiled modules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from pipeline.comfy.fastload import ReadOptions
from pipeline.comfy.models import (ATTENTION_BACKENDS, COMPILE_SCOPES, FP8_RECIPES, ModelBundle, ModelError,
                                   architectures, attention_backend, compile_bundle, fp8_calibration_run, fp8_recipe,
                                   load_bundle, quantize_fp8, save_checkpoint, uncompiled)
from pipeline.comfy.sampling import encode_text, ksample, vae_decode

__all__ = ["CalibrationError", "CalibrationSpec", "FlopCount", "LoadTiming", "count_flops", "count_flops_meta",
           "device_name", "quantized", "resolve_device", "shipped_arch", "time_load", "time_runs", "timed",
           "txt2img_once", "unet_inputs"]

POSITIVE = "a lighthouse on a cliff at dusk, volumetric light, highly detailed"
NEGATIVE = "blurry, low quality"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class CalibrationError(ValueError):
    """A calibration that cannot run as asked (bad flag, missing device, bad checkpoint)."""


@dataclass(frozen=True)
class CalibrationSpec:
    """One calibration: which model, shape, sampler and device, and how many runs."""

    model: str = "tiny"
    device: str = "cpu"
    resolution: int = 64
    steps: int = 4
    batches: tuple[int, ...] = (1,)
    sampler: str = "dpmpp_2m"
    scheduler: str = "karras"
    cfg: float = 7.0
    runs: int = 10
    warmup: int = 2
    dtype: str | None = None  # None: bf16 on CUDA, fp32 on the CPU
    compile: str | None = None  # torch.compile: None, "full" (one graph per model) or "regional" (its repeated blocks)
    channels_last: bool | None = None  # None: on for CUDA
    seed: int = 0
    fp8: str | bool | None = None  # the UNet's transformer projections in FP8: None, "scaled-mm" (True),
                                   # "static" or "torchao" (CUDA, compute capability 8.9+)
    attention: str = "auto"  # the SDPA kernel tried first: auto (torch's order), cudnn, flash, efficient, math

    def __post_init__(self) -> None:
        if self.resolution <= 0 or self.resolution % 8:
            raise CalibrationError(f"--resolution must be a positive multiple of 8, got {self.resolution}")
        if self.steps < 1:
            raise CalibrationError(f"--steps must be at least 1, got {self.steps}")
        if not self.batches or min(self.batches) < 1:
            raise CalibrationError(f"--batch sizes must be at least 1, got {list(self.batches)}")
        if self.runs < 2:
            raise CalibrationError(f"--runs must be at least 2 (p50/p90 and a fit need samples), got {self.runs}")
        if self.warmup < 0:
            raise CalibrationError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise CalibrationError(f"--dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.attention not in ATTENTION_BACKENDS:
            raise CalibrationError(f"--attention must be one of {', '.join(ATTENTION_BACKENDS)}, got {self.attention!r}")
        if self.compile is not None and self.compile not in COMPILE_SCOPES:
            raise CalibrationError(f"--compile must be one of {', '.join(COMPILE_SCOPES)}, got {self.compile!r}")
        try:
            object.__setattr__(self, "fp8", fp8_recipe(self.fp8))
        except ModelError as exc:
            raise CalibrationError(f"--fp8: {exc}") from None
        if self.fp8 and torch.device(self.device).type != "cuda":
            raise CalibrationError("--fp8 needs --device cuda (a GPU of compute capability 8.9 or newer)")

    @property
    def variant(self) -> str:
        """What sets this run apart from the plain one, for profile names: ``-fp8`` (``-fp8-static``,
        ``-fp8-torchao`` for those recipes), ``-cudnn``, ``-compiled`` or ``-compiled-regional``."""
        compiled = ("-compiled" + ("-regional" if self.compile == "regional" else "")) if self.compile else ""
        fp8 = ("-fp8" + ("" if self.fp8 == FP8_RECIPES[0] else f"-{self.fp8}")) if self.fp8 else ""
        return fp8 + ("" if self.attention == "auto" else f"-{self.attention}") + compiled

    @property
    def torch_dtype(self) -> torch.dtype:
        if self.dtype is not None:
            return DTYPES[self.dtype]
        return torch.float32 if torch.device(self.device).type == "cpu" else torch.bfloat16

    @property
    def dtype_name(self) -> str:
        return {v: k for k, v in DTYPES.items()}[self.torch_dtype]


def shipped_arch(model: str, hint: str = "") -> Any:
    """The shipped architecture named ``model`` (an :class:`~pipeline.comfy.archs.ArchSpec`), or a
    CalibrationError naming the ones there are (``hint`` appended)."""
    arch = architectures().get(model)
    if arch is None:
        raise CalibrationError(f"--model {model!r} is not a shipped architecture "
                               f"({', '.join(sorted(architectures()))}){hint}")
    return arch


def unet_inputs(arch: Any, pairs: int, side: int,
                dtype: torch.dtype = torch.float32) -> tuple[tuple, dict[str, Any]]:
    """Positional and keyword arguments of one UNet evaluation of ``pairs`` latents ``side`` wide,
    with a 77-token context (and SDXL's pooled embeddings and size ids), in ``dtype`` (the timestep
    stays fp32) on the default device (build them under ``torch.device("meta")`` for shapes only)."""
    contexts = sum(spec["config"]["hidden_size"] for spec in arch.text_encoders)
    added = None
    if arch.family == "sdxl":
        pooled = next(s["config"]["projection_dim"] for s in arch.text_encoders if s.get("pooled"))
        added = {"text_embeds": torch.zeros(pairs, pooled, dtype=dtype),
                 "time_ids": torch.zeros(pairs, 6, dtype=dtype)}
    return ((torch.zeros(pairs, arch.latent_channels, side, side, dtype=dtype), torch.tensor(999.0)),
            {"encoder_hidden_states": torch.zeros(pairs, 77, contexts, dtype=dtype), "added_cond_kwargs": added})


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one call of ``fn``: CUDA events on a GPU (after a synchronise), the wall clock on a CPU."""
    _sync(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def quantized(bundle: ModelBundle, recipe: str | None = None, resolution: int | None = None) -> ModelBundle:
    """:func:`~pipeline.comfy.models.quantize_fp8` with ``recipe`` (None: the default one), its refusal as
    a CalibrationError.  The static recipe fixes its scales on a short txt2img at ``resolution``."""
    recipe = recipe or FP8_RECIPES[0]
    try:
        return quantize_fp8(bundle, recipe=recipe, calibrate=fp8_calibration_run(bundle, resolution))
    except ModelError as exc:
        raise CalibrationError(str(exc)) from None


def resolve_device(device: str) -> torch.device:
    """``cpu`` or ``cuda[:N]``; a clear error when CUDA is asked for and absent."""
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise CalibrationError(f"--device must be cpu or cuda[:N], got {device!r} ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CalibrationError(f"--device {device} asked for, but this torch ({torch.__version__}) sees no "
                                   "CUDA device; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CalibrationError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise CalibrationError(f"--device must be cpu or cuda, got {device!r}")
    return dev


def device_name(device: torch.device) -> str:
    """The accelerator's marketing name, or the CPU model from /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def txt2img_once(bundle: ModelBundle, resolution: int, steps: int, batch: int, sampler: str, scheduler: str,
                 cfg: float, seed: int) -> torch.Tensor:
    """One prompt of ``batch`` images through encode, KSampler and VAE decode; returns the images."""
    scale = bundle.arch.vae_scale_factor
    latent = torch.zeros(batch, bundle.arch.latent_channels, resolution // scale, resolution // scale)
    positive = encode_text(bundle, POSITIVE)
    negative = encode_text(bundle, NEGATIVE)
    sampled = ksample(bundle, positive, negative, latent, seed, steps, cfg, sampler, scheduler)
    return vae_decode(bundle, sampled)


def time_runs(bundle: ModelBundle, spec: CalibrationSpec, batch: int,
              progress: Callable[[int, int], None] | None = None, warmups: list[float] | None = None) -> list[float]:
    """``spec.warmup`` untimed runs, then ``spec.runs`` timed runs (seconds per run of ``batch`` images).
    The warm-up runs' seconds go into ``warmups`` when given: a compiled bundle's first one pays the compile."""
    total = spec.warmup + spec.runs
    samples: list[float] = []
    with attention_backend(spec.attention):  # the warm-up runs trace a compiled module under it too
        for i in range(total):
            seconds = timed(lambda seed=spec.seed + i: txt2img_once(
                bundle, spec.resolution, spec.steps, batch, spec.sampler, spec.scheduler, spec.cfg, seed),
                bundle.device)
            if i >= spec.warmup:
                samples.append(seconds)
            elif warmups is not None:
                warmups.append(seconds)
            if progress is not None:
                progress(i + 1, total)
    return samples


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one image (batch 1) through the full path, by phase."""

    text: int
    sampling: int
    decode: int
    steps: int

    @property
    def total(self) -> int:
        return self.text + self.sampling + self.decode

    @property
    def per_step(self) -> float:
        return self.sampling / self.steps


@torch.no_grad()
def count_flops(bundle: ModelBundle, spec: CalibrationSpec) -> FlopCount:
    """Count one image's FLOPs per phase (matmuls and convolutions, as FlopCounterMode counts them)."""
    from torch.utils.flop_counter import FlopCounterMode

    b = uncompiled(bundle)
    scale = b.arch.vae_scale_factor
    latent = torch.zeros(1, b.arch.latent_channels, spec.resolution // scale, spec.resolution // scale)
    with FlopCounterMode(display=False) as text_counter:
        positive = encode_text(b, POSITIVE)
        negative = encode_text(b, NEGATIVE)
    with FlopCounterMode(display=False) as sample_counter:
        sampled = ksample(b, positive, negative, latent, spec.seed, spec.steps, spec.cfg, spec.sampler,
                          spec.scheduler)
    with FlopCounterMode(display=False) as decode_counter:
        vae_decode(b, sampled)
    return FlopCount(text_counter.get_total_flops(), sample_counter.get_total_flops(),
                     decode_counter.get_total_flops(), spec.steps)


@torch.no_grad()
def count_flops_meta(model: str, resolution: int, steps: int, cfg: float = 7.0) -> FlopCount:
    """One image's FLOPs for a shipped architecture counted on the meta device: no weights, no memory,
    seconds even for SDXL.  Counts what :func:`count_flops` counts on a real run except the scheduler's
    elementwise arithmetic (FlopCounterMode counts matmuls and convolutions only, so the two agree)."""
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline.comfy.models import build_components

    arch = shipped_arch(model)
    unet, vae, encoders = build_components(arch, "meta")
    pairs = 2 if cfg != 1.0 else 1
    side = resolution // arch.vae_scale_factor
    with torch.device("meta"):
        text = 0
        for spec, encoder in zip(arch.text_encoders, encoders):
            with FlopCounterMode(display=False) as counter:
                encoder(input_ids=torch.zeros(2, 77, dtype=torch.long), output_hidden_states=True)
            text += counter.get_total_flops()
        args, kwargs = unet_inputs(arch, pairs, side)
        with FlopCounterMode(display=False) as counter:
            unet(*args, **kwargs)
        per_step = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            vae.decode(torch.zeros(1, arch.latent_channels, side, side))
        decode = counter.get_total_flops()
    return FlopCount(text, per_step * steps, decode, steps)


@dataclass
class LoadTiming:
    """Checkpoint load from local disk: seconds per load, the file and its size."""

    seconds: list[float]
    path: Path
    bytes: int
    page_cache: str  # "dropped" or "possibly warm"
    bundle: ModelBundle | None = field(default=None, repr=False)
    phases: list[dict[str, Any]] = field(default_factory=list)  # per load: seconds per step, the reader used

    def median_phases(self) -> dict[str, float]:
        """Each step's median seconds over the loads (steps a load did not take count as absent)."""
        names = sorted({k for p in self.phases for k, v in p.items() if isinstance(v, float)})
        return {k: float(np.median([p[k] for p in self.phases if k in p])) for k in names}

    @property
    def reader(self) -> str | None:
        return next((p["reader"] for p in self.phases if "reader" in p), None)


def _drop_page_cache() -> bool:
    try:
        import os

        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def prepare_checkpoint(spec: CalibrationSpec, cache_dir: Path, checkpoint: Path | None = None) -> Path:
    """The file to time loading: ``checkpoint`` if given, else the random-weight
    model written once (per architecture and dtype) under ``cache_dir``."""
    if checkpoint is not None:
        if not checkpoint.is_file() and not checkpoint.is_dir():
            raise CalibrationError(f"--checkpoint {checkpoint} does not exist")
        return checkpoint
    shipped_arch(spec.model, "; give --checkpoint PATH for a real one")
    path = cache_dir / f"{spec.model}-{spec.dtype_name}.safetensors"
    if not path.is_file():
        device = resolve_device(spec.device)
        built = load_bundle(f"{spec.model}.safetensors", device=str(device), dtype=spec.torch_dtype,
                            channels_last=False, fuse_qkv=False)
        tmp = path.with_suffix(".partial")
        save_checkpoint(built, tmp)
        tmp.replace(path)
        del built
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return path


def _empty_host_cache() -> None:
    """Give back the pinned host blocks that torch caches; a second load would otherwise reuse
    the first one's and skip the pinning a cold process pays."""
    empty = getattr(getattr(torch, "accelerator", None), "empty_host_cache", None) or \
        getattr(torch._C, "_host_emptyCache", None)
    if empty is not None:
        empty()


def _preimport(compile_unet: bool) -> None:
    """Import the model classes first, so a timed load is reading and placing weights, not importing code."""
    import diffusers  # noqa: F401
    import safetensors.torch  # noqa: F401
    from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: F401
    from transformers import CLIPTextModel, CLIPTextModelWithProjection  # noqa: F401
    if compile_unet:
        import torch._dynamo  # noqa: F401  (torch.compile's wrapper; the compile itself happens at warm-up)


def time_load(spec: CalibrationSpec, path: Path, loads: int = 1, drop_caches: bool = False,
              reader: ReadOptions | None = None) -> LoadTiming:
    """Load ``path`` ``loads`` times onto the device with ``reader``'s settings; keep the last bundle
    (its UNet wrapped in ``torch.compile`` after the timing when asked) and each load's steps."""
    device = resolve_device(spec.device)
    _preimport(spec.compile is not None)
    seconds: list[float] = []
    phases: list[dict[str, Any]] = []
    dropped = True
    bundle = None
    for _ in range(max(1, loads)):
        bundle = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
            _empty_host_cache()  # each load pins its own host buffers, as a fresh worker process does
        if drop_caches:
            dropped = _drop_page_cache() and dropped
        _sync(device)
        steps: dict[str, Any] = {}
        t0 = time.perf_counter()
        try:
            bundle = load_bundle(path.name, models_dir=path.parent, device=str(device), dtype=spec.torch_dtype,
                                 channels_last=spec.channels_last, reader=reader, phases=steps)
        except ModelError as exc:
            raise CalibrationError(f"cannot load {path}: {exc}") from None
        _sync(device)
        seconds.append(time.perf_counter() - t0)
        phases.append(steps)
    if spec.fp8 and bundle is not None:  # a worker would quantize after its load: timed as a step of the last one
        t0 = time.perf_counter()
        bundle = quantized(bundle, spec.fp8, spec.resolution)
        _sync(device)
        phases[-1]["quantize_s"] = time.perf_counter() - t0
    if spec.compile and bundle is not None:  # wrapped outside the timed load; the compile runs at warm-up
        bundle = compile_bundle(bundle, scope=spec.compile)
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return LoadTiming(seconds, path, size, "dropped" if drop_caches and dropped else "possibly warm", bundle, phases)
