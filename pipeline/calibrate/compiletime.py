"""``comfyfab bench compile``: what torch.compile costs per block of a model, and whether blocks of
one shape share their compiled code.

A compiled worker's first job of each shape waits for the compile (minutes for SDXL as one graph).
``--compile regional`` (:func:`pipeline.comfy.models.compile_bundle`) compiles the repeated blocks
one by one, so that the 70 transformer blocks of SDXL cost two compiles, not seventy.  Whether that
holds, and what one block's compile costs, depends on the torch build, the device and the weights'
type (FP8 weights are torchao tensor subclasses).  This benchmark answers it in a minute or two:

1. it builds the random-weight architecture on the device (FP8 projections with ``--fp8``) and
   records the inputs of every :data:`~pipeline.comfy.models.REGIONS` block in one UNet evaluation
   (``2 x batch`` latents under CFG);
2. per distinct (block class, input shapes): it compiles the first block of that shape in place
   (``nn.Module.compile(dynamic=False)``, as the regional compile does) and times its first call
   (the compile) and a second call (the run), then the first call of a second block of the same
   shape, with the number of graphs dynamo compiled for it: 0 means the code was shared;
3. it prints one row per shape and the totals: what the regional compile of the whole UNet should
   cost, and what it costs if every repeat compiles again.

Also runnable without boto3: ``python -m pipeline.calibrate.compiletime``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.comfy.models import REGIONS, add_fp8_argument, allow_recompiles

from ._entry import bench_spec, entry_points
from .measure import CalibrationSpec, DTYPES, quantized, resolve_device, timed, unet_inputs

__all__ = ["BlockCompile", "compile_blocks", "main", "register"]


@dataclass(frozen=True)
class BlockCompile:
    """One shape of a repeated block: how many blocks have it and what compiling them cost."""

    block: str            # the class, e.g. BasicTransformerBlock
    shape: str            # the first input's shape, e.g. 8x4096x640
    instances: int        # blocks of this class and input shapes in one UNet evaluation
    first_s: float        # the first call of the first block: the compile (and one run)
    run_s: float          # its second call: the run alone
    graphs: int           # graphs dynamo compiled for the first block
    repeat_s: float | None = None    # the first call of a second block of this shape
    repeat_graphs: int | None = None  # graphs compiled for it: 0 when the code was shared

    @property
    def compile_s(self) -> float:
        return max(0.0, self.first_s - self.run_s)

    @property
    def shared(self) -> bool | None:
        return None if self.repeat_graphs is None else self.repeat_graphs == 0


def _shape(args: tuple, kwargs: dict[str, Any]) -> tuple:
    tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    return tuple(tuple(t.shape) for t in tensors)


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


@torch.no_grad()
def compile_blocks(spec: CalibrationSpec, batch: int, backend: str = "inductor") -> list[BlockCompile]:
    """Record one UNet evaluation's region blocks and time their compile, shape by shape."""
    import torch._dynamo

    from pipeline.comfy.models import load_bundle

    device = resolve_device(spec.device)
    bundle = load_bundle(f"{spec.model}.safetensors", device=str(device), dtype=spec.torch_dtype,
                         channels_last=spec.channels_last)
    if spec.fp8:
        bundle = quantized(bundle, spec.fp8, spec.resolution)
    unet = bundle.unet
    seen: dict[tuple, list[tuple[torch.nn.Module, tuple, dict]]] = {}
    hooks = []
    for module in unet.modules():
        if type(module).__name__ in REGIONS:
            def record(m: torch.nn.Module, args: tuple, kwargs: dict) -> None:
                seen.setdefault((type(m).__name__, _shape(args, kwargs)), []).append((m, args, kwargs))
            hooks.append(module.register_forward_pre_hook(record, with_kwargs=True))
    pairs = 2 * batch if spec.cfg != 1.0 else batch
    side = spec.resolution // bundle.arch.vae_scale_factor
    with torch.device(device):
        args, kwargs = unet_inputs(bundle.arch, pairs, side, spec.torch_dtype)
    try:
        unet(*args, **kwargs)
    finally:
        for hook in hooks:
            hook.remove()
    torch._dynamo.reset()
    allow_recompiles(4 * len(seen))
    results = []
    for (block, shapes), calls in seen.items():
        module, a, k = calls[0]
        module.compile(dynamic=False, backend=backend)
        before = _graphs()
        first = timed(lambda: module(*a, **k), device)
        graphs = _graphs() - before
        run = timed(lambda: module(*a, **k), device)
        repeat = repeat_graphs = None
        if len(calls) > 1:
            other, a2, k2 = calls[1]
            other.compile(dynamic=False, backend=backend)
            before = _graphs()
            repeat = timed(lambda: other(*a2, **k2), device)
            repeat_graphs = _graphs() - before
        results.append(BlockCompile(block, "x".join(map(str, shapes[0])) if shapes else "-", len(calls), first, run,
                                    graphs, repeat, repeat_graphs))
    return results


