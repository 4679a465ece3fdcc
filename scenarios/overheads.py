"""What the live pipeline adds to every job, measured, so the simulator can include it.

The simulator's fleet is an ideal pipeline: a job can be received the
instant it arrives and its worker is free the instant execution ends.  The
live pipeline spends time on each job that is neither queueing nor
execution -- the router's checks, the DynamoDB write and SQS send, the
receive; after execution the upload, the record update and the delete --
and, when time is compressed, every wall millisecond of it counts
``time_scale`` times in fabric time.

:class:`OverheadProbe` measures them on a *probe*: a separate live replay
of the scenario's own tenant, class mix and time scale, with other arrivals
(the next seed), at the scenario's own mean rate (or lighter, to stay
short).  Per job it reads two times: *submit*, from arrival until the
router's answer (the job is then in SQS), and *receive*, from when the job
was in SQS and its worker was free until the worker held it (the empty
receives of higher classes, the receive, the start write).  Neither contains
any wait for a free worker, so queueing is left to the simulator.  The
simulator of the real comparison makes each job receivable its drawn submit
time after arrival, and each worker takes its drawn receive time to pick a
job up (:class:`sim.state.FleetOptions` ``dispatch_samples`` and
``receive_samples``, per class: an idle worker polls realtime, standard,
batch in turn, so a batch job's receive includes two empty receives; the
samples are those of idle workers; a job's two are drawn together, from one
probe pickup's ranks, ``overhead_ranks``), a worker that comes straight from
finishing another job takes a drawn turnaround longer than that
(``turnaround_samples``), and each worker is held ``completion_s`` longer
after execution.  The comparison
itself is never used to tune the model that is compared with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comfyfab.config import PRIORITY_ORDER, FabricConfig

from .schema import LiveSpec, Scenario, TrafficSpec


@dataclass(frozen=True)
class PipelineOverheads:
    completion_s: float   # fabric seconds a worker is held after execution
    jobs: int             # probe jobs both runs completed
    time_scale: float
    # per class (realtime, standard, batch), fabric seconds: each probe job's submit time (arrival to
    # receivable); the simulator draws every job's from its class's samples (too few: all classes')
    dispatch_samples: tuple[tuple[float, ...], ...] | None = None
    # per class: from the moment a job is in SQS and a worker is free until the worker has it
    receive_samples: tuple[tuple[float, ...], ...] | None = None
    # a worker coming straight from another job takes this much longer to hold the next (:func:`turnaround`)
    turnaround_s: float = 0.0
    # per idle probe pickup: (rank of its submit among the submit samples, rank of its receive among its
    # class's receive samples); the simulator draws a job's two times together from one pair
    rank_pairs: tuple[tuple[float, float], ...] | None = None
    # every chained probe pickup's turnaround; the simulator draws each job's from them
    turnaround_samples: tuple[float, ...] | None = None
    slices: int = 1       # short probes the jobs came from, spread over the live runs (:class:`OverheadProbe`)

    def describe(self) -> str:
        def spread(name: str, samples) -> str:
            every = np.concatenate([np.asarray(c) for c in samples])
            return (f"{name} p50 {np.percentile(every, 50) * 1000:.0f} / p95 {np.percentile(every, 95) * 1000:.0f} ms")

        parts = [spread(name, samples) for name, samples in (("submit", self.dispatch_samples),
                                                             ("receive", self.receive_samples)) if samples]
        parts.append(f"completion {self.completion_s * 1000:.0f} ms")
        parts.append(f"turnaround {self.turnaround_s * 1000:.0f} ms" + (
            f" (p90 {np.percentile(self.turnaround_samples, 90) * 1000:.0f} ms, {len(self.turnaround_samples)} "
            "chained pickups)" if self.turnaround_samples else ""))
        where = f"a {self.jobs}-job live probe" if self.slices == 1 else \
            f"{self.jobs} jobs of live probes in {self.slices} slices around the live runs"
        together = "; a job's submit and receive together, as one probe pickup's" if self.rank_pairs else ""
        return (f"pipeline overheads from {where} (fabric time at {self.time_scale:g}x): "
                f"{', '.join(parts)}; the simulator draws each job's from its class's measured ones{together}")


MIN_CLASS_SAMPLES = 5


def _per_class(values, classes, pool: bool = False) -> tuple[tuple[float, ...], ...]:
    """Sorted samples per class (realtime, standard, batch); a class with too few takes all classes',
    and with ``pool`` every class does."""
    values = np.clip(np.asarray(values, dtype=float), 0.0, None)
    classes = np.asarray(classes)
    keep = ~np.isnan(values)
    values, classes = values[keep], classes[keep]
    pooled = tuple(float(x) for x in np.sort(values)) or (0.0,)
    out = []
    for c in PRIORITY_ORDER:
        mine = values[classes == c]
        out.append(tuple(float(x) for x in np.sort(mine)) if len(mine) >= MIN_CLASS_SAMPLES and not pool else pooled)
    return tuple(out)


def _pickups(jobs):
    """The ok jobs in start order, with each one's submit and receive times and whether its pickup was
    *chained*: its worker came to it straight from finishing another job (the job was waiting), rather
    than from idling (the job arrived to a free worker)."""
    ok = jobs[(jobs["status"] == "ok") & jobs["enqueued"].notna()].sort_values("start", kind="stable")
    submit = (ok["enqueued"] - ok["arrival"]).to_numpy(dtype=float)
    free_at = ok.groupby("worker")["end"].shift(1).fillna(-np.inf).to_numpy(dtype=float)
    enqueued = ok["enqueued"].to_numpy(dtype=float)
    ready = np.maximum(enqueued, free_at)
    if "group" in ok.columns:
        # nor any wait for the job before it in its FIFO message group (the simulator models that)
        keys = [k for k in ("tenant", "class", "group") if k in ok.columns]
        group_free = ok.groupby(keys, sort=False)["end"].shift(1).fillna(-np.inf).to_numpy(dtype=float)
        ready = np.maximum(ready, group_free)
    receive = ok["start"].to_numpy(dtype=float) - ready
    chained = (free_at > enqueued) & (free_at >= ready)
    return ok, submit, receive, chained


def live_overheads(jobs, chained: bool = True, pickups=None
                   ) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """(submit, receive) samples per class, read off a live replay's jobs alone.

    *submit*: arrival until the router's answer (the job is then in SQS); every class gets all
    classes' samples, because the router does the same work for each (the class only names the
    queue), and a class's share of a probe is too few jobs to pin its median down: with 20-25
    realtime jobs in a 100-job probe, a realtime median moved by about 3 ms between resamples,
    while the three classes' medians over 300 probe jobs were within 0.5 ms of each other.
    *receive*: from when the
    job was in SQS and its worker was free (the end of that worker's previous job) until the worker
    held it -- the empty receives of higher classes, the receive and the start write, without any
    wait for a free worker, nor (when the frame has a ``group`` column) for the job ahead of it in its
    FIFO message group to finish.  ``chained=False`` keeps only the receives of workers that were
    idle (see :func:`turnaround`).  ``pickups``: :func:`_pickups` of ``jobs``, when the caller has it."""
    ok, submit, receive, is_chained = pickups or _pickups(jobs)
    keep = np.ones(len(ok), dtype=bool) if chained else ~is_chained
    return _per_class(submit, ok["class"], pool=True), _per_class(receive[keep], ok["class"].to_numpy()[keep])


def turnaround(jobs, pickups=None) -> float:
    """How much longer a worker takes to hold its next job when it comes straight from finishing one
    than when it was idle (fabric seconds, >= 0; 0 with fewer than ``MIN_CLASS_SAMPLES`` such pickups).

    An idle worker is woken by the arrival and polls at once; a worker that has just finished still
    closes the job it ran (the tail of the delete and the event) before it polls.  Per chained pickup:
    its receive minus the median idle receive of its class; the median of those."""
    extra = _turnarounds(pickups or _pickups(jobs))
    return max(0.0, float(np.median(extra))) if len(extra) >= MIN_CLASS_SAMPLES else 0.0


def turnaround_samples(jobs, pickups=None) -> tuple[float, ...] | None:
    """Every chained pickup's turnaround (as :func:`turnaround` reads them, clipped at 0), sorted; None
    with fewer than ``MIN_CLASS_SAMPLES``.  They spread far beyond their median (over six steady-40k
    runs: median 9-12 ms, 90th percentile about 30 ms, up to 77 ms)."""
    extra = _turnarounds(pickups or _pickups(jobs))
    return tuple(float(x) for x in np.sort(np.clip(extra, 0.0, None))) if len(extra) >= MIN_CLASS_SAMPLES else None


def _turnarounds(pickups) -> list[float]:
    ok, _, receive, is_chained = pickups
    classes = ok["class"].to_numpy()
    extra: list[float] = []
    for c in PRIORITY_ORDER:
        idle = receive[(classes == c) & ~is_chained]
        if len(idle):
            extra.extend(receive[(classes == c) & is_chained] - np.median(idle))
    return extra


def probe_scenario(scenario: Scenario, cfg: FabricConfig, jobs: int, gap_s: float, seed_offset: int = 1) -> Scenario:
    """The scenario's first tenant and mix, one arrival every ``gap_s`` on average, nothing else."""
    tenant = (scenario.tenants or (cfg.tenants[0].id,))[0]
    live = scenario.live or LiveSpec()
    return Scenario(name=f"{scenario.name}-probe", description="pipeline overhead probe", duration_h=jobs * gap_s / 3600,
                    seed=scenario.seed + seed_offset, tenants=(tenant,), config=dict(scenario.config),
                    traffic=TrafficSpec(per_day=86400 / gap_s, mix=dict(scenario.traffic.mix)),
                    live=LiveSpec(time_scale=live.time_scale, drain_wall_s=live.drain_wall_s,
                                  sample_wall_s=live.sample_wall_s))


class OverheadProbe:
    """Measures the live pipeline's overheads in ``slices`` short probes, run when :meth:`run_slice` is called.

    This machine's speed drifts by 10-15 % over minutes (in one replay the same pipeline's median
    submit time was 35 ms in one quarter of a live run and 47 ms in another), so a probe run once,
    before the live runs it stands for, measured them about 8 % too fast.  Run in slices between
    the live runs, the probe samples the same stretch of time as they do.  Each slice has other
    arrivals (its own seed), never those of the compared run.

    The probe runs at the scenario's own mean rate per tenant (the pipeline's overheads grow with
    the CPU the rest of the load takes), or, for a lighter scenario, one arrival every four mean
    service times, so that it stays short.  Submit and receive times are measured per job
    (:func:`live_overheads`); the completion is the median live service time beyond the simulated
    one on the same draws.
    """

    def __init__(self, scenario: Scenario, cfg: FabricConfig, jobs: int = 200, slices: int = 1, progress=None):
        from .sim_mode import run_sim

        self.scenario, self.cfg, self.progress = scenario, cfg, progress
        self.per_slice = max(MIN_SLICE_JOBS, -(-jobs // max(1, slices)))
        self.time_scale = (scenario.live or LiveSpec()).time_scale  # the probe's, as probe_scenario sets it
        first = run_sim(probe_scenario(scenario, cfg, jobs, 60.0), cfg)
        mean_service = float(np.nanmean(first.jobs["service"])) if len(first.jobs) else 1.0
        gap = max(2.0, 4 * mean_service)
        if scenario.traffic.per_day:
            gap = min(gap, 86400 / (scenario.traffic.per_day / max(1, len(scenario.tenants or cfg.tenants))))
        self.gap_s = gap
        self._live: list = []
        self._sim: list = []

    def run_slice(self) -> None:
        """Replay the next slice live (and on the simulator, for the completion time)."""
        from .live import run_live
        from .sim_mode import run_sim

        k = len(self._live)
        probe = probe_scenario(self.scenario, self.cfg, self.per_slice, self.gap_s, seed_offset=1 + k)
        self._sim.append(run_sim(probe, self.cfg).jobs)
        self._live.append(run_live(probe, self.cfg, progress=self.progress).jobs)

    def result(self) -> PipelineOverheads:
        """The overheads over every slice run so far (running one if none was)."""
        import pandas as pd

        if not self._live:
            self.run_slice()
        return measured_overheads(pooled(self._live), pd.concat(self._sim, ignore_index=True), self.time_scale,
                                  slices=len(self._live))


MIN_SLICE_JOBS = 40


def measured_overheads(live, sim, time_scale: float, slices: int = 1) -> PipelineOverheads:
    """The overheads a live jobs frame shows: submit and receive times per job (:func:`live_overheads`,
    idle pickups), the turnaround, and the completion (median live service time beyond the median
    simulated one of ``sim``, the simulator's jobs frame on the same arrivals and service draws)."""
    s_ok = sim[sim["status"] == "ok"]
    l_ok = live[live["status"] == "ok"]
    if len(l_ok) == 0 or len(s_ok) == 0:
        return PipelineOverheads(0.0, 0, time_scale)
    completion = max(0.0, float(np.median(l_ok["service"]) - np.median(s_ok["service"])))
    pk = _pickups(live)  # read once, for every time below
    submit, receive = live_overheads(live, chained=False, pickups=pk)
    return PipelineOverheads(completion, int(min(len(l_ok), len(s_ok))), time_scale, submit, receive,
                             turnaround(live, pk), rank_pairs=rank_pairs(live, submit, receive, pk),
                             turnaround_samples=turnaround_samples(live, pk), slices=slices)


def rank_pairs(jobs, submit_samples, receive_samples, pickups=None) -> tuple[tuple[float, float], ...] | None:
    """Per idle pickup, the mid-rank in (0, 1) of its submit time among ``submit_samples`` of its class and
    of its receive time among ``receive_samples`` of its class (as :func:`live_overheads` gives them).

    Live, the two move together: a moment when the machine is slow slows the router's answer and the
    worker's receive alike (rank correlation +0.35 to +0.53 over six steady-40k runs), so drawing
    them independently thins the tail of the wait.  None with fewer than ``MIN_CLASS_SAMPLES`` pickups."""
    ok, submit, receive, is_chained = pickups or _pickups(jobs)
    idle = ~is_chained & ~np.isnan(submit) & ~np.isnan(receive)
    if idle.sum() < MIN_CLASS_SAMPLES:
        return None
    classes = ok["class"].to_numpy()[idle]

    def mid_rank(samples, x: float) -> float:
        s = np.asarray(samples, dtype=float)
        lo, hi = np.searchsorted(s, x, "left"), np.searchsorted(s, x, "right")
        return float(min(max((lo + hi) / 2, 0.5), len(s) - 0.5) / len(s))

    out = []
    for c, sub, rec in zip(classes, np.clip(submit[idle], 0, None), np.clip(receive[idle], 0, None)):
        k = PRIORITY_ORDER.index(c)
        out.append((mid_rank(submit_samples[k], sub), mid_rank(receive_samples[k], rec)))
    return tuple(out)


def pooled(frames):
    """Live jobs frames of separate runs as one: each run's workers and message groups kept apart
    (every run names its workers from 1 again), so no pickup reads as following another run's job."""
    import pandas as pd

    parts = []
    for k, f in enumerate(frames):
        f = f.copy()
        for col in ("worker", "group"):
            if col in f.columns:
                f[col] = f"{k}:" + f[col].astype(str)
        parts.append(f)
    return pd.concat(parts, ignore_index=True)
