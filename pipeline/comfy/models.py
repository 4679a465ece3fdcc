"""Model architectures for the stand-in, built from shipped JSON configs.

Every architecture in ``model_configs/`` (``tiny``, ``tiny-xl``, ``sd15``,
``sdxl``) is built with diffusers' ``UNet2DConditionModel.from_config`` and
``AutoencoderKL.from_config`` and transformers' CLIP text models from a
``CLIPTextConfig``.  No weights are downloaded: unless a real local
checkpoint is given, weights are random but DETERMINISTIC (each component is
initialised under its own fixed seed), so the timings are the architecture's
and the same seed gives the same image.  Text goes through
:class:`~pipeline.comfy.tokenizer.HashTokenizer`, not CLIP's vocabulary.

A checkpoint file written by :func:`save_checkpoint` (safetensors, diffusers
key layout under ``unet.``/``vae.``/``text_encoders.<name>.`` prefixes, the
architecture named in its metadata) loads back bit-for-bit.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from .archs import ArchSpec, ModelError, architectures, builtin_checkpoints, checkpoint_names
from .fastload import ReadOptions, read_safetensors

__all__ = ["ArchSpec", "ModelBundle", "ModelError", "architectures", "build_components", "builtin_checkpoints",
           "checkpoint_names", "ATTENTION_BACKENDS", "COMPILE_SCOPES", "FP8_RECIPES", "REGIONS", "Fp8Linear",
           "attention_backend", "attention_name", "add_compile_argument", "add_fp8_argument", "allow_recompiles",
           "compile_bundle", "compile_scope", "fp8_calibration_run", "fp8_layers", "fp8_observe", "fp8_recipe",
           "fp8_refusal", "fp8_swap", "fp8_targets", "load_bundle", "quantize_fp8", "read_calibration_prompts",
           "save_checkpoint", "sdpa_kernels", "uncompiled"]

FORMAT = "comfyfab-diffusers-v1"
_FUSED = re.compile(r"\.to_(qkv|kv|added_qkv)\.")


@dataclass
class ModelBundle:
    """A loaded checkpoint: UNet, VAE, text encoders and their tokenizers."""

    arch: ArchSpec
    unet: Any
    vae: Any
    text_encoders: list[Any]
    tokenizers: list[Any]
    device: torch.device
    dtype: torch.dtype
    source: str = "random"
    extras: dict[str, Any] = field(default_factory=dict)

    def parameter_count(self) -> dict[str, int]:
        counts = {"unet": _count(self.unet), "vae": _count(self.vae)}
        for spec, enc in zip(self.arch.text_encoders, self.text_encoders):
            counts[spec["name"]] = _count(enc)
        return counts


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _seed(arch: str, component: str) -> int:
    return zlib.crc32(f"comfyfab/{arch}/{component}".encode())


def _text_config(spec: dict[str, Any]):
    from transformers import CLIPTextConfig

    cfg = dict(spec["config"])
    vocab = cfg["vocab_size"]
    pad = vocab - 1 if spec.get("pad", "eos") == "eos" else 0
    # the hash tokenizer's special ids, unless the config names its own
    return CLIPTextConfig(**{"bos_token_id": vocab - 2, "eos_token_id": vocab - 1, "pad_token_id": pad, **cfg})


def build_components(arch: ArchSpec, device: torch.device | str = "cpu") -> tuple[Any, Any, list[Any]]:
    """(unet, vae, text_encoders) with deterministic random weights.

    Each component is initialised under a seed derived from the architecture
    and component name, inside a forked RNG so global state is untouched.
    ``device="meta"`` builds shapes only (no memory, no init cost).
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    classes = {"CLIPTextModel": CLIPTextModel, "CLIPTextModelWithProjection": CLIPTextModelWithProjection}
    device = torch.device(device)
    fork_devices = [device.index or 0] if device.type == "cuda" else []

    def seeded(component: str, make):
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(_seed(arch.name, component))
            with device:
                return make()

    unet = seeded("unet", lambda: UNet2DConditionModel.from_config(arch.unet))
    vae_cfg = dict(arch.vae)
    vae = seeded("vae", lambda: AutoencoderKL.from_config(vae_cfg))
    encoders = []
    for spec in arch.text_encoders:
        cls = classes.get(spec["class"])
        if cls is None:
            raise ModelError(f"{arch.name}: unknown text encoder class {spec['class']!r}")
        encoders.append(seeded(spec["name"], lambda cls=cls, spec=spec: cls(_text_config(spec))))
    return unet, vae, encoders


