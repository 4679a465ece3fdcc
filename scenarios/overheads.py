"""What the live pipeline adds to every job, measured, so the simulator can include it.

The simulator's fleet is an ideal pipeline: a job can be received the
instant it arrives and its worker is free the instant execution ends.  The
live pipeline spends time on each job that is neither queueing nor
execution -- the router's checks, the DynamoDB write and SQS send, the
receive; after execution the upload, the record update and the delete --
and, when time is compressed, every wall millisecond of it counts
``time_scale`` times in fabric time.

:func:`measure_overheads` measures both on a *probe*: a short replay, on the
live pipeline and on the simulator, of the scenario's own tenant, mix and
time scale at a load so light that nothing queues.  Whatever separates the
two there is per-job pipeline overhead; the simulator of the real comparison
then adds it per job (:class:`sim.state.FleetOptions` ``dispatch_s`` and
``completion_s``).  The probe is a separate run: the comparison itself is
never used to tune the model that is compared with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comfyfab.config import FabricConfig

from .schema import LiveSpec, Scenario, TrafficSpec


@dataclass(frozen=True)
class PipelineOverheads:
    dispatch_s: float     # fabric seconds from arrival to receivable
    completion_s: float   # fabric seconds a worker is held after execution
    jobs: int             # probe jobs both runs completed
    time_scale: float

    def describe(self) -> str:
        return (f"pipeline overheads from a {self.jobs}-job live probe at low load: dispatch "
                f"{self.dispatch_s * 1000:.0f} ms, completion {self.completion_s * 1000:.0f} ms per job "
                f"(fabric time at {self.time_scale:g}x); the simulator adds them to every job")


def probe_scenario(scenario: Scenario, cfg: FabricConfig, jobs: int, gap_s: float) -> Scenario:
    """The scenario's first tenant and mix, one arrival every ``gap_s`` on average, nothing else."""
    tenant = (scenario.tenants or (cfg.tenants[0].id,))[0]
    live = scenario.live or LiveSpec()
    return Scenario(name=f"{scenario.name}-probe", description="pipeline overhead probe", duration_h=jobs * gap_s / 3600,
                    seed=scenario.seed + 1, tenants=(tenant,), config=dict(scenario.config),
                    traffic=TrafficSpec(per_day=86400 / gap_s, mix=dict(scenario.traffic.mix)),
                    live=LiveSpec(time_scale=live.time_scale, drain_wall_s=live.drain_wall_s,
                                  sample_wall_s=live.sample_wall_s))


def measure_overheads(scenario: Scenario, cfg: FabricConfig, jobs: int = 12,
                      progress=None) -> PipelineOverheads:
    """Replay a light probe of ``scenario`` on both and return the per-job difference (fabric seconds)."""
    from .live import run_live
    from .sim_mode import run_sim

    # Space arrivals several mean service times apart so that neither side queues.
    first = run_sim(probe_scenario(scenario, cfg, jobs, 60.0), cfg)
    mean_service = float(np.nanmean(first.jobs["service"])) if len(first.jobs) else 1.0
    probe = probe_scenario(scenario, cfg, jobs, max(2.0, 6 * mean_service))
    sim = run_sim(probe, cfg)
    live = run_live(probe, cfg, progress=progress)
    s_ok = sim.jobs[sim.jobs["status"] == "ok"]
    l_ok = live.jobs[live.jobs["status"] == "ok"]
    if len(l_ok) == 0 or len(s_ok) == 0:
        return PipelineOverheads(0.0, 0.0, 0, probe.live.time_scale)
    dispatch = float(np.median(l_ok["start"] - l_ok["arrival"]) - np.median(s_ok["start"] - s_ok["arrival"]))
    completion = float(np.median(l_ok["service"]) - np.median(s_ok["service"]))
    return PipelineOverheads(max(0.0, dispatch), max(0.0, completion), int(min(len(l_ok), len(s_ok))),
                             probe.live.time_scale)
