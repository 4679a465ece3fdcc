"""A whole calibration: load timing, FLOP count, timed runs per batch, profiles."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from pipeline.comfy.archs import architectures
from pipeline.comfy.fastload import ReadOptions
from pipeline.comfy.models import attention_name, fp8_layers

from .measure import (CalibrationError, CalibrationSpec, FlopCount, count_flops, count_flops_meta, device_name,
                      prepare_checkpoint, resolve_device, time_load, time_runs)
from .profile import ProfileSummary, fit_lognormal, profile_stem, write_profile

__all__ = ["DATASHEET_BF16_TFLOPS", "CalibrationResult", "Peak", "calibrate", "resolve_peak"]


@dataclass(frozen=True)
class Peak:
    """The device's peak compute that MFU is measured against, and where the figure came from."""

    gpu: str  # the config's GPU profile name the samples belong to, or "cpu"
    tflops: float | None
    source: str


# Dense bf16 tensor-core peaks (TFLOP/s, half the data sheets' "with sparsity" figures) of devices the
# shipped config has no GPU profile for but the device machines lend: with them, a calibration there still
# reports MFU and names its profiles after the device (h200-...).  A config GPU profile wins over these.
DATASHEET_BF16_TFLOPS = {"H200 NVL": 835.0, "H200": 989.0}


def resolve_peak(device: str, dev_name: str, gpus: Mapping[str, float], override_tflops: float | None = None,
                 gpu_name: str | None = None) -> Peak:
    """Match the device to a config GPU profile (its name inside the device name, e.g. ``H100`` in
    ``NVIDIA H100 80GB HBM3``) and take that profile's bf16 peak; failing that, to
    :data:`DATASHEET_BF16_TFLOPS`.  The CPU has no peak in the config: MFU is then not reported unless
    ``override_tflops`` states one."""
    is_cuda = torch.device(device).type == "cuda"

    def named(names: Mapping[str, float]) -> str | None:
        return next((g for g in sorted(names, key=len, reverse=True) if g.lower() in dev_name.lower()), None)

    match = gpu_name or named(gpus)
    sheet = named(DATASHEET_BF16_TFLOPS) if is_cuda and match is None else None
    label = match or sheet or ("cpu" if not is_cuda else dev_name)
    if override_tflops is not None:
        if override_tflops <= 0:
            raise CalibrationError(f"--peak-tflops must be positive, got {override_tflops}")
        return Peak(label, override_tflops, f"stated on the command line ({override_tflops:g} TFLOP/s)")
    if is_cuda and match in gpus:
        return Peak(label, gpus[match], f"config gpus.{match}.bf16_tflops (dense bf16 peak)")
    if sheet is not None:
        return Peak(label, DATASHEET_BF16_TFLOPS[sheet], f"NVIDIA's data sheet for the {sheet} (dense bf16 peak; "
                                                          "no GPU profile in the config)")
    if is_cuda:
        return Peak(label, None, f"no GPU profile in the config matches {dev_name!r}: MFU not reported")
    return Peak(label, None, "none: the config states no CPU peak (give --peak-tflops to report MFU)")


@dataclass
class CalibrationResult:
    """One batch size's profile: where it was written and what it says."""

    csv: Path
    summary: ProfileSummary
    flops: FlopCount


def calibrate(spec: CalibrationSpec, out_dir: Path, peak: Peak, *, cache_dir: Path | None = None,
              checkpoint: Path | None = None, loads: int = 1, drop_caches: bool = False,
              reader: ReadOptions | None = None, progress: Callable[[str, int, int], None] | None = None) -> list[CalibrationResult]:
    """Measure ``spec`` on its device and write one profile per batch size under ``out_dir``."""
    device = resolve_device(spec.device)
    if loads < 1:
        raise CalibrationError(f"--loads must be at least 1, got {loads}")
    dev_name = device_name(device)
    with tempfile.TemporaryDirectory(prefix="comfyfab-calibrate-") as tmp:
        cache = Path(cache_dir) if cache_dir is not None else Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        if progress:
            progress("writing checkpoint", 0, 1)
        path = prepare_checkpoint(spec, cache, checkpoint)
        if progress:
            progress("loading checkpoint", 0, loads)
        load = time_load(spec, path, loads=loads, drop_caches=drop_caches, reader=reader)
    bundle = load.bundle
    assert bundle is not None
    if progress:
        progress("counting FLOPs", 0, 1)
    # The meta count of a shipped architecture includes attention, which a fused CPU attention kernel
    # hides from the counter; on CUDA the two agree.  MFU uses the complete count.  FP8 runs are
    # counted on the meta device only: the work is the architecture's whatever the precision.
    if architectures().get(bundle.arch.name) == bundle.arch:
        flops = count_flops_meta(bundle.arch.name, spec.resolution, spec.steps, spec.cfg)
        flops_source = "architecture counted on the meta device (FlopCounterMode, attention included)"
        run_flops = flops if spec.fp8 else count_flops(bundle, spec)
    else:
        run_flops = count_flops(bundle, spec)
        flops, flops_source = run_flops, "counted on one real run (FlopCounterMode)"
    results = []
    for batch in spec.batches:
        cb = (lambda done, total, b=batch: progress(f"batch {b}", done, total)) if progress else None
        warmups: list[float] = []
        runs = time_runs(bundle, spec, batch, progress=cb, warmups=warmups)
        per_image = np.asarray(runs) / batch
        images_per_s = batch / float(np.median(runs))
        mfu = flops.total * images_per_s / (peak.tflops * 1e12) if peak.tflops else None
        summary = ProfileSummary(
            gpu=peak.gpu, device=dev_name, model=bundle.arch.name, resolution=spec.resolution, steps=spec.steps,
            batch=batch, runs=len(runs), p50_s=float(np.percentile(per_image, 50)),
            p90_s=float(np.percentile(per_image, 90)), mean_s=float(per_image.mean()),
            batch_p50_s=float(np.median(runs)), images_per_s=images_per_s, lognormal=fit_lognormal(per_image),
            load_s=float(np.median(load.seconds)), load_samples_s=tuple(load.seconds),
            checkpoint_bytes=load.bytes, page_cache=load.page_cache, flops_per_image=flops.total,
            flops_per_image_run=run_flops.total, flops_source=flops_source,
            unet_flops_per_step=flops.per_step, mfu=mfu, peak_tflops=peak.tflops, peak_source=peak.source,
            torch_version=torch.__version__, dtype=spec.dtype_name, sampler=spec.sampler,
            scheduler=spec.scheduler, cfg=spec.cfg, compiled=spec.compile is not None,
            channels_last=bool(spec.channels_last if spec.channels_last is not None else device.type == "cuda"),
            attention=attention_name(bundle.unet), load_reader=load.reader, load_phases_s=load.median_phases(),
            fp8_layers=fp8_layers(bundle.unet), fp8_recipe=spec.fp8 or None, attention_kernel=spec.attention,
            compile_scope=spec.compile, warmup_s=tuple(warmups))
        tag = peak.gpu if peak.gpu != dev_name else device.type
        stem = profile_stem(tag, bundle.arch.name, spec.resolution, spec.steps, batch, spec.compile is not None,
                            spec.variant)
        results.append(CalibrationResult(write_profile(Path(out_dir), stem, summary, runs), summary, flops))
    return results
