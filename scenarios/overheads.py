"""What the live pipeline adds to every job, measured, so the simulator can include it.

The simulator's fleet is an ideal pipeline: a job can be received the
instant it arrives and its worker is free the instant execution ends.  The
live pipeline spends time on each job that is neither queueing nor
execution -- the router's checks, the DynamoDB write and SQS send, the
receive; after execution the upload, the record update and the delete --
and, when time is compressed, every wall millisecond of it counts
``time_scale`` times in fabric time.

:func:`measure_overheads` measures both on a *probe*: a separate replay, on
the live pipeline and on the simulator, of the scenario's own tenant, mix and
time scale, with other arrivals (the next seed), at the scenario's own mean
rate (or lighter, to stay short).  Job by job, the live wait beyond the
simulated wait on the same arrival is pipeline overhead; the simulator of the
real comparison then draws each job's dispatch from its class's measured
ones (:class:`sim.state.FleetOptions` ``dispatch_samples``) and holds each
worker ``completion_s`` longer.  The dispatch is kept as a distribution, per
class, because its spread is what the p95 waits of a lightly loaded fleet
are made of, and because an idle worker polls realtime, standard and batch
in turn, so a batch job's dispatch includes two empty receives that a
realtime job's does not.  The comparison itself is never used to tune the
model that is compared with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comfyfab.config import FabricConfig

from .schema import LiveSpec, Scenario, TrafficSpec


@dataclass(frozen=True)
class PipelineOverheads:
    dispatch_s: float     # fabric seconds from arrival to receivable (median over the probe)
    completion_s: float   # fabric seconds a worker is held after execution
    jobs: int             # probe jobs both runs completed
    time_scale: float
    # per class (realtime, standard, batch): each probe job's dispatch, fabric seconds; the simulator
    # draws every job's dispatch from its class's samples (a class with too few takes them all)
    dispatch_samples: tuple[tuple[float, ...], ...] | None = None

    def describe(self) -> str:
        spread = ""
        if self.dispatch_samples:
            every = np.concatenate([np.asarray(c) for c in self.dispatch_samples])
            spread = (f" (p50 {np.percentile(every, 50) * 1000:.0f}, p95 {np.percentile(every, 95) * 1000:.0f} ms; "
                      f"each job draws its class's measured dispatch)")
        return (f"pipeline overheads from a {self.jobs}-job live probe: dispatch "
                f"{self.dispatch_s * 1000:.0f} ms{spread}, completion {self.completion_s * 1000:.0f} ms per job "
                f"(fabric time at {self.time_scale:g}x); the simulator adds them to every job")


MIN_CLASS_SAMPLES = 5


def dispatch_samples(live_jobs, sim_jobs) -> tuple[tuple[float, ...], ...]:
    """Per class, each probe job's live wait beyond its simulated wait on the same arrival (the
    simulator's queueing taken out job by job); a class with fewer than MIN_CLASS_SAMPLES takes all."""
    from comfyfab.config import PRIORITY_ORDER

    def keyed(df):
        return df.assign(_key=df["arrival"].round(6))

    paired = keyed(live_jobs).merge(keyed(sim_jobs)[["class", "_key", "arrival", "start"]],
                                    on=["class", "_key"], suffixes=("", "_sim"))
    paired = paired.drop_duplicates(subset=["class", "_key"])
    waits = ((paired["start"] - paired["arrival"]) - (paired["start_sim"] - paired["arrival_sim"])).clip(lower=0.0)
    pooled = tuple(float(x) for x in np.sort(waits.to_numpy()))
    if not pooled:
        return ((0.0,),) * len(PRIORITY_ORDER)
    out = []
    for c in PRIORITY_ORDER:
        mine = waits[paired["class"] == c].to_numpy()
        out.append(tuple(float(x) for x in np.sort(mine)) if len(mine) >= MIN_CLASS_SAMPLES else pooled)
    return tuple(out)


def probe_scenario(scenario: Scenario, cfg: FabricConfig, jobs: int, gap_s: float) -> Scenario:
    """The scenario's first tenant and mix, one arrival every ``gap_s`` on average, nothing else."""
    tenant = (scenario.tenants or (cfg.tenants[0].id,))[0]
    live = scenario.live or LiveSpec()
    return Scenario(name=f"{scenario.name}-probe", description="pipeline overhead probe", duration_h=jobs * gap_s / 3600,
                    seed=scenario.seed + 1, tenants=(tenant,), config=dict(scenario.config),
                    traffic=TrafficSpec(per_day=86400 / gap_s, mix=dict(scenario.traffic.mix)),
                    live=LiveSpec(time_scale=live.time_scale, drain_wall_s=live.drain_wall_s,
                                  sample_wall_s=live.sample_wall_s))


def measure_overheads(scenario: Scenario, cfg: FabricConfig, jobs: int = 100,
                      progress=None) -> PipelineOverheads:
    """Replay a probe of ``scenario`` on both and return the per-job difference (fabric seconds).

    The probe runs at the scenario's own mean rate per tenant (the pipeline's overheads grow with
    the CPU the rest of the load takes), or, for a lighter scenario, one arrival every four mean
    service times, so that the probe stays short; each job's simulated wait is taken out of its live
    wait, so what queueing the probe has does not count as overhead."""
    from .live import run_live
    from .sim_mode import run_sim

    first = run_sim(probe_scenario(scenario, cfg, jobs, 60.0), cfg)
    mean_service = float(np.nanmean(first.jobs["service"])) if len(first.jobs) else 1.0
    gap = max(2.0, 4 * mean_service)
    if scenario.traffic.per_day:
        gap = min(gap, 86400 / (scenario.traffic.per_day / max(1, len(scenario.tenants or cfg.tenants))))
    probe = probe_scenario(scenario, cfg, jobs, gap)
    sim = run_sim(probe, cfg)
    live = run_live(probe, cfg, progress=progress)
    s_ok = sim.jobs[sim.jobs["status"] == "ok"]
    l_ok = live.jobs[live.jobs["status"] == "ok"]
    if len(l_ok) == 0 or len(s_ok) == 0:
        return PipelineOverheads(0.0, 0.0, 0, probe.live.time_scale)
    completion = max(0.0, float(np.median(l_ok["service"]) - np.median(s_ok["service"])))
    if completion > 0:
        # the simulator's twin of the probe holds each worker as long as the live one does, so that
        # queueing behind a slower completion is not counted as dispatch below
        held = PipelineOverheads(0.0, completion, 0, probe.live.time_scale)
        sim = run_sim(probe, cfg, overheads=held)
        s_ok = sim.jobs[sim.jobs["status"] == "ok"]
    samples = dispatch_samples(l_ok, s_ok)
    dispatch = float(np.median(np.concatenate([np.asarray(c) for c in samples])))
    return PipelineOverheads(max(0.0, dispatch), max(0.0, completion), int(min(len(l_ok), len(s_ok))),
                             probe.live.time_scale, samples)
