"""A scenario on the simulator.

The traffic is materialised once into per-tenant job tables
(:func:`sim.run.job_tables`), the same tables the live replay submits.  The
simulator models queues, pools, autoscaling, cold starts and spot
interruptions itself; the faults it has no event for are applied around it,
each in the simplest way that keeps its effect on the metrics:

* ``spot_storm``: the storm's interruption rate, averaged over the whole run
  (same expected interruptions per spot worker-hour), becomes
  ``fleet.spot.interruptions_per_hour`` -- the simulator's interruptions are
  a constant-rate Poisson process;
* ``region_failover``: requests made during the outage are accepted when it
  ends (clients retry against the standby), their latency counted from the
  first attempt;
* ``worker_crash``: the ``count`` jobs in service at the crash (or next to
  start) reappear after their class's visibility timeout and run again (the replacement worker's
  cold start is not modelled: the warm pool refills from the rest);
* ``poison_job``: ``count`` extra jobs that fail twice and are dead-lettered;
* ``blue_green``: the cutover is estimated as green's worst cold start plus
  the longest job blue may still drain (the live mode measures it).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd

from comfyfab.config import PRIORITY_ORDER, FabricConfig
from sim.errors import SimError
from sim.metrics import tenant_costs
from sim.run import SimOptions, job_tables, simulate
from sim.state import FleetOptions
from sim.workload import JobTable

from .errors import ReplayError
from .result import TIMELINE_COLUMNS, ReplayResult
from .schema import BlueGreen, LiveSpec, PoisonJob, RegionFailover, Scenario, SpotStorm, WorkerCrash


def sim_config(scenario: Scenario, cfg: FabricConfig) -> FabricConfig:
    """The config the simulator runs: the storm's averaged interruption rate folded in."""
    storms = scenario.faults_of(SpotStorm)
    if not storms:
        return cfg
    extra = sum(s.interruptions_per_hour * min(s.duration_h, scenario.duration_h - s.at_h) for s in storms)
    rate = cfg.fleet.spot.interruptions_per_hour + max(0.0, extra) / scenario.duration_h
    return cfg.with_overrides({"fleet.spot.interruptions_per_hour": rate})


def scenario_tables(scenario: Scenario, cfg: FabricConfig, rep: int = 0) -> dict[str, JobTable]:
    """The scenario's arrivals: one job table per tenant (the same for sim and live)."""
    try:
        return job_tables(cfg, scenario.workload(cfg), scenario.seed, rep)
    except SimError as exc:
        raise ReplayError(f"scenario {scenario.name}: {exc}") from None


def _failover_shift(scenario: Scenario, cfg: FabricConfig,
                    tables: dict[str, JobTable]) -> tuple[dict[str, JobTable], dict[str, np.ndarray]]:
    originals = {tid: jt.t.copy() for tid, jt in tables.items()}
    out = dict(tables)
    for f in scenario.faults_of(RegionFailover):
        a = f.at_h * 3600
        b = a + (f.outage_s or cfg.network.failover_s)
        for tid, jt in out.items():
            t = jt.t.copy()
            t[(t >= a) & (t < b)] = b
            out[tid] = JobTable(t, jt.cls, jt.key, jt.keys, jt.u, jt.horizon_s, jt.group)
    return out, originals


def _crash(frame: pd.DataFrame, scenario: Scenario, cfg: FabricConfig, counters: dict) -> None:
    for f in scenario.faults_of(WorkerCrash):
        at = f.at_h * 3600
        tenants = [f.tenant] if f.tenant else [t.id for t in cfg.tenants]
        for tid in tenants:
            # the jobs in service at the crash, else the next to start: a crash always takes jobs with it
            live = frame[(frame["tenant"] == tid) & (frame["status"] == "ok") & (frame["end"] > at)]
            running = live.sort_values("start", kind="stable").index[: f.count]
            for i in running:
                at_i = max(at, float(frame.at[i, "start"]))
                vt = cfg.queues.cls(str(frame.at[i, "class"])).visibility_timeout_s
                frame.at[i, "start"] = at_i + vt
                frame.at[i, "end"] = at_i + vt + frame.at[i, "service"]
                counters[tid]["redeliveries"] = counters[tid].get("redeliveries", 0) + 1
            counters[tid]["crashes"] = counters[tid].get("crashes", 0) + min(f.count, len(running))


def _poison(scenario: Scenario, cfg: FabricConfig, window_h: float | None = None) -> pd.DataFrame:
    rows = []
    for f in scenario.faults_of(PoisonJob):
        if window_h is not None and f.at_h >= window_h:
            continue
        for tid in [f.tenant] if f.tenant else [cfg.tenants[0].id]:
            for _ in range(f.count):
                rows.append({"tenant": tid, "class": f.priority, "arrival": f.at_h * 3600, "start": np.nan,
                             "end": np.nan, "service": np.nan, "status": "dlq"})
    return pd.DataFrame(rows)


