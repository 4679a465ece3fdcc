"""The planner: the cheapest fleet for one tenant that meets latency SLOs.

``plan`` simulates a grid of fleets -- GPU type, warm-pool size, maximum
workers, autoscaling threshold -- on the same traffic (``per_day`` jobs a
day with the seed's class mix and office-hours profile), keeps those whose
SLOs hold in every replication's mean, and returns the one with the lowest
monthly cost.  SLOs are written as ``<class>.<stat><=<limit>``, e.g.
``realtime.p95<=2s``, ``standard.p99<=30s``, ``batch.p95<=1h``; stats are
``p50, p95, p99, mean, wait_p95, wait_mean``.

The decision rests on replication means of a model; pass ``margin`` (e.g.
0.1) to ask for headroom below each limit.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import pandas as pd

from comfyfab.config import PRIORITY_ORDER, FabricConfig

from .errors import PlanError, SloSpecError
from .metrics import Metric
from .run import SimOptions
from .sweep import sweep
from .workload import SEED_CLASS_MIX, WorkloadSpec

if TYPE_CHECKING:
    from distributed import Client

_STATS = {"p50": Metric.LATENCY_P50, "p95": Metric.LATENCY_P95, "p99": Metric.LATENCY_P99,
          "mean": Metric.LATENCY_MEAN, "wait_p95": Metric.WAIT_P95, "wait_mean": Metric.WAIT_MEAN}
_UNITS = {"ms": 0.001, "s": 1.0, "": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_SLO = re.compile(r"^\s*(?P<cls>[a-z]+)\.(?P<stat>[a-z_0-9]+)\s*<=\s*(?P<num>[0-9]*\.?[0-9]+)\s*(?P<unit>ms|min|s|m|h|)\s*$")


@dataclass(frozen=True)
class Slo:
    """One latency objective: a statistic of one class at or under a limit."""

    cls: str
    stat: str
    limit_s: float

    @property
    def column(self) -> str:
        return _STATS[self.stat].value

    def __str__(self) -> str:
        return f"{self.cls}.{self.stat}<={self.limit_s:g}s"


def parse_slo(text: str) -> Slo:
    m = _SLO.match(text)
    if not m:
        raise SloSpecError(f"cannot read SLO {text!r}; write e.g. realtime.p95<=2s")
    if m["cls"] not in PRIORITY_ORDER:
        raise SloSpecError(f"unknown class {m['cls']!r} in {text!r}; classes are {', '.join(PRIORITY_ORDER)}")
    if m["stat"] not in _STATS:
        raise SloSpecError(f"unknown statistic {m['stat']!r} in {text!r}; use one of {', '.join(_STATS)}")
    return Slo(m["cls"], m["stat"], float(m["num"]) * _UNITS[m["unit"]])


@dataclass(frozen=True)
class PlanSpace:
    """The fleets the planner may choose from."""

    gpus: tuple[str, ...] = ("A100", "H100")
    warm: tuple[int, ...] = (1, 2, 4)
    max_workers: tuple[int, ...] = (4, 8, 16, 32)
    thresholds: tuple[int, ...] = (5, 10, 20)

    def fleets(self) -> list[dict]:
        return [{"gpu": g, "warm": w, "max_workers": m, "threshold": t}
                for g, w, m, t in itertools.product(self.gpus, self.warm, self.max_workers, self.thresholds)
                if w <= m]


@dataclass
class PlanResult:
    """The chosen fleet, its cost, and every candidate's outcome."""

    best: dict
    monthly_cost_usd: float
    cost_per_1000_images: float
    slos: tuple[Slo, ...]
    table: pd.DataFrame = field(repr=False)


def tenant_only(cfg: FabricConfig, tenant: str) -> FabricConfig:
    data = cfg.model_dump(mode="json")
    data["tenants"] = [t for t in data["tenants"] if t["id"] == tenant]
    if not data["tenants"]:
        raise PlanError(f"unknown tenant {tenant!r}")
    return FabricConfig.model_validate(data)


def plan(cfg: FabricConfig, slos: Sequence[Slo], per_day: float, *, tenant: str | None = None,
         space: PlanSpace = PlanSpace(), days: float = 1.0, reps: int = 1, seed: int = 0,
         mix: Mapping[str, float] = SEED_CLASS_MIX, processes: int | None = None,
         options: SimOptions = SimOptions(), margin: float = 0.0,
         progress: Callable[[int, int], None] | None = None,
         scheduler: "str | Client | None" = None) -> PlanResult:
    """Cheapest fleet in ``space`` meeting every SLO at ``per_day`` jobs a day.

    A fleet meets an SLO when the replication mean of the statistic is at or
    under ``limit * (1 - margin)``; a margin buys headroom for model error.
    ``scheduler`` and ``processes`` say where candidates run (see
    :func:`sim.sweep.sweep`); ``progress(done, total)`` counts (candidate,
    replication) pairs.
    """
    if not 0 <= margin < 1:
        raise PlanError(f"margin must be in [0, 1), got {margin}")
    if not slos:
        raise PlanError("give at least one SLO, e.g. realtime.p95<=2s")
    tenant = tenant or cfg.tenants[0].id
    base = tenant_only(cfg, tenant)
    for g in space.gpus:
        base.gpu(g)  # KeyError names an unknown GPU before any simulation runs
    workload = WorkloadSpec.seed_month(base, days=days, jobs=per_day * 30, mix=mix)
    fleets = space.fleets()
    variants = [{"fleet.gpu": f["gpu"], f"tenants.{tenant}.gpu": None, "fleet.warm_realtime_workers": f["warm"],
                 f"tenants.{tenant}.max_workers": f["max_workers"],
                 "fleet.autoscaling.queue_depth_threshold": f["threshold"]} for f in fleets]
    table = sweep(base, workload, variants, reps=reps, seed=seed, options=options, processes=processes,
                  progress=progress, scheduler=scheduler)
    rows = []
    for i, f in enumerate(fleets):
        t = table[(table["variant"] == i) & (table["tenant"] == tenant)]
        row = dict(f)
        met = True
        for slo in slos:
            value = float(t.loc[t["class"] == slo.cls, slo.column].mean())
            row[str(slo)] = value
            met &= value <= slo.limit_s * (1 - margin)
        totals = t[t["class"] == "all"]
        row["monthly_cost_usd"] = float(totals["total_monthly_cost_usd"].mean())
        row["cost_per_1000_images"] = float(totals["total_cost_per_1000_images"].mean())
        row["meets_slos"] = bool(met)
        rows.append(row)
    out = pd.DataFrame(rows).sort_values(
        ["meets_slos", "monthly_cost_usd", "warm", "max_workers", "threshold"],
        ascending=[False, True, True, True, False], ignore_index=True)
    if not out["meets_slos"].any():
        worst = ", ".join(f"{s}: best {out[str(s)].min():.3g}s" for s in slos)
        raise PlanError(f"no fleet in the search space meets the SLOs at {per_day:g} jobs/day ({worst})")
    best = out.iloc[0]
    return PlanResult(best={"gpu": str(best["gpu"]), **{k: int(best[k]) for k in ("warm", "max_workers", "threshold")}},
                      monthly_cost_usd=float(best["monthly_cost_usd"]),
                      cost_per_1000_images=float(best["cost_per_1000_images"]), slos=tuple(slos), table=out)