def totals(rows: list[BlockCompile]) -> dict[str, float]:
    """The regional compile of one UNet evaluation, estimated: with the code shared across repeats,
    and if every repeat compiled again."""
    shared = sum(r.compile_s for r in rows)
    unshared = sum(r.compile_s + (r.instances - 1) * max(0.0, (r.repeat_s or 0.0) - r.run_s) for r in rows)
    return {"shapes": len(rows), "blocks": sum(r.instances for r in rows), "compile_s": shared,
            "compile_s_as_measured": unshared}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--model", default="tiny", help="a shipped architecture, random weights (default tiny)")
    p.add_argument("--resolution", type=int, default=None, help="image side (default: the model's)")
    p.add_argument("--batch", type=int, default=1, help="images (the UNet sees twice as many with CFG)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    add_fp8_argument(p)
    p.add_argument("--backend", default="inductor",
                   help="torch.compile backend (default inductor; eager or aot_eager capture without code generation)")
    p.add_argument("--csv", type=Path, default=None, help="also write one row per block shape here")


def run_from_args(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.console import Console

    spec = bench_spec(args, fp8=args.fp8)
    console = Console(width=160)
    with console.status(f"{args.model} batch {args.batch}: compiling each block shape"):
        rows = compile_blocks(spec, args.batch, backend=args.backend)
    frame = pd.DataFrame([{"block": r.block, "shape": r.shape, "instances": r.instances, "compile_s": r.compile_s,
                           "run_s": r.run_s, "graphs": r.graphs, "repeat_s": r.repeat_s,
                           "repeat_graphs": r.repeat_graphs} for r in rows])
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        frame.assign(device=str(resolve_device(args.device)), model=args.model, resolution=spec.resolution,
                     batch=args.batch, fp8=args.fp8, backend=args.backend).to_csv(args.csv, index=False)
    t = totals(rows)
    fp8 = f" (fp8, {args.fp8})" if args.fp8 else ""
    console.print(f"{args.model} {spec.resolution}px batch {args.batch} on {args.device}{fp8}, "
                  f"torch {torch.__version__}, backend {args.backend}:")
    console.print(frame.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}"),
                  markup=False, highlight=False)
    unshared = [r for r in rows if r.shared is False]
    console.print(f"{t['blocks']} blocks in {t['shapes']} shapes; regional compile of the UNet about "
                  f"{t['compile_s']:.1f} s with shared code, {t['compile_s_as_measured']:.1f} s as the repeats "
                  f"behaved" + (f"; {len(unshared)} shape(s) compiled again for a second block" if unshared else ""))
    return 0


register, main = entry_points(
    "compile", "torch.compile's cost per block of a model, and whether repeated blocks share code",
    "pipeline.calibrate.compiletime", __doc__, add_arguments, run_from_args)


if __name__ == "__main__":
    raise SystemExit(main())
