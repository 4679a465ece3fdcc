"""``comfyfab calibrate``: measure service times on this machine's CPU or GPU.

Also runnable without the rest of comfyfab's dependencies (no boto3), which
is how the GPU check runs it: ``python -m pipeline.calibrate ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Iterator, Sequence

from pipeline.comfy.models import add_compile_argument, add_fp8_argument

from .measure import ATTENTION_BACKENDS, CalibrationError, CalibrationSpec, DTYPES, shipped_arch
from .run import CalibrationResult, Peak, calibrate, resolve_peak

__all__ = ["add_arguments", "main", "register", "run_from_args"]


def _batches(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch takes comma-separated integers, e.g. 1,2,4; got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("--batch needs at least one size")
    return values


def _reader(text: str):
    from pipeline.comfy.fastload import ReadOptions

    try:
        return ReadOptions.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--model", default="tiny", help="a shipped architecture: tiny, tiny-xl, sd15, sdxl (default tiny)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="a real local checkpoint (save_checkpoint .safetensors or a diffusers folder) to load and "
                        "time instead of the random-weight architecture")
    p.add_argument("--resolution", type=int, default=None, help="image side in pixels (default: the model's)")
    p.add_argument("--steps", type=int, default=20, help="sampling steps (default 20)")
    p.add_argument("--batch", type=_batches, default=(1,), help="batch sizes, comma-separated (default 1)")
    p.add_argument("--sampler", default="dpmpp_2m", help="ComfyUI sampler name (default dpmpp_2m)")
    p.add_argument("--scheduler", default="karras", help="ComfyUI scheduler name (default karras)")
    p.add_argument("--cfg", type=float, default=7.0, help="classifier-free guidance scale (default 7)")
    p.add_argument("--runs", type=int, default=20, help="timed runs per batch size (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    p.add_argument("--loads", type=int, default=1, help="timed checkpoint loads (default 1)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    add_compile_argument(p, "the UNet and the VAE decoder (the warm-up runs pay the compile)")
    p.add_argument("--no-channels-last", action="store_true", help="keep the UNet contiguous on CUDA")
    add_fp8_argument(p)
    p.add_argument("--attention", choices=ATTENTION_BACKENDS, default="auto",
                   help="the SDPA kernel to try first (default auto: torch's order)")
    p.add_argument("--reader", type=_reader, default=None, metavar="THREADSxMB[d]",
                   help="how a CUDA load reads the checkpoint: threads x chunk MB, d for O_DIRECT "
                        "(default: the loader's, 16x8d; 'library' for safetensors' own loader)")
    p.add_argument("--drop-caches", action="store_true",
                   help="drop the OS page cache before each load (needs root), so the load reads the disk")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="keep the written random-weight checkpoint here and reuse it (default: a temp dir)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak TFLOP/s for MFU (default: the config GPU profile's bf16 peak; none on CPU)")
    p.add_argument("--gpu-name", default=None, help="the config GPU profile the samples belong to (default: matched)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=Path("profiles"), help="folder for the profiles (default profiles/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar: one plain line per step on stderr")


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="time the txt2img path on this CPU/GPU and write service-time profiles")
    add_arguments(p)
    p.set_defaults(func=_handler)


def _spec(args: argparse.Namespace) -> CalibrationSpec:
    from pipeline.comfy.archs import architectures

    arch = architectures().get(args.model)
    if arch is None and args.checkpoint is None:
        shipped_arch(args.model, "; give --checkpoint PATH for a real one")
    resolution = args.resolution or (arch.default_resolution if arch else 1024)
    spec = CalibrationSpec(model=args.model, device=args.device, resolution=resolution, steps=args.steps,
                           batches=tuple(args.batch), sampler=args.sampler, scheduler=args.scheduler, cfg=args.cfg,
                           runs=args.runs, warmup=args.warmup, dtype=args.dtype, compile=args.compile,
                           channels_last=False if args.no_channels_last else None, fp8=args.fp8,
                           attention=args.attention)
    from pipeline.comfy.sampling import SamplerError, make_scheduler

    try:
        make_scheduler(spec.sampler, spec.scheduler, (arch or architectures()["sdxl"]).scheduler)
    except SamplerError as exc:
        raise CalibrationError(str(exc)) from None
    return spec


def _progress_bar(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if quiet:  # a log's view (the device machine's): one line per step and per run, with the time
        import time

        t0 = time.monotonic()

        def log(what: str, done: int, total: int) -> None:
            step = f" {done}/{total}" if done else ""
            print(f"calibrate: {what}{step} at {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)

        yield log
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield update


def run_from_args(args: argparse.Namespace, gpus: dict[str, float]) -> list[CalibrationResult]:
    """Parse, measure, write and print; ``gpus`` maps the config's GPU names to their bf16 TFLOP/s."""
    import torch

    from .measure import device_name, resolve_device

    spec = _spec(args)
    if args.threads is not None:
        if args.threads < 1:
            raise CalibrationError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = resolve_device(spec.device)
    peak = resolve_peak(spec.device, device_name(device), gpus, args.peak_tflops, args.gpu_name)
    bars = _progress_bar(args.quiet)
    progress = next(bars)
    try:
        results = calibrate(spec, args.out, peak, cache_dir=args.cache_dir, checkpoint=args.checkpoint,
                            loads=args.loads, drop_caches=args.drop_caches, reader=args.reader,
                            progress=progress)
    finally:
        bars.close()
    print_summary(results, peak)
    return results