def default_dtype(device: torch.device | str) -> torch.dtype:
    """float32 on CPU; bfloat16 on an accelerator."""
    return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16


def load_bundle(ckpt_name: str, models_dir: Path | str | None = None, device: str = "cpu",
                dtype: torch.dtype | None = None, channels_last: bool | None = None,
                fuse_qkv: bool | None = None,
                reader: ReadOptions | None = None, phases: dict[str, Any] | None = None) -> ModelBundle:
    """Resolve ``ckpt_name`` and load it: a file under ``models_dir`` (one
    written by :func:`save_checkpoint`, or a diffusers model folder) wins
    over a built-in random-weight architecture of the same name.

    Attention runs through PyTorch SDPA (diffusers' default processor); on
    CUDA the UNet is channels-last by default, its attention projections are
    fused into one QKV matmul (``fuse_qkv``, diffusers' ``fuse_qkv_projections``)
    and cuDNN picks its convolution algorithms by benchmark (:func:`quantize_fp8` and
    :func:`compile_bundle` go further, on the loaded bundle).  A checkpoint file is read
    straight onto a CUDA device by :func:`~pipeline.comfy.fastload.read_safetensors` (``reader``:
    threads, chunk size, ``O_DIRECT``).  ``phases``, when given, receives the seconds of each
    step of the load (reading, building the modules, casting, layout, fusing) for cold-start work."""
    from .tokenizer import HashTokenizer

    torch_device = torch.device(device)
    dtype = dtype or default_dtype(torch_device)
    path = _resolve_file(ckpt_name, models_dir)
    if path is not None and path.is_dir():
        from .diffusers_dir import load_diffusers_dir

        arch, unet, vae, encoders = load_diffusers_dir(path)
        source = str(path)
    elif path is not None:
        arch, unet, vae, encoders = _load_file(path, torch_device, reader, phases)
        source = str(path)
    else:
        arch_name = builtin_checkpoints().get(ckpt_name)
        if arch_name is None:
            raise ModelError(f"checkpoint {ckpt_name!r} is neither a file in the models dir nor a built-in "
                             f"architecture ({', '.join(sorted(builtin_checkpoints()))})")
        arch = architectures()[arch_name]
        unet, vae, encoders = build_components(arch, torch_device)
        source = f"random:{arch.name}"
    mark = _PhaseClock(phases, torch_device)
    for module in (unet, vae, *encoders):
        tensors = [*module.parameters(), *module.buffers()]
        if any(t.device != torch_device for t in tensors):  # a loaded file is on the device already
            module.to(device=torch_device)
        module.eval().requires_grad_(False)
        if dtype != torch.float32 and any(t.is_floating_point() and t.dtype != dtype for t in tensors):
            module.to(dtype=dtype)
    mark("cast_s")
    if channels_last if channels_last is not None else torch_device.type == "cuda":
        unet.to(memory_format=torch.channels_last)
    mark("layout_s")
    if (fuse_qkv if fuse_qkv is not None else torch_device.type == "cuda") and hasattr(unet, "fuse_qkv_projections"):
        unet.fuse_qkv_projections()
    mark("fuse_s")
    if torch_device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the warm-up runs pay the search; shapes repeat per job
    tokenizers = [HashTokenizer(spec["config"]["vocab_size"], spec.get("pad", "eos")) for spec in arch.text_encoders]
    bundle = ModelBundle(arch, unet, vae, encoders, tokenizers, torch_device, dtype, source)
    return bundle


COMPILE_SCOPES = ("full", "regional")

# The blocks a regional compile compiles one by one: SDXL's UNet repeats a few shapes of each many
# times (70 transformer blocks in two shapes), so most compile once and every repeat reuses the code.
REGIONS = ("BasicTransformerBlock", "ResnetBlock2D", "Downsample2D", "Upsample2D")


