"""How each node of the catalog executes: a torch engine and a no-op engine.

An engine turns one node's resolved inputs into its outputs (a tuple, one
value per declared output) and, for output nodes, the ``ui`` dict that
ComfyUI reports in history and in the ``executed`` message.  The torch
engine really runs the models; the no-op engine keeps every type and the
graph flow but does no tensor work, and SaveImage writes a small PNG derived
from the seed, for throughput benchmarks of the surrounding pipeline.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo


class Interrupted(Exception):
    """Execution was interrupted between sampling steps (``POST /interrupt``)."""


class NodeExecutionError(RuntimeError):
    """A node failed for a reason of its own (bad path, bad model, ...)."""


@dataclass
class NodeContext:
    """What a node may use while it runs besides its inputs."""

    prompt_id: str
    node_id: str
    prompt: dict[str, Any]
    extra_pnginfo: dict[str, Any] | None
    output_dir: Path
    progress: Callable[[int, int], None]
    interrupted: Callable[[], bool]


class Engine(Protocol):
    """Executes nodes by class name."""

    name: str

    def run_node(self, class_type: str, inputs: dict[str, Any], ctx: NodeContext) -> tuple[tuple, dict | None]:
        ...


_COUNTER = re.compile(r"_(\d{5})_\.png$")


def save_pngs(images: list[np.ndarray], filename_prefix: str, ctx: NodeContext) -> dict[str, Any]:
    """Write ``images`` (uint8 [H, W, 3]) as ComfyUI's SaveImage does:
    ``<prefix>_<counter:05>_.png`` under the output dir (a ``/`` in the
    prefix makes a subfolder), with the prompt in a PNG text chunk."""
    root = ctx.output_dir.resolve()
    folder = (root / filename_prefix).parent.resolve()
    if folder != root and root not in folder.parents:
        raise NodeExecutionError("Saving image outside the output folder is not allowed.")
    stem = Path(filename_prefix).name or "ComfyUI"
    folder.mkdir(parents=True, exist_ok=True)
    subfolder = folder.relative_to(root).as_posix()
    subfolder = "" if subfolder == "." else subfolder
    with _COUNTERS_LOCK:
        counter = _next_counter(folder, stem, len(images))
    results = []
    for array in images:
        meta = PngInfo()
        meta.add_text("prompt", json.dumps(ctx.prompt, sort_keys=True))
        for key, value in (ctx.extra_pnginfo or {}).items():
            meta.add_text(key, json.dumps(value, sort_keys=True))
        name = f"{stem}_{counter:05}_.png"
        Image.fromarray(array).save(folder / name, pnginfo=meta, compress_level=4)
        results.append({"filename": name, "subfolder": subfolder, "type": "output"})
        counter += 1
    return {"images": results}


# (folder, stem) -> the last counter this process handed out there.  ComfyUI lists the folder on
# every save, which costs time in proportion to the images already saved; the folder is listed
# once here, and again only when a name that should be free is taken (another writer).
_COUNTERS: dict[tuple[Path, str], int] = {}
_COUNTERS_LOCK = threading.Lock()


def _next_counter(folder: Path, stem: str, n: int) -> int:
    """The first of ``n`` counters for ``<stem>_<counter:05>_.png`` in ``folder``, reserved."""
    key = (folder, stem)
    last = _COUNTERS.get(key)
    if last is None or any((folder / f"{stem}_{last + k:05}_.png").exists() for k in (1, n)):
        last = max((int(m.group(1)) for p in folder.glob(f"{glob_escape(stem)}_*_.png")
                    if (m := _COUNTER.search(p.name)) and p.name[:-len(m.group(0))] == stem), default=0)
    _COUNTERS[key] = last + n
    return last + 1


def _empty_latent(batch: int, width: int, height: int) -> Any:
    """ComfyUI's EmptyLatentImage: zeros of 4 channels at an eighth of the image size."""
    import torch

    return torch.zeros(batch, 4, height // 8, width // 8)


def glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)


