"""Service-time profiles: what a calibration writes and the simulator reads.

One profile per (device, model, resolution, steps, batch), two files:

* ``<stem>.csv``: one row per timed run, the columns
  :func:`sim.service.load_service_profile` reads (``gpu, model, resolution,
  steps, seconds``) plus ``batch``, ``batch_seconds``, ``run``, ``device``,
  ``dtype``.  ``seconds`` is the service time of ONE image: the run's wall
  time divided by its batch (at batch 1, the latency of one image; at batch
  B, the per-image share of a batched run, whose reciprocal is the
  throughput).  ``gpu`` is the name of the config's GPU profile the samples
  belong to (``H100``, ``A100``), or ``cpu``;
* ``<stem>.json``: the summary: p50, p90, mean, a lognormal fit, images/s,
  load time, FLOPs, MFU and what its peak was, device name, torch version,
  dtype, sampler, scheduler, and the run's settings;
* ``<stem>-load.csv``: measured checkpoint loads (a ``seconds`` column, the
  file :func:`sim.service.load_cold_start_profile` reads);
* ``<stem>-coldstart.csv`` (compiled profiles): each load plus the compile (the first
  warm-up run less a timed run), the cold start of a compiled worker, in the same form.

The stem is ``<device>-<model>-<resolution>-<steps>-b<batch>``, then ``-fp8``
when the UNet's projections ran in FP8 (``-fp8-torchao`` with that recipe), ``-<kernel>`` when an attention kernel
was preferred (``-cudnn``) and ``-compiled`` when torch.compile was on (``-compiled-regional`` when
it compiled the repeated blocks one by one), e.g. ``cpu-tiny-64-4-b1`` or
``h100-sdxl-1024-20-b4-fp8-cudnn-compiled``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LognormalFit", "ProfileSummary", "fit_lognormal", "profile_stem", "read_summary", "write_profile"]


@dataclass(frozen=True)
class LognormalFit:
    """A lognormal fitted to per-image seconds: log(x) ~ Normal(mu, sigma)."""

    mu: float
    sigma: float

    @property
    def median_s(self) -> float:
        return math.exp(self.mu)

    @property
    def mean_s(self) -> float:
        return math.exp(self.mu + self.sigma ** 2 / 2)


def fit_lognormal(samples: np.ndarray) -> LognormalFit:
    """Maximum-likelihood lognormal (mean and population std of the logs)."""
    logs = np.log(np.asarray(samples, dtype=float))
    return LognormalFit(float(logs.mean()), float(logs.std()))


@dataclass(frozen=True)
class ProfileSummary:
    """The measured figures of one profile (the JSON side file)."""

    gpu: str
    device: str
    model: str
    resolution: int
    steps: int
    batch: int
    runs: int
    p50_s: float
    p90_s: float
    mean_s: float
    batch_p50_s: float
    images_per_s: float
    lognormal: LognormalFit
    load_s: float | None
    load_samples_s: tuple[float, ...]
    checkpoint_bytes: int | None
    page_cache: str | None
    flops_per_image: int
    flops_per_image_run: int
    flops_source: str
    unet_flops_per_step: float
    mfu: float | None
    peak_tflops: float | None
    peak_source: str
    torch_version: str
    dtype: str
    sampler: str
    scheduler: str
    cfg: float
    compiled: bool
    channels_last: bool
    attention: str
    load_reader: str | None = None  # how the checkpoint was read (threads, chunk size, O_DIRECT)
    load_phases_s: dict[str, float] | None = None  # median seconds of each step of a load
    fp8_layers: int = 0  # UNet linear layers in FP8 (0: all in ``dtype``)
    fp8_recipe: str | None = None  # with fp8_layers: "scaled-mm" (comfyfab's modules) or "torchao"
    attention_kernel: str = "auto"  # the SDPA kernel tried first ("auto": torch's order)
    compile_scope: str | None = None  # with ``compiled``: "full" or "regional" (torch.compile of the repeated blocks)
    warmup_s: tuple[float, ...] = ()  # the untimed runs' seconds; a compiled run's first pays the compile

    @property
    def compile_s(self) -> float | None:
        """A compiled run's compile: its first warm-up run less a timed run's median (None when not
        compiled or no warm-up was kept)."""
        if not self.compiled or not self.warmup_s:
            return None
        return max(0.0, self.warmup_s[0] - self.batch_p50_s)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["compile_s"] = self.compile_s
        data["lognormal"] = {**asdict(self.lognormal), "median_s": self.lognormal.median_s,
                             "mean_s": self.lognormal.mean_s}
        data["load_samples_s"] = list(self.load_samples_s)
        data["warmup_s"] = list(self.warmup_s)
        return data


def profile_stem(device_tag: str, model: str, resolution: int, steps: int, batch: int, compiled: bool,
                 variant: str | None = None) -> str:
    """``variant`` (e.g. ``-fp8-cudnn-compiled``, :attr:`CalibrationSpec.variant`) replaces the plain
    ``-compiled`` suffix."""
    tag = re.sub(r"[^a-z0-9]+", "", device_tag.lower()) or "device"
    suffix = variant if variant is not None else ("-compiled" if compiled else "")
    return f"{tag}-{model}-{resolution}-{steps}-b{batch}{suffix}"


def write_profile(out_dir: Path, stem: str, summary: ProfileSummary, batch_seconds: list[float]) -> Path:
    """Write ``<stem>.csv``, ``<stem>.json`` and (when loads were timed) ``<stem>-load.csv``; return the CSV.
    A compiled profile also gets ``<stem>-coldstart.csv``: each load plus the compile, what a compiled
    worker waits before its first job (``comfyfab sim run --cold-starts`` reads either file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = np.asarray(batch_seconds, dtype=float)
    frame = pd.DataFrame({
        "gpu": summary.gpu, "model": summary.model, "resolution": summary.resolution, "steps": summary.steps,
        "seconds": runs / summary.batch, "batch": summary.batch, "batch_seconds": runs,
        "run": np.arange(len(runs)), "device": summary.device, "dtype": summary.dtype})
    csv = out_dir / f"{stem}.csv"
    frame.to_csv(csv, index=False, float_format="%.9g")
    (out_dir / f"{stem}.json").write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    if summary.load_samples_s:
        pd.DataFrame({"seconds": list(summary.load_samples_s)}).to_csv(out_dir / f"{stem}-load.csv", index=False,
                                                                         float_format="%.9g")
        if summary.compile_s is not None:
            pd.DataFrame({"seconds": [load + summary.compile_s for load in summary.load_samples_s],
                          "load_s": list(summary.load_samples_s), "compile_s": summary.compile_s}).to_csv(
                out_dir / f"{stem}-coldstart.csv", index=False, float_format="%.9g")
    return csv


def read_summary(csv: Path) -> dict[str, Any]:
    """The JSON side file of a profile CSV."""
    return json.loads(Path(csv).with_suffix(".json").read_text())
