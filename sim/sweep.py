"""Sweeps: many configs, same traffic, on a local process pool.

A sweep is a base config, a workload and a list of variants (dotted-path
overrides, as ``FabricConfig.with_overrides`` takes them).  Every variant
runs the same replications 0..reps-1 with the same seed, so variants are
compared under common random numbers.  Variants go to a
:class:`concurrent.futures.ProcessPoolExecutor` (``processes=1`` runs them
inline).  The result is one tidy DataFrame: the summary rows of every
(variant, rep), the overrides as columns, and the fleet totals.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from comfyfab.config import FabricConfig

from .metrics import fleet_totals, summary
from .run import SimOptions, Workload, simulate


def run_variant(cfg: FabricConfig, overrides: Mapping[str, Any], workload: Workload, reps: int, seed: int,
                options: SimOptions, warmup_s: float = 0.0) -> pd.DataFrame:
    """All replications of one variant, as summary rows with totals and overrides attached."""
    vcfg = cfg.with_overrides(overrides) if overrides else cfg
    frames = []
    for rep in range(reps):
        res = simulate(vcfg, workload, seed=seed, rep=rep, options=options)
        s = summary(res, warmup_s=warmup_s)
        for k, v in fleet_totals(res).items():
            s[f"total_{k}"] = v
        s["rep"] = rep
        s["wall_s"] = res.wall_s
        frames.append(s)
    out = pd.concat(frames, ignore_index=True)
    for k, v in overrides.items():
        out[k] = v if not isinstance(v, (list, tuple)) else ",".join(map(str, v))
    return out


def sweep(cfg: FabricConfig, workload: Workload, variants: Sequence[Mapping[str, Any]], *, reps: int = 1,
          seed: int = 0, options: SimOptions = SimOptions(), processes: int | None = None,
          warmup_s: float = 0.0, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Run every variant (``processes`` workers, default one per CPU) and stack the results."""
    n = len(variants)
    procs = max(1, min(processes or os.cpu_count() or 1, n))
    results: dict[int, pd.DataFrame] = {}
    if procs == 1:
        for i, ov in enumerate(variants):
            results[i] = run_variant(cfg, ov, workload, reps, seed, options, warmup_s)
            if progress:
                progress(i + 1, n)
    else:
        with ProcessPoolExecutor(max_workers=procs) as pool:
            futures = {pool.submit(run_variant, cfg, ov, workload, reps, seed, options, warmup_s): i
                       for i, ov in enumerate(variants)}
            for k, fut in enumerate(as_completed(futures), 1):
                results[futures[fut]] = fut.result()
                if progress:
                    progress(k, n)
    return pd.concat([results[i].assign(variant=i) for i in range(n)], ignore_index=True)
