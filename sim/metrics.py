"""Named metrics with written formulas (see ``sim/METRICS.md``) and their CIs.

:func:`summary` turns one :class:`~sim.run.SimResult` into a DataFrame with
one row per (tenant, class), plus ``class == "all"`` rows per tenant and a
``tenant == "all"`` row per class, whose columns are :class:`Metric` values.
Per-tenant metrics (utilisation, cost, cold starts) appear on the ``all``
class rows only.  :func:`across` reduces replications to mean and a
Student-t confidence interval per metric.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from comfyfab.config import PRIORITY_ORDER

from .state import DLQ, OK, TenantRun


class Metric(str, Enum):
    """Every metric the simulator reports; formulas in ``sim/METRICS.md``."""

    JOBS = "jobs"
    COMPLETED = "completed"
    DLQ = "dlq"
    UNFINISHED = "unfinished"
    LATENCY_MEAN = "latency_mean_s"
    LATENCY_P50 = "latency_p50_s"
    LATENCY_P95 = "latency_p95_s"
    LATENCY_P99 = "latency_p99_s"
    WAIT_MEAN = "wait_mean_s"
    WAIT_P50 = "wait_p50_s"
    WAIT_P95 = "wait_p95_s"
    WAIT_P99 = "wait_p99_s"
    SERVICE_MEAN = "service_mean_s"
    THROUGHPUT_PER_HOUR = "throughput_per_hour"
    SLO_P95 = "slo_p95_s"
    SLO_ATTAINMENT = "slo_attainment"
    SLO_MET = "slo_met"
    UTILISATION = "utilisation"
    WORKER_HOURS = "worker_hours"
    PEAK_WORKERS = "peak_workers"
    COLD_STARTS = "cold_starts"
    INTERRUPTIONS = "interruptions"
    REDELIVERIES = "redeliveries"
    COST_USD = "cost_usd"
    COST_PER_1000 = "cost_per_1000_images"
    MEAN_IN_SYSTEM = "mean_in_system"


def _job_metrics(arrival, start, end, service, status, horizon_s: float, slo: float | None,
                 warmup_s: float) -> dict[str, float]:
    keep = arrival >= warmup_s
    status = status[keep]
    ok = status == OK
    lat = (end - arrival)[keep][ok]
    wait = lat - service[keep][ok]
    n_ok = int(ok.sum())
    span_h = max(horizon_s - warmup_s, 1e-9) / 3600

    def q(x: np.ndarray, p: float) -> float:
        return float(np.quantile(x, p)) if len(x) else float("nan")

    out = {
        Metric.JOBS: int(keep.sum()), Metric.COMPLETED: n_ok, Metric.DLQ: int((status == DLQ).sum()),
        Metric.UNFINISHED: int((~ok & (status != DLQ)).sum()),
        Metric.LATENCY_MEAN: float(lat.mean()) if n_ok else float("nan"),
        Metric.LATENCY_P50: q(lat, .5), Metric.LATENCY_P95: q(lat, .95), Metric.LATENCY_P99: q(lat, .99),
        Metric.WAIT_MEAN: float(wait.mean()) if n_ok else float("nan"),
        Metric.WAIT_P50: q(wait, .5), Metric.WAIT_P95: q(wait, .95), Metric.WAIT_P99: q(wait, .99),
        Metric.SERVICE_MEAN: float(service[keep][ok].mean()) if n_ok else float("nan"),
        Metric.THROUGHPUT_PER_HOUR: n_ok / span_h,
        Metric.SLO_P95: slo if slo is not None else float("nan"),
        Metric.SLO_ATTAINMENT: float((lat <= slo).mean()) if slo is not None and n_ok else float("nan"),
        Metric.SLO_MET: float(q(lat, .95) <= slo) if slo is not None and n_ok else float("nan"),
    }
    return {m.value: v for m, v in out.items()}


def tenant_costs(run: TenantRun, cfg) -> dict[str, float]:
    """Cost, utilisation and fleet counters of one tenant's run."""
    gpu = cfg.gpu(run.gpu)
    od = run.pools["on_demand"]
    spot = run.pools.get("spot")
    reserved_s = od.policy.min_workers * run.end_s
    cost = (gpu.reserved_usd_per_hour * reserved_s + gpu.on_demand_usd_per_hour * max(0.0, od.worker_s - reserved_s)
            + (gpu.spot_usd_per_hour * spot.worker_s if spot else 0.0)) / 3600
    worker_s = od.worker_s + (spot.worker_s if spot else 0.0)
    busy_s = od.busy_s + (spot.busy_s if spot else 0.0)
    completed = int((run.status == OK).sum())
    pools = [od, spot] if spot else [od]
    return {
        Metric.UTILISATION.value: busy_s / worker_s if worker_s else float("nan"),
        Metric.WORKER_HOURS.value: worker_s / 3600,
        Metric.PEAK_WORKERS.value: sum(p.peak for p in pools),
        Metric.COLD_STARTS.value: sum(p.cold_starts for p in pools),
        Metric.INTERRUPTIONS.value: run.interruptions,
        Metric.REDELIVERIES.value: run.redeliveries,
        Metric.COST_USD.value: cost,
        Metric.COST_PER_1000.value: cost / completed * 1000 if completed else float("nan"),
        Metric.MEAN_IN_SYSTEM.value: float(np.mean([s[7] for s in run.samples])) if run.samples else float("nan"),
    }


