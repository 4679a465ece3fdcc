"""Named replay metrics, computed the same way for the simulator and the live pipeline.

Both modes produce a *job frame*, one row per job: ``tenant, class, arrival,
start, end, service, status`` (status ``ok``, ``dlq`` or ``unfinished``;
times in fabric seconds from the scenario's start), plus fleet counters.
:func:`compute` turns them into a flat dict of metrics; assertions and diffs
read only that dict.

Per class ``c`` (``realtime``, ``standard``, ``batch`` or ``all``), over the
jobs of that class (``ok`` ones for the latencies):

=====================  ===================================================
``c.p50/p95/p99``      quantiles of ``end - arrival`` (end-to-end latency)
``c.mean``             mean of the same
``c.wait_p50/wait_p95`` quantiles of ``start - arrival`` of the final
                       attempt: queueing, lost attempts and cold starts
``c.wait_mean``        mean of the same
``c.jobs``             jobs that arrived
``c.completed``        jobs that finished OK
``c.dlq``              jobs dead-lettered (``max_receive_count`` failures)
``c.lost``             ``jobs - completed - dlq``: accepted and never finished
``c.slo_attainment``   share of OK jobs within the class's ``slo_p95_s``
=====================  ===================================================

Whole-run metrics: ``jobs, completed, dlq, lost`` (all classes),
``peak_workers`` (largest pool seen, all tenants), ``cold_starts``,
``interruptions`` (spot), ``redeliveries``, ``crashes``, ``cost_usd`` (sim
only), ``cutover_s`` (blue/green: from the start of the cutover to the last
blue worker stopped, fabric seconds).  Every key may be prefixed by a tenant,
``acme-health:realtime.p95``.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from comfyfab.config import PRIORITY_ORDER, FabricConfig

CLASS_STATS = ("p50", "p95", "p99", "mean", "wait_p50", "wait_p95", "wait_mean", "jobs", "completed", "dlq",
               "lost", "slo_attainment")
COUNTERS = ("peak_workers", "cold_starts", "interruptions", "redeliveries", "crashes", "cost_usd", "cutover_s")
RUN_METRICS = ("jobs", "completed", "dlq", "lost", *COUNTERS)
JOB_COLUMNS = ("tenant", "class", "arrival", "start", "end", "service", "status")


def is_metric(name: str) -> bool:
    if name in RUN_METRICS:
        return True
    cls, _, stat = name.partition(".")
    return cls in (*PRIORITY_ORDER, "all") and stat in CLASS_STATS


def _q(x: np.ndarray, p: float) -> float:
    return float(np.quantile(x, p)) if len(x) else float("nan")


def _class_metrics(df: pd.DataFrame, slo: float | None) -> dict[str, float]:
    ok = df[df["status"] == "ok"]
    lat = (ok["end"] - ok["arrival"]).to_numpy(dtype=float)
    wait = (ok["start"] - ok["arrival"]).to_numpy(dtype=float)
    jobs, done, dlq = len(df), len(ok), int((df["status"] == "dlq").sum())
    return {
        "p50": _q(lat, .5), "p95": _q(lat, .95), "p99": _q(lat, .99),
        "mean": float(lat.mean()) if len(lat) else float("nan"),
        "wait_p50": _q(wait, .5), "wait_p95": _q(wait, .95),
        "wait_mean": float(wait.mean()) if len(wait) else float("nan"),
        "jobs": jobs, "completed": done, "dlq": dlq, "lost": jobs - done - dlq,
        "slo_attainment": float((lat <= slo).mean()) if slo and len(lat) else float("nan"),
    }


def _scope(df: pd.DataFrame, cfg: FabricConfig, prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in (*PRIORITY_ORDER, "all"):
        sub = df if c == "all" else df[df["class"] == c]
        slo = cfg.queues.cls(c).slo_p95_s if c != "all" else None
        for k, v in _class_metrics(sub, slo).items():
            out[f"{prefix}{c}.{k}"] = v
    for k in ("jobs", "completed", "dlq", "lost"):
        out[f"{prefix}{k}"] = out[f"{prefix}all.{k}"]
    return out


def compute(jobs: pd.DataFrame, cfg: FabricConfig, counters: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """All metrics of one replay; ``counters`` maps tenant -> {counter: value}."""
    missing = [c for c in JOB_COLUMNS if c not in jobs.columns]
    if missing:
        raise ValueError(f"job frame lacks columns {missing}")
    out = _scope(jobs, cfg, "")
    for t in cfg.tenants:
        out.update(_scope(jobs[jobs["tenant"] == t.id], cfg, f"{t.id}:"))
    for name in COUNTERS:
        values = [float(c[name]) for c in counters.values() if name in c and not _nan(c[name])]
        if name == "cutover_s":
            out[name] = max(values) if values else float("nan")
        else:
            out[name] = float(sum(values)) if values else (float("nan") if name == "cost_usd" else 0.0)
        for tid, c in counters.items():
            if name in c:
                out[f"{tid}:{name}"] = float(c[name])
    return {k: (int(v) if isinstance(v, (int, np.integer)) else float(v)) for k, v in out.items()}


def _nan(x: float) -> bool:
    return isinstance(x, float) and math.isnan(x)
