"""Service and cold-start times: uniforms in, seconds out.

Every job carries one uniform draw ``u`` in [0, 1) made when the workload is
materialised.  A :class:`ServiceModel` turns ``u`` into seconds for a given
GPU, model, resolution and steps.  Because the draw is made once per job and
not per GPU, two configs compared on the same workload see the same jobs
with "the same luck" (common random numbers): a slow job on the A100 is a
slow job on the H100.

Distributions:

* ``uniform`` (default): uniform between the config's ``min_s`` and ``max_s``;
* ``exponential``: mean of the config's bounds, for queueing-theory checks;
* ``deterministic``: always the mean;
* ``empirical``: inverse CDF of measured samples from a profile file (CSV
  with columns ``gpu, model, resolution, steps, seconds``), used for a GPU
  whose ``profile_file`` is set or when a profile is passed explicitly.

A profile ``comfyfab calibrate`` measured at batch B > 1 (its ``batch`` column)
holds each image's share of a batched run: the run's seconds divided by B.  The
simulator serves one job at a time at that speed, so the fleet's capacity is that
of batched serving, but a job's latency leaves out what batching adds to it: the
wait for batchmates and the rest of the batch's run, up to (B - 1) shares more.
:func:`batched_profiles` finds such files so the commands can say so.

Cold starts are uniform on ``fleet.cold_start`` unless a calibrated profile
(a ``seconds`` column of measured cold starts) is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Mapping

import numpy as np

from comfyfab.config import ColdStartConfig, GpuProfile

from .errors import ProfileError
from .tables import read_table

Distribution = Literal["uniform", "exponential", "deterministic", "empirical"]
DISTRIBUTIONS: tuple[str, ...] = ("uniform", "exponential", "deterministic", "empirical")
ProfileKey = tuple[str, str, int, int]  # gpu, model, resolution, steps
PROFILE_COLUMNS = ("gpu", "model", "resolution", "steps", "seconds")


def load_service_profile(path: str | Path) -> dict[ProfileKey, np.ndarray]:
    """Measured service times, sorted per (gpu, model, resolution, steps)."""
    p, df = read_table(path, "service profile", ProfileError)
    missing = [c for c in PROFILE_COLUMNS if c not in df.columns]
    if missing:
        raise ProfileError(f"service profile {p} lacks columns {missing}")
    if (df["seconds"] <= 0).any() or df["seconds"].isna().any():
        raise ProfileError(f"service profile {p} has non-positive or missing seconds")
    out: dict[ProfileKey, np.ndarray] = {}
    for (g, m, r, s), grp in df.groupby(["gpu", "model", "resolution", "steps"]):
        out[(str(g), str(m), int(r), int(s))] = np.sort(grp["seconds"].to_numpy(dtype=float))
    return out


def batched_profiles(paths: Iterable[str | Path | None]) -> dict[str, int]:
    """The profile files among ``paths`` measured at a batch above 1, with their largest batch."""
    out: dict[str, int] = {}
    for path in dict.fromkeys(str(x) for x in paths if x):
        _, df = read_table(path, "service profile", ProfileError)
        if "batch" in df.columns and len(df) and int(df["batch"].max()) > 1:
            out[path] = int(df["batch"].max())
    return out


@dataclass
class ServiceModel:
    """How long one job takes on one GPU, given its uniform draw."""

    distribution: Distribution = "uniform"
    profile: Mapping[ProfileKey, np.ndarray] = field(default_factory=dict)
    cold_starts: np.ndarray | None = None  # measured cold starts; None: uniform on the config

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ProfileError(f"unknown service distribution {self.distribution!r}; use one of {DISTRIBUTIONS}")

    def _samples(self, gpu: GpuProfile, key: tuple[str, int, int]) -> np.ndarray | None:
        samples = self.profile.get((gpu.name, *key))
        if samples is None and gpu.profile_file:
            loaded = load_service_profile(gpu.profile_file)
            self.profile = {**self.profile, **loaded}
            samples = loaded.get((gpu.name, *key))
        return samples

    def seconds(self, gpu: GpuProfile, key: tuple[str, int, int], u: np.ndarray) -> np.ndarray:
        """Service seconds for jobs of one (model, resolution, steps) on ``gpu``."""
        u = np.asarray(u, dtype=float)
        if self.distribution == "empirical" or gpu.profile_file or (gpu.name, *key) in self.profile:
            samples = self._samples(gpu, key)
            if samples is not None:
                return np.quantile(samples, u)
            if self.distribution == "empirical":
                raise ProfileError(f"no measured samples for {gpu.name} {key} in the service profile")
        st = gpu.service_time(*key)
        if self.distribution == "exponential":
            return -st.mean_s * np.log1p(-u)
        if self.distribution == "deterministic":
            return np.full(u.shape, st.mean_s)
        return st.min_s + u * (st.max_s - st.min_s)

    def mean_s(self, gpu: GpuProfile, key: tuple[str, int, int] = ("sdxl", 1024, 20)) -> float:
        samples = self._samples(gpu, key) if (self.distribution == "empirical" or gpu.profile_file) else None
        return float(samples.mean()) if samples is not None else gpu.service_time(*key).mean_s


def load_cold_start_profile(path: str | Path, reader: str | None = None) -> np.ndarray:
    """Measured cold starts, sorted: a CSV/Parquet with a ``seconds`` column (``comfyfab
    calibrate``'s ``-load.csv``), or the rows of ``comfyfab bench load --csv`` (``reader``,
    ``total_s``), of which ``reader``'s loads count (default: the reader with the lowest
    median, the one a tuned deployment runs)."""
    p, df = read_table(path, "cold-start profile", ProfileError)
    if "seconds" not in df.columns and {"reader", "total_s"} <= set(df.columns):
        if reader is None and not df.empty:
            reader = df.groupby("reader")["total_s"].median().idxmin()
        chosen = df[df["reader"] == reader]
        if chosen.empty:
            raise ProfileError(f"cold-start profile {p} has no loads by reader {reader!r} "
                               f"(it has {', '.join(map(str, df['reader'].unique()))})")
        df = chosen.rename(columns={"total_s": "seconds"})
    if "seconds" not in df.columns or df.empty:
        raise ProfileError(f"cold-start profile {p} needs a non-empty 'seconds' column")
    x = df["seconds"].to_numpy(dtype=float)
    if np.isnan(x).any() or (x < 0).any():
        raise ProfileError(f"cold-start profile {p} has negative or missing seconds")
    return np.sort(x)


def cold_start_seconds(cfg: ColdStartConfig, u: np.ndarray | float,
                       measured: np.ndarray | None = None) -> np.ndarray | float:
    """Cold start: inverse CDF of measured samples when given, else uniform on the config's bounds."""
    if measured is not None:
        return np.quantile(measured, u)
    return cfg.min_s + np.asarray(u) * (cfg.max_s - cfg.min_s)