@dataclass(frozen=True)
class TorchOptions:
    """How the torch engine runs its models: the stand-in's ``--device``, ``--cpu-threads``,
    ``--compile``, ``--fp8`` and ``--attention`` (what ``comfyfab calibrate`` measures with the
    same names)."""

    device: str = "cpu"
    dtype: Any = None                # None: bf16 on a GPU, fp32 on the CPU
    cpu_threads: int | None = None   # torch's intra-op threads (process-wide)
    compile: str | None = None       # torch.compile each model's UNet and VAE decoder: None (eager),
                                     # "full" (one graph each) or "regional" (block by block)
    fp8: str | bool | None = None    # the UNet's transformer projections in FP8: None, "scaled-mm" (True),
                                     # "static" or "torchao" (CUDA 8.9+)
    attention: str = "auto"          # the SDPA kernel tried first
    fp8_calibration_prompts: tuple[str, ...] = ()  # the static recipe's calibration (default: one fixed prompt)

    def __post_init__(self) -> None:
        from .models import ATTENTION_BACKENDS, COMPILE_SCOPES, ModelError, fp8_recipe

        if self.compile is not None and self.compile not in COMPILE_SCOPES:
            raise ValueError(f"compile scope must be one of {', '.join(COMPILE_SCOPES)}, got {self.compile!r}")
        if self.attention not in ATTENTION_BACKENDS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION_BACKENDS)}, got {self.attention!r}")
        try:
            object.__setattr__(self, "fp8", fp8_recipe(self.fp8))
        except ModelError as exc:
            raise ValueError(str(exc)) from None
        if self.fp8 and not self.device.startswith("cuda"):
            raise ValueError(f"fp8 needs a CUDA device of compute capability 8.9 or newer, not {self.device!r}")
        object.__setattr__(self, "fp8_calibration_prompts", tuple(self.fp8_calibration_prompts))
        if self.fp8_calibration_prompts and self.fp8 != "static":
            raise ValueError("calibration prompts fix the static FP8 recipe's input scales: they need fp8 'static', "
                             f"not {self.fp8!r}")


class TorchEngine:
    """Runs the core txt2img nodes with torch + diffusers models.

    Loaded checkpoints stay in memory (like ComfyUI keeping models loaded),
    keyed by checkpoint name, quantized and compiled as ``options`` say; every
    sampling and decode runs under ``options.attention``.
    """

    name = "torch"

    def __init__(self, models_dir: Path | None = None, options: TorchOptions = TorchOptions()):
        if options.cpu_threads is not None:
            import torch

            # Process-wide: on a small shared CPU, one intra-op thread avoids
            # OpenMP threads spinning against each other (seconds per image).
            torch.set_num_threads(options.cpu_threads)
        self.models_dir = models_dir
        self.options = options
        self._bundles: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        return self.options.device

    def bundle(self, ckpt_name: str):
        from .models import ModelError, compile_bundle, fp8_calibration_run, load_bundle, quantize_fp8

        o = self.options
        with self._lock:
            if ckpt_name not in self._bundles:
                bundle = load_bundle(ckpt_name, self.models_dir, o.device, o.dtype)
                try:
                    # (the calibration run is used by the static recipe only; with no prompts, its fixed one)
                    calibrate = fp8_calibration_run(bundle, prompts=o.fp8_calibration_prompts)
                    bundle = quantize_fp8(bundle, o.fp8, calibrate) if o.fp8 else bundle
                except ModelError as exc:
                    raise NodeExecutionError(str(exc)) from None
                self._bundles[ckpt_name] = compile_bundle(bundle, scope=o.compile) if o.compile else bundle
            return self._bundles[ckpt_name]

    def _attention(self):
        from .models import attention_backend

        return attention_backend(self.options.attention)

    def run_batch(self, prompts: list[dict[str, Any]]) -> list[dict[str, tuple]]:
        """Text encodes, KSampler and VAE decode of same-key prompts (:mod:`.batching`) in one batch;
        per prompt, those nodes' results by node id."""
        from . import sampling
        from .batching import plan

        ids = plan(prompts[0])
        first = prompts[0]
        ks = first[ids["ksampler"]]["inputs"]
        bundle = self.bundle(first[ids["model"]]["inputs"]["ckpt_name"])
        pos = [sampling.encode_text(bundle, str(p[ids["positive"]]["inputs"]["text"])) for p in prompts]
        neg = [sampling.encode_text(bundle, str(p[ids["negative"]]["inputs"]["text"])) for p in prompts]
        size = first[ids["latent"]]["inputs"]
        latent = _empty_latent(len(prompts), int(size["width"]), int(size["height"]))
        seeds = [int(p[ids["ksampler"]]["inputs"]["seed"]) for p in prompts]
        with self._attention():
            samples = sampling.ksample(bundle, pos, neg, latent, seeds, int(ks["steps"]), float(ks["cfg"]),
                                       str(ks["sampler_name"]), str(ks["scheduler"]))
            images = sampling.vae_decode(bundle, samples)
        return [{ids["positive"]: (pos[i],), ids["negative"]: (neg[i],),
                 ids["ksampler"]: ({"samples": samples[i:i + 1]},), ids["vae_decode"]: (images[i:i + 1],)}
                for i in range(len(prompts))]

    def run_node(self, class_type: str, inputs: dict[str, Any], ctx: NodeContext) -> tuple[tuple, dict | None]:
        from . import sampling

        if class_type == "CheckpointLoaderSimple":
            bundle = self.bundle(inputs["ckpt_name"])
            return (bundle, bundle, bundle), None
        if class_type == "CLIPTextEncode":
            return (sampling.encode_text(inputs["clip"], inputs["text"]),), None
        if class_type == "EmptyLatentImage":
            return ({"samples": _empty_latent(inputs["batch_size"], inputs["width"], inputs["height"])},), None
        if class_type == "KSampler":
            latent = dict(inputs["latent_image"])
            with self._attention():
                latent["samples"] = sampling.ksample(
                    inputs["model"], inputs["positive"], inputs["negative"], latent["samples"], inputs["seed"],
                    inputs["steps"], inputs["cfg"], inputs["sampler_name"], inputs["scheduler"], inputs["denoise"],
                    on_step=ctx.progress, interrupted=ctx.interrupted)
            return (latent,), None
        if class_type == "VAEDecode":
            with self._attention():
                return (sampling.vae_decode(inputs["vae"], inputs["samples"]["samples"]),), None
        if class_type == "SaveImage":
            arrays = [sampling.to_uint8(img) for img in inputs["images"]]
            return (), save_pngs(arrays, inputs["filename_prefix"], ctx)
        raise NodeExecutionError(f"the torch engine cannot execute {class_type}")