def compile_bundle(bundle: ModelBundle, backend: str = "inductor", scope: str = "full") -> ModelBundle:
    """The same bundle with its UNet and its VAE decoder in ``torch.compile`` (static shapes: one
    compile per batch size and resolution, as a serving worker sees few).

    ``scope`` ``full`` compiles each of the two as one graph (the most fusion; minutes of compile for
    SDXL).  ``regional`` compiles each repeated block (:data:`REGIONS`) on its own and runs the glue
    between them eagerly: blocks of the same shape share one compiled code, so the compile takes a
    fraction of the time (the ``regional`` profiles' first warm-up run says how much), at the price of
    the fusion across block boundaries.  A regional module is a structural copy of the eager one that
    shares its tensors, so the eager bundle is left as it was.

    The VAE is a shallow copy whose decoder is compiled; :func:`uncompiled` gives the eager modules
    back (FLOP counting).  ``backend`` is torch.compile's (tests use ``eager``: the same graph capture,
    no codegen)."""
    import copy
    import dataclasses

    if scope not in COMPILE_SCOPES:
        raise ModelError(f"compile scope must be one of {', '.join(COMPILE_SCOPES)}, got {scope!r}")
    wrap = _compile_regions if scope == "regional" else (
        lambda module, backend: torch.compile(module, dynamic=False, backend=backend))
    vae = bundle.vae
    compiled_vae = copy.copy(vae)
    compiled_vae._modules = dict(vae._modules)
    compiled_vae.decoder = wrap(vae.decoder, backend)
    object.__setattr__(compiled_vae, "_comfyfab_eager", vae)
    return dataclasses.replace(bundle, unet=wrap(bundle.unet, backend), vae=compiled_vae)


def add_fp8_argument(parser: Any) -> None:
    """``--fp8 [RECIPE]`` on an argparse parser: None when absent, ``scaled-mm`` when bare."""
    parser.add_argument("--fp8", nargs="?", const=FP8_RECIPES[0], default=None, choices=FP8_RECIPES,
                        metavar="RECIPE",
                        help="the UNet's transformer projections in FP8 (CUDA, compute capability 8.9+); RECIPE "
                             "scaled-mm (the default: torch._scaled_mm modules, each input row scaled at run time), "
                             "static (one input scale per layer, fixed by a short calibration txt2img) or torchao "
                             "(pip install 'comfyfab[gpu]')")


def add_compile_argument(parser: Any, what: str) -> None:
    """``--compile [full|regional]`` on an argparse parser: None when absent, ``full`` when bare."""
    parser.add_argument("--compile", nargs="?", const="full", default=None, choices=COMPILE_SCOPES, metavar="SCOPE",
                        help=f"torch.compile {what}; SCOPE full (the default: one graph per model) or regional "
                             f"(each repeated block on its own: a fraction of the compile time)")


def _compile_regions(module: torch.nn.Module, backend: str) -> torch.nn.Module:
    """A copy of ``module``'s structure over the same parameters and buffers, with each of its
    :data:`REGIONS` blocks compiled in place (``nn.Module.compile``)."""
    import copy
    import itertools

    shared = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    clone = copy.deepcopy(module, shared)
    regions = [sub for sub in clone.modules() if type(sub).__name__ in REGIONS]
    for sub in regions:
        sub.compile(dynamic=False, backend=backend)
    allow_recompiles(2 * len(regions))
    object.__setattr__(clone, "_comfyfab_eager", module)
    return clone


def allow_recompiles(n: int) -> None:
    """Let dynamo compile one code ``n`` times (process-wide; it only ever rises).  Every distinct
    block shape is one compile of the block's code: SDXL's UNet has about fifteen ResnetBlock2D
    shapes, above dynamo's default of 8 per code, past which it would run them eagerly."""
    import torch._dynamo

    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, n)


def compile_scope(unet: Any) -> str | None:
    """``full``, ``regional`` or None (eager): how a bundle's UNet was compiled."""
    if hasattr(unet, "_orig_mod"):
        return "full"
    return "regional" if hasattr(unet, "_comfyfab_eager") else None


def uncompiled(bundle: ModelBundle) -> ModelBundle:
    """The eager modules behind a :func:`compile_bundle` (the bundle itself when not compiled)."""
    import dataclasses

    return dataclasses.replace(bundle, unet=_eager(bundle.unet), vae=getattr(bundle.vae, "_comfyfab_eager", bundle.vae))


def _eager(module: Any) -> Any:
    if hasattr(module, "_orig_mod"):
        return module._orig_mod
    return getattr(module, "_comfyfab_eager", module)


