"""``comfyfab bench kernels``: where one txt2img run's device time goes, by kind of work.

MFU says how far a run is from the peak, not why.  This profiles one run of
``batch`` images (after warm-ups) with ``torch.profiler`` and sorts the device
time into convolutions, matrix products, attention, normalisation and the rest
(element-wise and copies), next to each kind's FLOPs from ``FlopCounterMode``.
Each kind's achieved TFLOP/s then says which one holds the throughput back:
the number a change such as FP8 matrix products or another convolution
algorithm would have to move.

On CUDA the time is the GPU kernels' own; on the CPU it is the self time of
the ATen operators (the same split, for trying the command without a GPU).
Also runnable without boto3: ``python -m pipeline.calibrate.kernels``.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.comfy.models import add_compile_argument, add_fp8_argument

from ._entry import bench_spec, entry_points
from .measure import ATTENTION_BACKENDS, CalibrationSpec, DTYPES, quantized, resolve_device, txt2img_once

__all__ = ["KINDS", "KernelSplit", "classify", "flops_by_kind", "main", "profile_run", "register"]

KINDS = ("convolution", "matmul", "attention", "norm", "other")

# order matters: cuDNN's implicit-GEMM convolution kernels have "gemm" in their names too
_PATTERNS = (
    ("attention", re.compile(r"flash|fmha|sdpa|attention|attn", re.I)),
    ("convolution", re.compile(r"conv|fprop|dgrad|wgrad|implicit_gemm|winograd|cudnn(?!.*gemm)", re.I)),
    ("matmul", re.compile(r"gemm|nvjet|cutlass|\bmm\b|aten::(mm|addmm|bmm|baddbmm|linear|matmul)$|s16816|wgmma",
                          re.I)),
    ("norm", re.compile(r"norm|moments|welford", re.I)),
)

_FLOP_OPS = {
    "convolution": ("convolution", "_convolution", "cudnn_convolution", "conv2d"),
    "matmul": ("mm", "addmm", "bmm", "baddbmm", "matmul", "linear"),
    "attention": ("_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
                  "_scaled_dot_product_cudnn_attention", "scaled_dot_product_attention"),
}


def classify(name: str) -> str:
    """The kind of work a kernel or ATen operator name stands for.  Inductor's generated kernels
    (``triton_poi_``/``triton_per_``/``triton_red_``) are named after every operator they fuse, and
    a convolution's or a matmul's epilogue fused into a norm does none of the product itself: those
    count as norm or other; only its templates (``triton_tem_``, e.g. a tuned mm) do products."""
    if name.startswith("triton_tem_"):
        return "convolution" if "convolution" in name else "matmul"
    if name.startswith("triton_"):
        return "norm" if _PATTERNS[3][1].search(name) else "other"
    for kind, pattern in _PATTERNS:
        if pattern.search(name):
            return kind
    return "other"


def flops_by_kind(counts: dict[str, dict]) -> dict[str, float]:
    """``FlopCounterMode.get_flop_counts()`` summed by kind (its ``Global`` entry)."""
    out: dict[str, float] = defaultdict(float)
    for op, flops in counts.get("Global", {}).items():
        base = str(op).split(".")[-2] if str(op).count(".") >= 2 else str(op).split(".")[-1]
        kind = next((k for k, names in _FLOP_OPS.items() if base in names), "other")
        out[kind] += float(flops)
    return dict(out)


@dataclass(frozen=True)
class KernelSplit:
    device: str
    batch: int
    seconds: dict[str, float]   # device time per kind
    flops: dict[str, float]     # FLOPs per kind (the whole run: batch images)
    top: list[tuple[str, str, int, float]]  # (kind, name, calls, seconds), dearest first
    timing: str                 # what the seconds are

    @property
    def total_s(self) -> float:
        return sum(self.seconds.values())

    def rows(self) -> list[dict]:
        total_f = sum(self.flops.values()) or 1.0
        return [{"kind": k, "seconds": self.seconds.get(k, 0.0), "share": self.seconds.get(k, 0.0) / (self.total_s or 1),
                 "tflop": self.flops.get(k, 0.0) / 1e12, "flop_share": self.flops.get(k, 0.0) / total_f,
                 "tflops_per_s": (self.flops.get(k, 0.0) / self.seconds[k] / 1e12) if self.seconds.get(k) else None}
                for k in KINDS]


def profile_run(spec: CalibrationSpec, batch: int, top: int = 15) -> KernelSplit:
    """Warm up, count FLOPs, then profile one run of ``batch`` images of a random-weight ``spec.model``
    (quantized and compiled as ``spec`` says)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline.comfy.models import attention_backend, compile_bundle, load_bundle

    device = resolve_device(spec.device)
    bundle = load_bundle(f"{spec.model}.safetensors", device=str(device), dtype=spec.torch_dtype,
                         channels_last=spec.channels_last)
    run = (lambda b, seed: txt2img_once(b, spec.resolution, spec.steps, batch, spec.sampler, spec.scheduler,
                                        spec.cfg, seed))
    with FlopCounterMode(display=False) as counter:
        run(bundle, 0)
    flops = flops_by_kind(counter.get_flop_counts())  # the architecture's work, counted before any FP8
    if spec.fp8:
        bundle = quantized(bundle, spec.fp8, spec.resolution)
    if spec.compile:
        bundle = compile_bundle(bundle, scope=spec.compile)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with attention_backend(spec.attention):
        for i in range(max(1, spec.warmup)):
            run(bundle, i)
        if cuda:
            torch.cuda.synchronize(device)
        with profile(activities=activities) as prof:
            run(bundle, 99)
            if cuda:
                torch.cuda.synchronize(device)
    per_name: dict[str, list] = defaultdict(lambda: [0, 0.0])
    if cuda:
        for event in prof.events():
            if event.device_type == torch.autograd.DeviceType.CUDA:
                per_name[event.name][0] += 1
                per_name[event.name][1] += event.time_range.elapsed_us() / 1e6
        timing = "GPU kernel time (torch.profiler)"
    else:
        for avg in prof.key_averages():
            if avg.key.startswith("aten::") and avg.self_cpu_time_total > 0:
                per_name[avg.key] = [avg.count, avg.self_cpu_time_total / 1e6]
        timing = "ATen operators' self CPU time (torch.profiler)"
    seconds: dict[str, float] = defaultdict(float)
    ranked = []
    for name, (calls, secs) in per_name.items():
        kind = classify(name)
        seconds[kind] += secs
        ranked.append((kind, name, calls, secs))
    ranked.sort(key=lambda r: -r[3])
    return KernelSplit(str(device), batch, dict(seconds), flops, ranked[:top], timing)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--model", default="tiny", help="a shipped architecture, random weights (default tiny)")
    p.add_argument("--resolution", type=int, default=None, help="image side (default: the model's)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    add_compile_argument(p, "the UNet and the VAE decoder first")
    add_fp8_argument(p)
    p.add_argument("--attention", choices=ATTENTION_BACKENDS, default="auto",
                   help="the SDPA kernel to try first (default auto: torch's order)")
    p.add_argument("--top", type=int, default=15, help="dearest kernels to list (default 15)")
    p.add_argument("--csv", type=Path, default=None, help="also write the split by kind here")


def run_from_args(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.console import Console

    spec = bench_spec(args, steps=args.steps, warmup=args.warmup, compile=args.compile, fp8=args.fp8,
                      attention=args.attention)
    console = Console(width=160)
    with console.status(f"{args.model} batch {args.batch}: warming up and profiling one run"):
        split = profile_run(spec, args.batch, top=args.top)
    frame = pd.DataFrame(split.rows())
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        frame.assign(device=split.device, batch=split.batch, model=args.model, resolution=spec.resolution,
                     steps=spec.steps, compiled=args.compile is not None,
                     compile_scope=args.compile or "", fp8=args.fp8,
                     attention_kernel=args.attention).to_csv(args.csv, index=False)
    console.print(f"{args.model} {spec.resolution}px {spec.steps} steps, batch {args.batch} on {split.device}"
                  f"{' (' + spec.variant.strip('-').replace('-', ', ') + ')' if spec.variant else ''}: "
                  f"{split.total_s:.3f} s of {split.timing}")
    console.print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
    console.print("dearest:")
    for kind, name, calls, secs in split.top:
        console.print(f"  {secs:8.4f} s {calls:6d}x  {kind:<11} {name[:110]}", markup=False, highlight=False)
    return 0


register, main = entry_points(
    "kernels", "one txt2img run's device time by kind of work, with achieved TFLOP/s",
    "pipeline.calibrate.kernels", __doc__, add_arguments, run_from_args)


if __name__ == "__main__":
    raise SystemExit(main())
