"""``comfyfab bench attention``: which SDPA kernel to run a model's attention with, on this device.

``comfyfab calibrate --attention KERNEL`` makes PyTorch try one scaled-dot-product
attention kernel first (cuDNN, FlashAttention, memory-efficient, math).  Which one
is fastest depends on the GPU, the torch build and the shapes, and a calibration
with torch.compile costs minutes per try.  This benchmark answers in seconds:

1. it records every ``scaled_dot_product_attention`` call of one UNet evaluation
   (batch ``2 x batch`` under classifier-free guidance) and one VAE decode of the
   architecture at the resolution asked for, by running them on the meta device
   (shapes only: no weights, no memory);
2. it times each distinct call shape alone on the device with each kernel forced
   (``sdpa_kernel`` with that kernel only; a kernel that cannot take a shape, such
   as FlashAttention on the VAE's 512-wide head, is reported as unsupported) and
   with ``auto``, torch's own choice;
3. it sums them per run of ``batch`` images (the UNet's calls times ``steps``,
   plus the decode's) with the achieved TFLOP/s (4 x B x H x Lq x Lk x D per call).

The kernels run on random inputs outside the model, so the figures leave out what
the model adds around them (projections, layout copies); they rank the kernels,
and ``comfyfab bench kernels`` measures attention's share inside a real run.
Also runnable without boto3: ``python -m pipeline.calibrate.attention``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.overrides import TorchFunctionMode

from pipeline.comfy.models import ATTENTION_BACKENDS, default_dtype, sdpa_kernels

from ._entry import entry_points
from .measure import CalibrationError, DTYPES, resolve_device, shipped_arch, timed, unet_inputs

__all__ = ["AttentionCall", "KernelTiming", "attention_calls", "main", "register", "time_kernels"]


@dataclass(frozen=True)
class AttentionCall:
    """One shape of ``scaled_dot_product_attention`` a model makes, and how often per pass."""

    component: str  # "unet" (one evaluation) or "vae" (one decode)
    batch: int
    heads: int
    q_len: int
    kv_len: int
    head_dim: int
    count: int

    @property
    def flops(self) -> int:
        """QK^T and the weighted sum of V, two FLOPs per multiply-add."""
        return 4 * self.batch * self.heads * self.q_len * self.kv_len * self.head_dim


class _Recorder(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.shapes: Counter[tuple[int, ...]] = Counter()

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func is torch.nn.functional.scaled_dot_product_attention:
            q, k = args[0], args[1]
            b, h, lq, d = q.shape
            self.shapes[(b, h, lq, k.shape[-2], d)] += 1
        return func(*args, **(kwargs or {}))


def attention_calls(model: str, resolution: int, batch: int, cfg: float = 7.0) -> list[AttentionCall]:
    """The attention calls of one UNet evaluation and one VAE decode of ``model`` (shapes only)."""
    from pipeline.comfy.models import build_components

    arch = shipped_arch(model)
    if resolution <= 0 or resolution % arch.vae_scale_factor:
        raise CalibrationError(f"--resolution must be a positive multiple of {arch.vae_scale_factor}, got {resolution}")
    if batch < 1:
        raise CalibrationError(f"--batch must be at least 1, got {batch}")
    unet, vae, _ = build_components(arch, "meta")
    side = resolution // arch.vae_scale_factor
    calls = []
    with torch.no_grad(), torch.device("meta"):
        args, kwargs = unet_inputs(arch, batch * (2 if cfg != 1.0 else 1), side)
        for component, run in (("unet", lambda: unet(*args, **kwargs)),
                               ("vae", lambda: vae.decode(torch.zeros(batch, arch.latent_channels, side, side)))):
            with _Recorder() as rec:
                run()
            calls += [AttentionCall(component, *shape, count) for shape, count in sorted(rec.shapes.items())]
    return calls


@dataclass(frozen=True)
class KernelTiming:
    """One kernel on one call shape: the median seconds of a call, or why it could not run."""

    kernel: str
    call: AttentionCall
    seconds: float | None
    error: str | None = None


def _time_call(fn: Callable[[], Any], device: torch.device, reps: int) -> float:
    """The median of ``reps`` timed calls after two untimed ones."""
    for _ in range(2):
        fn()
    return statistics.median(timed(fn, device) for _ in range(reps))


def time_kernels(calls: Sequence[AttentionCall], device: str, dtype: torch.dtype, kernels: Sequence[str],
                 reps: int = 10, progress: Callable[[int, int], None] | None = None) -> list[KernelTiming]:
    """Each kernel on each call shape (``auto``: torch's choice; the others forced, with no fallback)."""
    from torch.nn.attention import sdpa_kernel

    forced = sdpa_kernels()
    dev = resolve_device(device)
    out: list[KernelTiming] = []
    total, done = len(calls) * len(kernels), 0
    for call in calls:
        gen = torch.Generator(device=dev).manual_seed(0)
        q = torch.randn(call.batch, call.heads, call.q_len, call.head_dim, device=dev, dtype=dtype, generator=gen)
        k = torch.randn(call.batch, call.heads, call.kv_len, call.head_dim, device=dev, dtype=dtype, generator=gen)
        v = torch.randn_like(k)
        for kernel in kernels:
            fn = functools.partial(torch.nn.functional.scaled_dot_product_attention, q, k, v)
            try:
                if kernel == "auto":
                    seconds = _time_call(fn, dev, reps)
                else:
                    with sdpa_kernel([forced[kernel]]):
                        seconds = _time_call(fn, dev, reps)
                out.append(KernelTiming(kernel, call, seconds))
            except (RuntimeError, torch.OutOfMemoryError) as exc:  # "No available kernel", or too big for math
                out.append(KernelTiming(kernel, call, None, str(exc).splitlines()[0][:160]))
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
            done += 1
            if progress is not None:
                progress(done, total)
    return out


def summarise(timings: Sequence[KernelTiming], steps: int) -> list[dict[str, Any]]:
    """Per kernel and component: seconds per run (the UNet's x ``steps``), TFLOP/s, shapes it could not run."""
    rows = []
    kernels = list(dict.fromkeys(t.kernel for t in timings))
    for kernel in kernels:
        for component in ("unet", "vae"):
            mine = [t for t in timings if t.kernel == kernel and t.call.component == component]
            if not mine:
                continue
            ran = [t for t in mine if t.seconds is not None]
            per = steps if component == "unet" else 1
            seconds = sum(t.seconds * t.call.count for t in ran) * per
            flops = sum(t.call.flops * t.call.count for t in ran) * per
            rows.append({"kernel": kernel, "component": component, "calls": sum(t.call.count for t in mine) * per,
                         "shapes": len(mine), "unsupported": len(mine) - len(ran),
                         "s_per_run": seconds if len(ran) == len(mine) else None,
                         "tflops": flops / seconds / 1e12 if seconds else None})
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--model", default="tiny", help="a shipped architecture (default tiny)")
    p.add_argument("--resolution", type=int, default=None, help="image side (default: the model's)")
    p.add_argument("--steps", type=int, default=20, help="UNet evaluations per run (default 20)")
    p.add_argument("--batch", type=int, default=1, help="images per run (the UNet sees twice as many with CFG)")
    p.add_argument("--cfg", type=float, default=7.0, help="guidance scale; 1 means one UNet batch (default 7)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--kernels", default=",".join(ATTENTION_BACKENDS),
                   help=f"comma-separated, of {', '.join(ATTENTION_BACKENDS)} (default all)")
    p.add_argument("--reps", type=int, default=10, help="timed calls per shape and kernel (default 10)")
    p.add_argument("--csv", type=Path, default=None, help="also write one row per kernel and call shape here")


def run_from_args(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.console import Console

    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    unknown = [k for k in kernels if k not in ATTENTION_BACKENDS]
    if unknown or not kernels:
        raise CalibrationError(f"--kernels takes {', '.join(ATTENTION_BACKENDS)}, got {args.kernels!r}")
    if args.reps < 1:
        raise CalibrationError(f"--reps must be at least 1, got {args.reps}")
    resolution = args.resolution or shipped_arch(args.model).default_resolution
    calls = attention_calls(args.model, resolution, args.batch, args.cfg)
    dev = resolve_device(args.device)
    dtype = DTYPES[args.dtype] if args.dtype else default_dtype(dev)
    console = Console(width=160)
    with console.status(f"{args.model} {resolution}px batch {args.batch}: {len(calls)} call shapes x "
                        f"{len(kernels)} kernels"):
        timings = time_kernels(calls, args.device, dtype, kernels, reps=args.reps)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([{"kernel": t.kernel, "component": t.call.component, "batch": t.call.batch,
                       "heads": t.call.heads, "q_len": t.call.q_len, "kv_len": t.call.kv_len,
                       "head_dim": t.call.head_dim, "count": t.call.count, "seconds": t.seconds,
                       "error": t.error, "device": str(dev), "model": args.model, "resolution": resolution,
                       "steps": args.steps} for t in timings]).to_csv(args.csv, index=False)
    rows = summarise(timings, args.steps)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    console.print(f"attention of {args.model} {resolution}px, batch {args.batch}, {args.steps} steps on {name} "
                  f"({str(dtype).removeprefix('torch.')}, torch {torch.__version__}):")
    console.print(pd.DataFrame(rows).to_string(index=False, na_rep="-",
                                               float_format=lambda v: f"{v:.4f}"), markup=False, highlight=False)
    for component in ("unet", "vae"):
        ranked = sorted((r for r in rows if r["component"] == component and r["s_per_run"] is not None),
                        key=lambda r: r["s_per_run"])
        if ranked:
            console.print(f"fastest for the {component}: {ranked[0]['kernel']} ({ranked[0]['s_per_run']:.4f} s per run)")
    for kernel in dict.fromkeys(t.kernel for t in timings):
        failed = [t for t in timings if t.kernel == kernel and t.error]
        if failed:
            shapes = ", ".join(f"{t.call.component} {t.call.batch}x{t.call.heads}x{t.call.q_len}x{t.call.kv_len}"
                               f"x{t.call.head_dim}" for t in failed[:3]) + (" ..." if len(failed) > 3 else "")
            console.print(f"{kernel} could not run {len(failed)} shape(s) ({shapes}): {failed[0].error}",
                          markup=False, highlight=False)
    return 0


register, main = entry_points(
    "attention", "time each SDPA kernel on a model's attention shapes",
    "pipeline.calibrate.attention", __doc__, add_arguments, run_from_args)


if __name__ == "__main__":
    raise SystemExit(main())
