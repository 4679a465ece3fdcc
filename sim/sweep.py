"""Sweeps: many configs, same traffic, on a local process pool or a Dask cluster.

A sweep is a base config, a workload and a list of variants (dotted-path
overrides, as ``FabricConfig.with_overrides`` takes them).  Every variant
runs the same replications 0..reps-1 with the same seed, so variants are
compared under common random numbers.  The unit of work is one (variant,
replication) pair; a pair's result depends only on its config, the workload,
the seed and the replication index, never on where or in which order it
ran, so every scheduler gives the same table:

* ``processes=1``: inline, in this process;
* ``scheduler=None`` or ``"processes"``: a
  :class:`concurrent.futures.ProcessPoolExecutor` (``processes`` workers,
  default one per CPU);
* ``scheduler="tcp://host:port"`` (any ``dask.distributed`` address): a Dask
  cluster, connected to for the sweep and disconnected after; the workers
  must be able to import ``comfyfab`` and ``sim``;
* ``scheduler=<distributed.Client>``: that client's cluster, left open.

The result is one tidy DataFrame: the summary rows of every (variant, rep),
the overrides as columns, and the fleet totals.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import pandas as pd

from comfyfab.config import FabricConfig

from .errors import SchedulerError
from .metrics import fleet_totals, summary
from .run import SimOptions, Workload, simulate

if TYPE_CHECKING:  # distributed is imported only when a cluster is asked for
    from distributed import Client

ADDRESS_SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")
CONNECT_TIMEOUT_S = 10.0


def run_rep(cfg: FabricConfig, overrides: Mapping[str, Any], workload: Workload, rep: int, seed: int,
            options: SimOptions, warmup_s: float = 0.0) -> pd.DataFrame:
    """One replication of one variant: summary rows with fleet totals, ``rep`` and overrides attached."""
    vcfg = cfg.with_overrides(overrides) if overrides else cfg
    res = simulate(vcfg, workload, seed=seed, rep=rep, options=options)
    out = summary(res, warmup_s=warmup_s)
    for k, v in fleet_totals(res).items():
        out[f"total_{k}"] = v
    out["rep"] = rep
    out["wall_s"] = res.wall_s
    for k, v in overrides.items():
        out[k] = v if not isinstance(v, (list, tuple)) else ",".join(map(str, v))
    return out


def run_variant(cfg: FabricConfig, overrides: Mapping[str, Any], workload: Workload, reps: int, seed: int,
                options: SimOptions, warmup_s: float = 0.0) -> pd.DataFrame:
    """All replications of one variant, stacked."""
    return pd.concat([run_rep(cfg, overrides, workload, rep, seed, options, warmup_s) for rep in range(reps)],
                     ignore_index=True)


def sweep(cfg: FabricConfig, workload: Workload, variants: Sequence[Mapping[str, Any]], *, reps: int = 1,
          seed: int = 0, options: SimOptions = SimOptions(), processes: int | None = None,
          warmup_s: float = 0.0, progress: Callable[[int, int], None] | None = None,
          scheduler: "str | Client | None" = None) -> pd.DataFrame:
    """Run every (variant, replication) and stack the results in variant, then replication, order.

    ``progress(done, total)`` is called after each finished pair (``total`` =
    ``len(variants) * reps``).  See the module docstring for ``scheduler``.
    """
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    if not variants:
        raise ValueError("a sweep needs at least one variant (use [{}] for the base config alone)")
    tasks = [(i, rep) for i in range(len(variants)) for rep in range(reps)]
    args = (workload, seed, options, warmup_s)
    if scheduler is None or scheduler == "processes":
        results = _local(cfg, variants, tasks, args, processes, progress)
    else:
        results = _dask(cfg, variants, tasks, args, scheduler, progress)
    return pd.concat([results[t].assign(variant=t[0]) for t in tasks], ignore_index=True)


def _local(cfg, variants, tasks, args, processes, progress) -> dict[tuple[int, int], pd.DataFrame]:
    workload, seed, options, warmup_s = args
    n = len(tasks)
    procs = max(1, min(processes or os.cpu_count() or 1, n))
    results: dict[tuple[int, int], pd.DataFrame] = {}
    if procs == 1:
        for k, (i, rep) in enumerate(tasks, 1):
            results[(i, rep)] = run_rep(cfg, variants[i], workload, rep, seed, options, warmup_s)
            if progress:
                progress(k, n)
        return results
    with ProcessPoolExecutor(max_workers=procs) as pool:
        futures = {pool.submit(run_rep, cfg, variants[i], workload, rep, seed, options, warmup_s): (i, rep)
                   for i, rep in tasks}
        for k, fut in enumerate(as_completed(futures), 1):
            results[futures[fut]] = fut.result()
            if progress:
                progress(k, n)
    return results


def connect(scheduler: "str | Client") -> tuple["Client", bool]:
    """A ``distributed.Client`` for ``scheduler`` and whether this sweep opened it (and must close it)."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise SchedulerError("a Dask scheduler needs the 'distributed' package: pip install dask distributed") \
            from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str) or not scheduler.startswith(ADDRESS_SCHEMES):
        raise SchedulerError(f"scheduler must be None, 'processes', a Dask address such as tcp://host:8786 "
                             f"or a distributed.Client, got {scheduler!r}")
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False), True
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc


def _dask(cfg, variants, tasks, args, scheduler, progress) -> dict[tuple[int, int], pd.DataFrame]:
    from distributed import as_completed as dask_completed

    workload, seed, options, warmup_s = args
    client, owned = connect(scheduler)
    try:
        # ship the config and the (possibly large, e.g. a trace) workload once, not once per task
        cfg_f, wl_f = client.scatter([cfg, workload], broadcast=False, hash=False)
        run_id = uuid.uuid4().hex[:12]  # names the tasks in the dashboard; never reused by another sweep
        futures = {client.submit(run_rep, cfg_f, variants[i], wl_f, rep, seed, options, warmup_s,
                                 key=f"comfyfab-sweep-{run_id}-v{i}-r{rep}", pure=False): (i, rep)
                   for i, rep in tasks}
        results: dict[tuple[int, int], pd.DataFrame] = {}
        for k, fut in enumerate(dask_completed(list(futures), loop=client.loop), 1):
            results[futures[fut]] = fut.result()
            if progress:
                progress(k, len(tasks))
        return results
    finally:
        if owned:
            client.close()