@dataclass(frozen=True)
class NoopTensor:
    """Stands in for a model, conditioning, latent or image in the no-op engine."""

    kind: str
    width: int = 0
    height: int = 0
    batch: int = 1
    seed: int = 0


class NoopEngine:
    """Same graph flow, no tensor work: SaveImage writes small seeded PNGs."""

    name = "noop"
    MAX_SIDE = 64

    def run_node(self, class_type: str, inputs: dict[str, Any], ctx: NodeContext) -> tuple[tuple, dict | None]:
        if class_type == "CheckpointLoaderSimple":
            return (NoopTensor("MODEL"), NoopTensor("CLIP"), NoopTensor("VAE")), None
        if class_type == "CLIPTextEncode":
            return (NoopTensor("CONDITIONING"),), None
        if class_type == "EmptyLatentImage":
            return (NoopTensor("LATENT", inputs["width"], inputs["height"], inputs["batch_size"]),), None
        if class_type == "KSampler":
            latent = inputs["latent_image"]
            for step in range(1, inputs["steps"] + 1):
                if ctx.interrupted():
                    raise Interrupted("Processing interrupted")
                ctx.progress(step, inputs["steps"])
            return (NoopTensor("LATENT", latent.width, latent.height, latent.batch, inputs["seed"]),), None
        if class_type == "VAEDecode":
            s = inputs["samples"]
            return (NoopTensor("IMAGE", s.width, s.height, s.batch, s.seed),), None
        if class_type == "SaveImage":
            image = inputs["images"]
            return (), save_pngs(self.pixels(image), inputs["filename_prefix"], ctx)
        raise NodeExecutionError(f"the noop engine cannot execute {class_type}")

    def pixels(self, image: NoopTensor) -> list[np.ndarray]:
        """One small deterministic image per batch item, from the seed: a colour gradient whose start
        colour and slopes a hash of the seed and the item's index picks.  A gradient, not noise: PNG
        compresses it to a few hundred bytes in half the time that 12 KB of incompressible noise took,
        and the bytes then cross /view and the S3 upload of every job (the PNG's prompt chunk holds the
        seed in any case).  uint8 arithmetic wraps at 256, which makes the gradient repeat."""
        height = max(1, min(self.MAX_SIDE, image.height))
        width = max(1, min(self.MAX_SIDE, image.width))
        xs = np.arange(width, dtype=np.uint8)[None, :, None]
        ys = np.arange(height, dtype=np.uint8)[:, None, None]
        out = []
        for index in range(image.batch):
            drawn = np.frombuffer(hashlib.blake2b(f"{image.seed}/{index}".encode(), digest_size=9).digest(),
                                  dtype=np.uint8)
            start, across, down = drawn[:3], drawn[3:6] % 7 + 1, drawn[6:] % 7 + 1
            out.append(start + xs * across + ys * down)
        return out


def make_engine(engine: str, models_dir: Path | None = None, options: TorchOptions = TorchOptions()) -> Engine:
    """The engine named ``engine`` ("torch" or "noop"; ``options`` are the torch engine's)."""
    if engine == "torch":
        return TorchEngine(models_dir, options)
    if engine == "noop":
        return NoopEngine()
    raise ValueError(f"unknown engine {engine!r}; expected 'torch' or 'noop'")