ATTENTION_BACKENDS = ("auto", "cudnn", "flash", "efficient", "math")


@contextlib.contextmanager
def attention_backend(name: str = "auto") -> Iterator[None]:
    """Within the block, PyTorch SDPA tries ``name``'s kernel first and falls back to the others in
    torch's order where that kernel cannot take the call (a CPU, a head size it does not support).
    ``auto`` leaves torch's own order.  ``torch.compile`` picks the kernel when it traces, so a
    compiled module keeps the choice of the block it was first run in."""
    if name not in ATTENTION_BACKENDS:
        raise ModelError(f"attention backend must be one of {', '.join(ATTENTION_BACKENDS)}, got {name!r}")
    if name == "auto":
        yield
        return
    from torch.nn.attention import sdpa_kernel

    kernels = sdpa_kernels()
    first = kernels[name]
    with sdpa_kernel([first, *(k for k in kernels.values() if k is not first)], set_priority=True):
        yield


def sdpa_kernels() -> dict[str, Any]:
    """Each of :data:`ATTENTION_BACKENDS` but ``auto``, as torch's ``SDPBackend``."""
    from torch.nn.attention import SDPBackend

    return {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}


def _fp8_worthy(module: torch.nn.Module, fqn: str) -> bool:
    """The transformer blocks' projections: their rows are every latent pixel of the batch, big enough
    for FP8's scaling to pay; the time/class embeddings' few rows are not.  Both sides a multiple of
    16, as the FP8 matmul needs.  :func:`fp8_targets` then drops the ones that never pay."""
    return (isinstance(module, torch.nn.Linear) and "attentions." in fqn
            and module.in_features % 16 == 0 and module.out_features % 16 == 0)


def fp8_targets(unet: torch.nn.Module) -> list[str]:
    """The names of the UNet's linear layers that :func:`quantize_fp8` takes: the :func:`_fp8_worthy`
    ones, less two kinds.  Cross-attention's key and value projections (``to_k``, ``to_v`` or the fused
    ``to_kv``) read the text encoder's 77 tokens per prompt, too few rows for the scaling to pay.  The
    separate ``to_q``/``to_k``/``to_v`` that diffusers keeps beside a fused ``to_qkv`` never run:
    quantizing them costs load time and memory for nothing."""
    skip: set[str] = set()
    for name, module in unet.named_modules():
        if not hasattr(module, "to_q"):
            continue
        if getattr(module, "is_cross_attention", False):
            skip.update(f"{name}.{p}" for p in ("to_k", "to_v", "to_kv"))
        elif getattr(module, "to_qkv", None) is not None:
            skip.update(f"{name}.{p}" for p in ("to_q", "to_k", "to_v"))
    return [name for name, module in unet.named_modules() if _fp8_worthy(module, name) and name not in skip]


def fp8_refusal(device: torch.device | str) -> str | None:
    """Why FP8 cannot run on ``device`` (None when it can): it needs a CUDA GPU of compute
    capability 8.9 or newer."""
    device = torch.device(device)
    need = "fp8 needs a CUDA GPU of compute capability 8.9 or newer (Ada, Hopper)"
    if device.type != "cuda":
        return f"{need}; the model is on {device.type}"
    if not torch.cuda.is_available():
        return f"{need}; this torch ({torch.__version__}) sees no CUDA device"
    capability = torch.cuda.get_device_capability(device)
    if capability < (8, 9):
        return f"{need}; {torch.cuda.get_device_name(device)} is {capability[0]}.{capability[1]}"
    return None


FP8_RECIPES = ("scaled-mm", "static", "torchao")
E4M3_MAX = 448.0  # the largest finite float8 e4m3fn value


def fp8_recipe(value: Any) -> str | None:
    """An FP8 setting as a recipe name: None (off) for False/None/"", ``scaled-mm`` for True, else one of
    :data:`FP8_RECIPES`; anything else is a :class:`ModelError` naming them.

    ``scaled-mm``: :class:`Fp8Linear` with each input row scaled at run time (an amax per row, then the
    cast).  ``static``: :class:`Fp8Linear` with one scale per layer for its input, fixed from the largest
    input a calibration run showed it (:func:`fp8_observe`), so the cast is a plain multiply that a compile
    fuses into the kernel making the input, as production FP8 diffusion does; weights then take one scale
    per tensor.  ``torchao``: torchao's dynamic float8 (tensor subclasses)."""
    if value is None or value is False or value == "":
        return None
    if value is True:
        return FP8_RECIPES[0]
    if value not in FP8_RECIPES:
        raise ModelError(f"fp8 recipe must be one of {', '.join(FP8_RECIPES)}, got {value!r}")
    return value