def window(tables: dict[str, JobTable], window_s: float) -> dict[str, JobTable]:
    """Only the arrivals before ``window_s`` (the part a live replay submits), same draws."""
    out = {}
    for tid, jt in tables.items():
        m = jt.t < window_s
        out[tid] = JobTable(jt.t[m], jt.cls[m], jt.key[m], jt.keys, jt.u[m], min(jt.horizon_s, window_s),
                            None if jt.group is None else jt.group[m])
    return out


def with_live_groups(scenario: Scenario, cfg: FabricConfig, tables: dict[str, JobTable]) -> dict[str, JobTable]:
    """Each job's FIFO message group from the job id a live replay of ``scenario`` submits it under,
    so that the simulator's group collisions are the live run's.  A tenant whose jobs cannot be
    matched one to one keeps drawn groups."""
    from pipeline.queues import message_group_index

    from .live import plan_arrivals

    plan = plan_arrivals(scenario, cfg, scenario.live or LiveSpec())
    plan = plan[~plan["poison"].astype(bool)]
    groups = cfg.queues.message_groups
    out = dict(tables)
    for tid, jt in tables.items():
        mine = plan[plan["tenant"] == tid]
        if len(mine) != len(jt) or not np.allclose(mine["arrival"].to_numpy(dtype=float), jt.t):
            continue
        grp = np.array([message_group_index(j, groups) for j in mine["job_id"]], dtype=np.int64)
        out[tid] = dataclasses.replace(jt, group=grp)
    return out


def run_sim(scenario: Scenario, cfg: FabricConfig, rep: int = 0, label: str = "",
            window_h: float | None = None, overheads=None, dispatch_draw: int = 0) -> ReplayResult:
    """Replay ``scenario`` on the simulator with ``cfg`` (the effective config, overrides applied).

    ``window_h`` keeps only the arrivals before it: the same sequence a live replay of that window submits.
    ``overheads`` (:class:`scenarios.overheads.PipelineOverheads`) adds the live pipeline's per-job costs.
    """
    t0 = time.perf_counter()
    scfg = sim_config(scenario, cfg)
    tables = scenario_tables(scenario, scfg, rep)
    if window_h is not None:
        tables = window(tables, window_h * 3600)
    if overheads is not None:  # compared with a live run of these arrivals: its very message groups
        tables = with_live_groups(scenario, scfg, tables)
    tables, originals = _failover_shift(scenario, scfg, tables)
    options = SimOptions(fleet=FleetOptions(
        message_groups=scfg.queues.message_groups,
        sample_s=max(1.0, min(60.0, scenario.duration_s / 500)),
        completion_s=overheads.completion_s if overheads else 0.0,
        dispatch_samples=overheads.dispatch_samples if overheads else None,
        receive_samples=overheads.receive_samples if overheads else None,
        turnaround_s=overheads.turnaround_s if overheads else 0.0,
        turnaround_samples=overheads.turnaround_samples if overheads else None,
        overhead_ranks=overheads.rank_pairs if overheads else None, dispatch_draw=dispatch_draw))
    try:
        result = simulate(scfg, tables, seed=scenario.seed, rep=rep, options=options)
    except SimError as exc:
        raise ReplayError(f"scenario {scenario.name}: the simulator failed: {exc}") from None
    parts = []
    counters: dict[str, dict[str, float]] = {}
    for tid, r in result.runs.items():
        status = np.array(["ok", "dlq", "unfinished"])[r.status]
        parts.append(pd.DataFrame({
            "tenant": tid, "class": np.array(PRIORITY_ORDER)[r.cls], "arrival": originals[tid],
            "start": r.start, "end": r.end, "service": r.service, "status": status}))
        c = tenant_costs(r, scfg)
        counters[tid] = {k: float(c[k]) for k in ("peak_workers", "cold_starts", "interruptions", "redeliveries",
                                                  "cost_usd")}
    jobs = pd.concat(parts, ignore_index=True)
    _crash(jobs, scenario, scfg, counters)
    poison = _poison(scenario, scfg, window_h)
    if len(poison):
        jobs = pd.concat([jobs, poison], ignore_index=True)
    notes = [overheads.describe()] if overheads else []
    for f in scenario.faults_of(BlueGreen):
        gpu = scfg.gpu()
        est = scfg.fleet.cold_start.max_s + max(st.max_s for st in gpu.service_times)
        for tid in [f.tenant] if f.tenant else [t.id for t in scfg.tenants]:
            counters[tid]["cutover_s"] = est
        notes.append(f"blue/green to {f.version}: cutover estimated from the config ({est:.1f} s); "
                     "run --mode live to measure it")
    d = result.depth_frame()
    timeline = pd.DataFrame({"t": d["t"], "tenant": d["tenant"], "depth_realtime": d["depth_realtime"],
                             "depth_standard": d["depth_standard"], "depth_batch": d["depth_batch"],
                             "workers": d["workers_on_demand"] + d["workers_spot"], "busy": d["busy"]},
                            columns=list(TIMELINE_COLUMNS))
    return ReplayResult(scenario=scenario, mode="sim", cfg=scfg, jobs=jobs, timeline=timeline, counters=counters,
                        wall_s=time.perf_counter() - t0, notes=notes, label=label)
