"""Running the model: one replication, many, and what comes out.

:func:`simulate` takes the effective :class:`~comfyfab.config.FabricConfig`
and a workload (a :class:`~sim.workload.WorkloadSpec`, a trace DataFrame or
ready job tables) and returns a :class:`SimResult`.  :func:`replicate` runs
independent replications (``rep`` in every component's seed key); two
configs simulated with the same ``seed`` and ``rep`` see the same arrivals
and the same service draws (common random numbers).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import yaml

from comfyfab.config import PRIORITY_ORDER, FabricConfig

from .fleet import TenantFleet
from .state import FleetOptions, TenantRun
from .service import ServiceModel, load_cold_start_profile, load_service_profile
from .workload import JobTable, WorkloadSpec, jobs_from_trace, materialize

Workload = WorkloadSpec | pd.DataFrame | Mapping[str, JobTable]


@dataclass(frozen=True)
class SimOptions:
    """How to run the model (the architecture itself is the config)."""

    fleet: FleetOptions = FleetOptions()
    distribution: str = "uniform"
    profile_path: str | None = None
    cold_start_path: str | None = None

    def service_model(self) -> ServiceModel:
        profile = load_service_profile(self.profile_path) if self.profile_path else {}
        cold = load_cold_start_profile(self.cold_start_path) if self.cold_start_path else None
        return ServiceModel(self.distribution, profile, cold)  # type: ignore[arg-type]


@dataclass
class SimResult:
    """One replication: the effective config, per-tenant runs and how long it took."""

    cfg: FabricConfig
    runs: dict[str, TenantRun]
    seed: int
    rep: int
    wall_s: float
    options: SimOptions = field(default_factory=SimOptions)

    @property
    def jobs(self) -> int:
        return sum(len(r.arrival) for r in self.runs.values())

    def jobs_frame(self) -> pd.DataFrame:
        """One row per job: tenant, class, arrival, start, end, service, status, latency, wait."""
        parts = []
        for tid, r in self.runs.items():
            parts.append(pd.DataFrame({
                "tenant": tid, "class": pd.Categorical.from_codes(r.cls, PRIORITY_ORDER),
                "arrival": r.arrival, "start": r.start, "end": r.end, "service": r.service,
                "status": pd.Categorical.from_codes(r.status, ["ok", "dlq", "unfinished"])}))
        df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if len(df):
            df["latency"] = df["end"] - df["arrival"]
            df["wait"] = df["latency"] - df["service"]
            df.loc[df["status"] != "ok", ["latency", "wait"]] = np.nan
        return df

    def depth_frame(self) -> pd.DataFrame:
        """Sampled queue depth, workers and jobs in system over time, per tenant."""
        cols = ["t", "depth_realtime", "depth_standard", "depth_batch", "workers_on_demand",
                "workers_spot", "busy", "in_system"]
        parts = [pd.DataFrame(r.samples, columns=cols).assign(tenant=tid) for tid, r in self.runs.items()]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*cols, "tenant"])

    def save(self, directory: str | Path) -> Path:
        """Write jobs, depth samples, the summary and the effective config (the run's provenance)."""
        from .metrics import summary

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.yaml").write_text(yaml.safe_dump(self.cfg.model_dump(mode="json"), sort_keys=False))
        (d / "run.json").write_text(json.dumps({
            "seed": self.seed, "rep": self.rep, "wall_s": self.wall_s, "config_digest": self.cfg.digest(),
            "options": {"heartbeats": self.options.fleet.heartbeats, "autoscale": self.options.fleet.autoscale,
                        "spot": self.options.fleet.spot, "distribution": self.options.distribution,
                        "profile_path": self.options.profile_path,
                        "cold_start_path": self.options.cold_start_path}}, indent=2))
        self.jobs_frame().to_parquet(d / "jobs.parquet", index=False)
        self.depth_frame().to_csv(d / "depth.csv", index=False)
        summary(self).to_csv(d / "summary.csv", index=False)
        return d


def job_tables(cfg: FabricConfig, workload: Workload, seed: int, rep: int) -> dict[str, JobTable]:
    if isinstance(workload, WorkloadSpec):
        return materialize(workload, cfg, seed=seed, rep=rep)
    if isinstance(workload, pd.DataFrame):
        return jobs_from_trace(workload, cfg, seed=seed, rep=rep)
    return dict(workload)


def simulate(cfg: FabricConfig, workload: Workload, *, seed: int = 0, rep: int = 0,
             options: SimOptions = SimOptions(),
             progress: Callable[[str, int], None] | None = None) -> SimResult:
    """Run one replication of the whole fabric (each tenant's fleet in turn)."""
    t0 = time.perf_counter()
    tables = job_tables(cfg, workload, seed, rep)
    service = options.service_model()
    runs: dict[str, TenantRun] = {}
    done_before = 0
    for tenant in cfg.tenants:
        jt = tables.get(tenant.id) or JobTable.empty(next(iter(tables.values())).horizon_s if tables else 0.0)
        cb = None
        if progress is not None:
            base = done_before
            cb = lambda k, base=base, tid=tenant.id: progress(tid, base + k)  # noqa: E731
        runs[tenant.id] = TenantFleet(cfg, tenant.id, jt, service, options.fleet, seed=seed, rep=rep,
                                      progress=cb).run()
        done_before += len(jt)
    return SimResult(cfg, runs, seed, rep, time.perf_counter() - t0, options)


def replicate(cfg: FabricConfig, workload: Workload, reps: int, *, seed: int = 0,
              options: SimOptions = SimOptions()) -> list[SimResult]:
    """Independent replications 0..reps-1 of the same config and workload."""
    return [simulate(cfg, workload, seed=seed, rep=r, options=options) for r in range(reps)]