def _rowwise_e4m3(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (rows x columns) in float8 e4m3 with one float32 scale per row: ``x ~= q * scale``."""
    scale = x.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12) / E4M3_MAX
    q = (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return q, scale


class Fp8Linear(torch.nn.Module):
    """A linear layer run as one FP8 matrix product (``torch._scaled_mm`` with fast accumulation, as
    torchao's inference recipe and TensorRT use on Hopper).  Dynamic (the ``scaled-mm`` recipe): the weight
    is stored in e4m3 with one scale per output row, quantized once, and the input is cast to e4m3 with one
    scale per row at every call (an amax over the row, then the cast).  Static (``input_amax`` given): one
    fixed scale for the input and one for the weight, so the cast is a plain multiply.  Plain tensors and
    plain ops only, so ``torch.compile`` traces it as one graph with the bf16 layers around it.  The bias
    is added after the product, in the output's dtype."""

    def __init__(self, linear: torch.nn.Linear, input_amax: float | None = None):
        """``input_amax``: the static recipe's largest input magnitude (None: scale each row at run time)."""
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        with torch.no_grad():
            w = linear.weight.detach()
            if input_amax is None:
                weight, scale = _rowwise_e4m3(w)
                scale = scale.t().contiguous()                                 # 1 x out
                input_scale = None
            else:  # one scale per tensor on both sides: cuBLAS's plain FP8 product
                weight, scale = _rowwise_e4m3(w.reshape(1, -1))
                weight, scale = weight.reshape(w.shape), scale.reshape(())
                input_scale = torch.tensor(max(float(input_amax), 1e-12) / E4M3_MAX, device=w.device)
        self.register_buffer("weight", weight)                                 # out x in, row-major
        self.register_buffer("weight_scale", scale)
        self.register_buffer("input_scale", input_scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if self.input_scale is None:
            q, scale = _rowwise_e4m3(rows)
        else:
            scale = self.input_scale
            q = (rows.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
        out = torch._scaled_mm(q, self.weight.t(), scale_a=scale, scale_b=self.weight_scale, out_dtype=x.dtype,
                              use_fast_accum=True)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def fp8_observe(module: torch.nn.Module, names: Any, run: Callable[[], Any]) -> dict[str, float]:
    """The largest input magnitude each linear layer of ``module`` named in ``names`` sees while
    ``run()`` runs (the static recipe's calibration); layers ``run`` never calls are left out."""
    wanted = set(names)
    amax: dict[str, float] = {}
    hooks = []
    for name, child in module.named_modules():
        if name in wanted and isinstance(child, torch.nn.Linear):
            def record(_: torch.nn.Module, args: tuple, name: str = name) -> None:
                amax[name] = max(amax.get(name, 0.0), float(args[0].detach().abs().amax()))
            hooks.append(child.register_forward_pre_hook(record))
    try:
        with torch.no_grad():
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return amax


def fp8_swap(module: torch.nn.Module, names: Any, input_amax: dict[str, float] | None = None) -> int:
    """Replace each :class:`torch.nn.Linear` of ``module`` named in ``names`` by an :class:`Fp8Linear`
    over its weights, in place; returns how many.  With ``input_amax`` (:func:`fp8_observe`), the static
    recipe: only the layers it names, each with its fixed input scale.  Runs on any device whose torch
    has ``_scaled_mm`` (the CPU too, where FP8 is not faster: that is for tests)."""
    wanted = set(names) if input_amax is None else set(names) & set(input_amax)
    swapped = 0
    for name, child in list(module.named_modules()):
        if name in wanted and isinstance(child, torch.nn.Linear):
            parent_name, _, attr = name.rpartition(".")
            amax = None if input_amax is None else input_amax[name]
            setattr(module.get_submodule(parent_name) if parent_name else module, attr, Fp8Linear(child, amax))
            swapped += 1
    return swapped


FP8_CALIBRATION_PROMPT = "a lighthouse on a cliff at dusk, detailed"


def fp8_calibration_run(bundle: ModelBundle, resolution: int | None = None, steps: int = 4,
                        prompts: Sequence[str] = ()) -> Callable[[], Any]:
    """The static recipe's calibration: one txt2img per prompt (default: one fixed prompt) at
    ``resolution`` (the architecture's default), ``steps`` dpmpp_2m/karras steps, CFG 7, without the VAE
    decode (the VAE stays in the bundle's dtype).  A real checkpoint's scales are better fixed on the
    prompts it will serve: an input past what calibration saw saturates at e4m3's largest value.  The
    stand-in takes them from a file (``--fp8-calibration-prompts``); :func:`quantize_fp8` takes any
    ``calibrate`` callable."""
    texts = tuple(prompts) or (FP8_CALIBRATION_PROMPT,)

    def run() -> None:
        from .sampling import encode_text, ksample

        side = (resolution or bundle.arch.default_resolution) // bundle.arch.vae_scale_factor
        negative = encode_text(bundle, "")
        for seed, text in enumerate(texts):
            latent = torch.zeros(1, bundle.arch.latent_channels, side, side)
            ksample(bundle, encode_text(bundle, text), negative, latent, seed, steps, 7.0, "dpmpp_2m", "karras")
    return run


def read_calibration_prompts(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The prompts in a text file, one per line (blank lines and ``#`` comments skipped); ModelError when
    the file cannot be read or holds none."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read calibration prompts from {path}: {exc}") from None
    prompts = tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not prompts:
        raise ModelError(f"{path} holds no calibration prompts (one per line)")
    return prompts


def quantize_fp8(bundle: ModelBundle, recipe: str = "scaled-mm",
                 calibrate: Callable[[], Any] | None = None) -> ModelBundle:
    """The bundle with its UNet's transformer projections (:func:`fp8_targets`) in FP8 e4m3, the matmuls
    in ``torch._scaled_mm``; convolutions, attention itself and the VAE stay in the bundle's dtype.

    ``recipe`` ``scaled-mm`` swaps in :class:`Fp8Linear` modules (plain tensors: compiles like bf16;
    weights scaled per output row, inputs per row at run time); ``static`` does the same with one fixed
    scale per input and per weight, the inputs' observed while ``calibrate()`` runs (default:
    :func:`fp8_calibration_run`); ``torchao`` uses torchao's dynamic float8 (tensor subclasses; ``pip
    install 'comfyfab[gpu]'``), whose compile on an H100 outran every time budget.  In place on the UNet
    (apply before :func:`compile_bundle`).  Needs a CUDA GPU of compute capability 8.9 or newer."""
    recipe = fp8_recipe(recipe) or FP8_RECIPES[0]
    refused = fp8_refusal(bundle.device)
    if refused:
        raise ModelError(refused)
    unet = getattr(bundle.unet, "_orig_mod", bundle.unet)
    targets = set(fp8_targets(unet))
    if recipe == "scaled-mm":
        fp8_swap(unet, targets)
        return bundle
    if recipe == "static":
        fp8_swap(unet, targets, fp8_observe(unet, targets, calibrate or fp8_calibration_run(bundle)))
        return bundle
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_
    except ImportError as exc:
        raise ModelError(f"fp8 recipe torchao needs torchao (pip install 'comfyfab[gpu]'): {exc}") from None
    quantize_(unet, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()),
              filter_fn=lambda module, fqn: fqn in targets)
    return bundle


def fp8_layers(unet: Any) -> int:
    """How many of the UNet's linear layers hold FP8 weights (0 for a bundle not quantized)."""
    unet = getattr(unet, "_orig_mod", unet)

    def fp8(weight: Any) -> bool:
        return "float8" in type(weight).__name__.lower() or weight.dtype in (torch.float8_e4m3fn, torch.float8_e5m2)

    return sum(1 for m in unet.modules()
               if isinstance(m, Fp8Linear) or (isinstance(m, torch.nn.Linear) and fp8(m.weight)))


def attention_name(unet: Any) -> str:
    """What runs the UNet's attention, for profiles: e.g. ``torch SDPA (diffusers FusedAttnProcessor2_0)``."""
    unet = getattr(unet, "_orig_mod", unet)
    processors = getattr(unet, "attn_processors", None) or {}
    names = sorted({type(p).__name__ for p in processors.values()})
    return f"torch SDPA (diffusers {', '.join(names) or 'no attention'})"


def _resolve_file(ckpt_name: str, models_dir: Path | str | None) -> Path | None:
    if models_dir is None:
        return None
    root = Path(models_dir).resolve()
    candidate = (root / ckpt_name).resolve()
    if root not in candidate.parents:
        raise ModelError(f"checkpoint {ckpt_name!r} resolves outside the models dir")
    if candidate.is_file():
        return candidate
    from .diffusers_dir import is_diffusers_dir

    return candidate if candidate.is_dir() and is_diffusers_dir(candidate) else None


def save_checkpoint(bundle: ModelBundle, path: Path | str) -> Path:
    """Write ``bundle``'s weights as one safetensors file that
    :func:`load_bundle` reads back (architecture named in the metadata)."""
    from safetensors.torch import save_file

    tensors = {}
    parts = [("unet", bundle.unet), ("vae", bundle.vae)]
    parts += [(f"text_encoders.{s['name']}", e) for s, e in zip(bundle.arch.text_encoders, bundle.text_encoders)]
    for prefix, module in parts:
        for key, value in module.state_dict().items():
            if _FUSED.search(key):  # fuse_qkv_projections' extra copies; the separate to_q/to_k/to_v stay
                continue
            tensors[f"{prefix}.{key}"] = value.detach().to("cpu").contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": FORMAT, "architecture": bundle.arch.name})
    return path


class _PhaseClock:
    """Seconds since the previous mark, into ``phases`` under each name (device work finished
    first, so asynchronous copies are charged to the step that queued them); no-op without ``phases``."""

    def __init__(self, phases: dict[str, Any] | None, device: torch.device) -> None:
        self.phases, self.device = phases, device
        self.t = time.perf_counter()

    def __call__(self, name: str) -> None:
        if self.phases is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - self.t
        self.t = now


def _load_file(path: Path, device: torch.device, reader: ReadOptions | None = None,
               phases: dict[str, Any] | None = None) -> tuple[ArchSpec, Any, Any, list[Any]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        keys = list(handle.keys())
    if metadata.get("format") == FORMAT:
        arch = architectures().get(metadata.get("architecture", ""))
        if arch is None:
            raise ModelError(f"{path.name}: unknown architecture {metadata.get('architecture')!r}")
        return (arch, *_load_diffusers_layout(arch, path, device, reader, phases))
    raise ModelError(f"{path.name}: not a {FORMAT} checkpoint (metadata format={metadata.get('format')!r}, "
                     f"{len(keys)} tensors); write one with pipeline.comfy.models.save_checkpoint")


def _load_diffusers_layout(arch: ArchSpec, path: Path, device: torch.device, reader: ReadOptions | None = None,
                           phases: dict[str, Any] | None = None) -> tuple[Any, Any, list[Any]]:
    from concurrent.futures import ThreadPoolExecutor

    # the modules are built (on meta: shapes only, all Python) while the reader threads wait on
    # the disk; build_s is what the build adds after the read, not its own length
    with ThreadPoolExecutor(1, thread_name_prefix="comfyfab-build") as pool:
        building = pool.submit(build_components, arch, "meta")
        # straight onto the device; parallel reads on CUDA
        state = read_safetensors(path, device, options=reader, phases=phases)
        mark = _PhaseClock(phases, device)
        unet, vae, encoders = building.result()
    mark("build_s")
    parts = [("unet", unet), ("vae", vae)]
    parts += [(f"text_encoders.{s['name']}", e) for s, e in zip(arch.text_encoders, encoders)]
    for prefix, module in parts:
        sub = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
        missing, unexpected = module.load_state_dict(sub, strict=False, assign=True)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ModelError(f"{path.name}: {prefix} weights do not match architecture {arch.name!r} "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for module in (unet, vae, *encoders):
        materialise_buffers(module)
    mark("assign_s")
    return unet, vae, encoders


def materialise_buffers(module: torch.nn.Module) -> None:
    """Non-persistent buffers built on meta (e.g. CLIP position ids) get real values."""
    for name, buf in list(module.named_buffers()):
        if buf.is_meta:
            owner = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "position_ids":
                owner.register_buffer(leaf, torch.arange(buf.shape[-1]).expand(buf.shape), persistent=False)
            else:
                raise ModelError(f"buffer {name} has no stored value")