def summary(result, warmup_s: float = 0.0) -> pd.DataFrame:
    """Per (tenant, class) metrics of one replication, with ``all`` roll-ups."""
    cfg = result.cfg
    rows = []
    for tid, r in result.runs.items():
        for ci, cname in enumerate(PRIORITY_ORDER):
            m = r.cls == ci
            rows.append({"tenant": tid, "class": cname, **_job_metrics(
                r.arrival[m], r.start[m], r.end[m], r.service[m], r.status[m], r.horizon_s,
                cfg.queues.cls(cname).slo_p95_s, warmup_s)})
        rows.append({"tenant": tid, "class": "all", **_job_metrics(
            r.arrival, r.start, r.end, r.service, r.status, r.horizon_s, None, warmup_s), **tenant_costs(r, cfg)})
    for ci, cname in enumerate(PRIORITY_ORDER):
        parts = [(r, r.cls == ci) for r in result.runs.values()]
        if not parts:
            continue
        cat = lambda attr: np.concatenate([getattr(r, attr)[m] for r, m in parts])  # noqa: E731
        horizon = max(r.horizon_s for r, _ in parts)
        rows.append({"tenant": "all", "class": cname, **_job_metrics(
            cat("arrival"), cat("start"), cat("end"), cat("service"), cat("status"), horizon,
            cfg.queues.cls(cname).slo_p95_s, warmup_s)})
    return pd.DataFrame(rows)


def fleet_totals(result) -> dict[str, float]:
    """Whole-fabric cost and volume: the planner's and the CLI's bottom line."""
    s = summary(result)
    t = s[(s["class"] == "all") & (s["tenant"] != "all")]
    cost = float(t[Metric.COST_USD.value].sum())
    done = float(t[Metric.COMPLETED.value].sum())
    horizon_h = max(r.end_s for r in result.runs.values()) / 3600
    return {"cost_usd": cost, "completed": done, "cost_per_1000_images": cost / done * 1000 if done else float("nan"),
            "monthly_cost_usd": cost / horizon_h * 24 * 30 if horizon_h else float("nan")}


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval over independent replications."""
    x = np.asarray([v for v in values if not np.isnan(v)], dtype=float)
    if len(x) == 0:
        return (float("nan"),) * 3
    m = float(x.mean())
    if len(x) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return m, m - half, m + half


def across(summaries: Iterable[pd.DataFrame], metrics: Sequence[str] | None = None,
           level: float = 0.95) -> pd.DataFrame:
    """Mean and CI of each metric over replications, per (tenant, class)."""
    frames = list(summaries)
    allm = pd.concat(frames, keys=range(len(frames)), names=["rep", "row"]).reset_index(level=0)
    cols = list(metrics) if metrics else [m.value for m in Metric if m.value in allm.columns]
    rows = []
    for (tenant, cls), g in allm.groupby(["tenant", "class"], sort=False):
        row = {"tenant": tenant, "class": cls, "reps": len(g)}
        for c in cols:
            mean, lo, hi = confidence_interval(g[c].to_numpy(dtype=float), level)
            row[c] = mean
            row[f"{c}_ci_low"] = lo
            row[f"{c}_ci_high"] = hi
        rows.append(row)
    return pd.DataFrame(rows)


def hourly_throughput(result) -> pd.DataFrame:
    """Completions per clock hour, per tenant and class (THROUGHPUT_PER_HOUR over time)."""
    df = result.jobs_frame()
    df = df[df["status"] == "ok"]
    hour = (df["end"] // 3600).astype(int)
    out = df.assign(hour=hour).groupby(["tenant", "class", "hour"], observed=True).size()
    return out.rename("completed").reset_index()