def print_summary(results: list[CalibrationResult], peak: Peak) -> None:
    from rich.console import Console
    from rich.table import Table

    first = results[0].summary
    table = Table(title=f"{first.model} {first.resolution}px {first.steps} steps {first.sampler}/{first.scheduler} "
                        f"on {first.device} ({first.dtype}, torch {first.torch_version}"
                        f"{', FP8 projections' if first.fp8_layers else ''}"
                        f"{'' if first.attention_kernel == 'auto' else ', ' + first.attention_kernel + ' attention'}"
                        f"{', compiled' if first.compiled else ''}"
                        f"{' regionally' if first.compile_scope == 'regional' else ''})")
    for col in ("batch", "runs", "p50 s/img", "p90 s/img", "batch p50 s", "images/s", "load s", "TFLOP/img",
                "MFU", "profile"):
        table.add_column(col, justify="left" if col == "profile" else "right")
    for r in results:
        s = r.summary
        table.add_row(str(s.batch), str(s.runs), f"{s.p50_s:.4f}", f"{s.p90_s:.4f}", f"{s.batch_p50_s:.4f}",
                      f"{s.images_per_s:.3f}", f"{s.load_s:.3f}" if s.load_s is not None else "-",
                      f"{s.flops_per_image / 1e12:.4g}", f"{s.mfu:.1%}" if s.mfu is not None else "n/a", str(r.csv))
    console = Console(width=160)
    console.print(table)
    f = results[0].flops
    console.print(f"FLOPs per image: text {f.text / 1e12:.4g} T, UNet {f.per_step / 1e12:.4g} T/step x {f.steps} "
                  f"(CFG: 2 evaluations per step), VAE decode {f.decode / 1e12:.4g} T; total {f.total / 1e12:.4g} T "
                  f"({first.flops_source}; {first.flops_per_image_run / 1e12:.4g} T counted on the run)")
    console.print(f"MFU peak: {peak.source}; checkpoint {first.checkpoint_bytes / 1e9:.3g} GB, "
                  f"page cache {first.page_cache}")
    if first.load_phases_s:
        steps = ", ".join(f"{k.removesuffix('_s')} {v:.3f}" for k, v in first.load_phases_s.items())
        console.print(f"load steps, median s: {steps} (reader: {first.load_reader})")
    compiles = [(r.summary.batch, r.summary.compile_s) for r in results if r.summary.compile_s is not None]
    if compiles:
        console.print("compile (first warm-up run less a timed run), s: "
                      + ", ".join(f"batch {b} {c:.1f}" for b, c in compiles)
                      + "; each profile's -coldstart.csv adds it to the loads: a compiled worker's cold start")


def _handler(args: argparse.Namespace, ctx) -> int:
    from comfyfab.cli import CliError

    gpus = {g.name: g.bf16_tflops for g in ctx.config().gpus}
    try:
        run_from_args(args, gpus)
    except CalibrationError as exc:
        raise CliError(str(exc)) from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point (``python -m pipeline.calibrate``): needs torch, diffusers, transformers,
    pydantic and PyYAML, not boto3.  ``--config`` names a fabric YAML for the GPU peaks."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help="fabric YAML (default: the shipped one)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from comfyfab.config import ConfigError, load_config

    try:
        gpus = {g.name: g.bf16_tflops for g in load_config(args.config).gpus}
        run_from_args(args, gpus)
    except (CalibrationError, ConfigError) as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    return 0
