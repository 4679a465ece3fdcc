"""A scenario on the live pipeline: the same arrivals, submitted over HTTP to the in-process stack.

The stack runs on the embedded AWS with the no-op ComfyUI engine; each worker
holds a job for its service time drawn exactly as the simulator draws it (the
job table's uniform through :class:`sim.service.ServiceModel`), so the GPU
is the only thing imitated.  Time is compressed by ``live.time_scale``:
arrivals, cold starts, visibility timeouts, the autoscaler's clock and the
service holds all run that many times faster than fabric time, and every
time measured is reported back in fabric seconds.  Only arrivals before
``live.window_h`` are replayed.

Faults are applied to the live fleet: spot notices in the storm window,
crashes, blue/green cutovers, a poisoned workflow (the executor's fault hook
fails it), and a failover that holds submissions until the standby answers.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import httpx
import numpy as np
import pandas as pd

from comfyfab.cloud import Cloud, EmbeddedAws
from comfyfab.config import PRIORITY_ORDER, FabricConfig
from comfyfab.policy import PollPolicy
from pipeline.client import RouterClient
from pipeline.comfy.workflows import txt2img
from pipeline.fleet import FleetManager
from pipeline.queues import message_group_index
from pipeline.stack import Stack
from pipeline.worker import Doorbell, TenantTarget, Worker
from sim.service import ServiceModel

from .errors import ReplayError
from .result import TIMELINE_COLUMNS, ReplayResult
from .schema import BlueGreen, LiveSpec, PoisonJob, RegionFailover, Scenario, SpotStorm, WorkerCrash
from .sim_mode import scenario_tables

POISON_PREFIX = "poison-pill"
MAX_WALL_RATE = 25.0  # submissions per wall second the in-process stack keeps up with on a small machine


def poison_fault(prompt: dict) -> str | None:
    """The executor's fault hook: a workflow saving under the poison prefix always fails."""
    for node in prompt.values():
        if node.get("class_type") == "SaveImage" and str(node["inputs"].get("filename_prefix", "")) == POISON_PREFIX:
            return "poisoned workflow: the sampler crashed"
    return None


def plan_arrivals(scenario: Scenario, cfg: FabricConfig, spec: LiveSpec) -> pd.DataFrame:
    """Jobs to submit: tenant, priority, arrival (fabric s), submit_at (after a failover), service, poison, job_id."""
    window = (spec.window_h or scenario.duration_h) * 3600
    model = ServiceModel()
    parts = []
    for tid, jt in scenario_tables(scenario, cfg).items():
        keep = jt.t < window
        service = np.empty(len(jt))
        for k, key in enumerate(jt.keys):
            m = jt.key == k
            service[m] = model.seconds(cfg.tenant_gpu(tid), key, jt.u[m])
        parts.append(pd.DataFrame({"tenant": tid, "priority": np.array(PRIORITY_ORDER)[jt.cls[keep]],
                                   "arrival": jt.t[keep], "service": service[keep], "poison": False}))
    rows = []
    for f in scenario.faults_of(PoisonJob):
        if f.at_h * 3600 < window:
            for _ in range(f.count):
                rows.append({"tenant": f.tenant or cfg.tenants[0].id, "priority": f.priority, "arrival": f.at_h * 3600,
                             "service": 0.0, "poison": True})
    if rows:
        parts.append(pd.DataFrame(rows))
    df = pd.concat(parts, ignore_index=True).sort_values("arrival", kind="stable", ignore_index=True)
    df["submit_at"] = df["arrival"]
    for f in scenario.faults_of(RegionFailover):
        a = f.at_h * 3600
        b = a + (f.outage_s or cfg.network.failover_s)
        df.loc[(df["arrival"] >= a) & (df["arrival"] < b), "submit_at"] = b
    rng = np.random.default_rng(scenario.seed)
    df["job_id"] = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(len(df))]
    return df


def check_pace(scenario: Scenario, spec: LiveSpec, plan: pd.DataFrame) -> None:
    """Refuse a replay whose busiest minute would outrun the in-process stack (its latencies would be ours)."""
    if plan.empty:
        raise ReplayError(f"scenario {scenario.name}: no arrivals inside the live window")
    minute = np.floor(plan["submit_at"].to_numpy() / 60.0)
    peak = np.bincount(minute.astype(np.int64)).max() / 60.0 * spec.time_scale
    if peak > MAX_WALL_RATE:
        raise ReplayError(
            f"scenario {scenario.name}: live at {spec.time_scale:g}x would submit {peak:.0f} jobs per wall second at "
            f"its peak (at most {MAX_WALL_RATE:g}); lower live.time_scale or window_h (--time-scale, --window-h)")


class LiveReplay:
    """Drives one scenario through a running stack and collects what happened, in fabric time."""

    def __init__(self, scenario: Scenario, cfg: FabricConfig, cloud: Cloud | None = None,
                 progress: Callable[[str], None] | None = None):
        self.scenario, self.cfg, self.cloud = scenario, cfg, cloud
        self.spec = scenario.live or LiveSpec()
        self.ts = self.spec.time_scale
        self.progress = progress
        self.events: list[tuple[float, str, str, dict]] = []
        self.samples: list[dict] = []
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._done = threading.Event()

    def _say(self, msg: str) -> None:
        if self.progress:
            self.progress(msg)

    def fabric(self, mono: float) -> float:
        return (mono - self._t0) * self.ts

    # -- the stack's workers --------------------------------------------------
    def _worker(self, tenant_id: str, name: str, classes: tuple[str, ...] = PRIORITY_ORDER) -> Worker:
        s = self.stack
        tr = s.resources.tenants[tenant_id]
        service = self._service
        return Worker(name=name, tenant_id=tenant_id, cfg=self.cfg, cloud=s.cloud, queues=s.queues, store=s.store,
                      target=TenantTarget(bucket=tr.bucket, key_arn=tr.key_arn),
                      executor_url=s.executor_urls[tenant_id], poll=PollPolicy(classes=classes),
                      time_scale=self.ts, exec_timeout_s=60.0, on_event=self._on_event,
                      service_time=lambda d: service.get(d.job_id, 0.0), doorbell=self.bells[tenant_id])

    def _on_event(self, kind: str, job: str, extra: dict) -> None:
        with self._lock:
            self.events.append((time.monotonic(), kind, job, extra))

    # -- run ----------------------------------------------------------------------
    def run(self, label: str = "") -> ReplayResult:
        t_start = time.perf_counter()
        plan = plan_arrivals(self.scenario, self.cfg, self.spec)
        check_pace(self.scenario, self.spec, plan)
        self._service = dict(zip(plan["job_id"], plan["service"]))
        self.bells = {t.id: Doorbell() for t in self.cfg.tenants}
        own_aws = None
        if self.cloud is None:
            # a replay starts from an empty account (in-process moto modes share state: reset)
            own_aws = EmbeddedAws(self.cfg.region).start()
            own_aws.reset()
        self.stack = Stack(self.cfg, cloud=self.cloud or own_aws.cloud(), engine="noop", fault=poison_fault,
                           time_scale=self.ts, autoscale=False, warm_workers=False, progress=self.progress)
        self._say(f"starting the stack for {self.scenario.name} ({len(plan)} jobs, {self.ts:g}x time)")
        try:
            self.stack.start()
            spot_classes = tuple(self.cfg.fleet.spot.enabled_for)
            self._t0 = time.monotonic()
            self.fleet = FleetManager(
                self.cfg, self.stack.queues, self._worker, time_scale=self.ts, cold_starts=True,
                seed=self.scenario.seed, clock=lambda: self.fabric(time.monotonic()),
                spot_factory=(lambda t, n: self._worker(t, n, spot_classes)) if spot_classes else None)
            self.stack.service.pool_size = self.fleet.pool_size
            self.fleet.start()
            accepted = self._drive(plan)
            self._drain(accepted)
        finally:
            self._done.set()
            if hasattr(self, "fleet"):
                self.fleet.stop(drain_timeout_s=2.0)
            self.stack.stop()
            if own_aws is not None:
                own_aws.stop()
        return self._result(plan, accepted, label, time.perf_counter() - t_start)

    def _drive(self, plan: pd.DataFrame) -> dict[str, tuple[float, int, float]]:
        """Submit every job at its time; start the faults at theirs.

        Returns job id -> (arrival, HTTP status, fabric time the router answered).
        """
        clients = {t.id: RouterClient(self.stack.router_url, self.stack.api_keys[t.id]) for t in self.cfg.tenants}
        accepted: dict[str, tuple[float, int, float]] = {}
        threads = [threading.Thread(target=self._sampler, daemon=True, name="replay-sampler")]
        threads += [threading.Thread(target=self._fault, args=(f,), daemon=True, name=f"fault-{f.kind}")
                    for f in self.scenario.faults if not isinstance(f, (PoisonJob, RegionFailover))]
        for t in threads:
            t.start()

        def submit(row) -> None:
            wf = txt2img("a scenario replay", seed=int(row.Index), steps=1,
                         filename_prefix=POISON_PREFIX if row.poison else "replay")
            try:
                r = clients[row.tenant].submit({"jobId": row.job_id, "priority": row.priority, "resolution": [64, 64],
                                                "seed": int(row.Index), "model": "tiny-sd:1", "workflow": wf})
                code = r.status_code
            except httpx.HTTPError as exc:  # the router did not answer: the job counts as lost
                code = 0
                with self._lock:
                    self.notes.append(f"live: submitting {row.job_id} failed: {type(exc).__name__}: {exc}")
            with self._lock:
                accepted[row.job_id] = (float(row.arrival), code, self.fabric(time.monotonic()))
            if code == 202:
                self.bells[row.tenant].ring()

        with ThreadPoolExecutor(max_workers=6, thread_name_prefix="replay-client") as pool:
            futures = []
            for row in plan.itertuples():
                delay = self._t0 + row.submit_at / self.ts - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(submit, row))
            for fu in futures:
                fu.result()
        for c in clients.values():
            c.close()
        lag = self.fabric(time.monotonic()) - float(plan["submit_at"].max() if len(plan) else 0.0)
        self._say(f"{len(plan)} submissions done ({lag:.1f} fabric s after the last scheduled one)")
        return accepted

    def _drain(self, accepted: dict[str, tuple[float, int, float]]) -> None:
        want = {j for j, (_, code, _) in accepted.items() if code == 202}
        deadline = time.monotonic() + self.spec.drain_wall_s
        while time.monotonic() < deadline:
            with self._lock:
                done = {e[2] for e in self.events if e[1] in ("succeeded", "failed")}
            if want <= done:
                return
            time.sleep(0.05)
        self.notes.append(f"live: {len(want - done)} jobs unfinished after the {self.spec.drain_wall_s:g} s drain")

    def _sampler(self) -> None:
        while not self._done.wait(self.spec.sample_wall_s):
            now = self.fabric(time.monotonic())
            for t in self.cfg.tenants:
                d = self.stack.queues.depths(t.id)
                members = [*self.fleet.pools[t.id], *self.fleet.spot_pools[t.id]]
                self.samples.append({"t": now, "tenant": t.id, **{f"depth_{c}": d[c] for c in PRIORITY_ORDER},
                                     "workers": len(members), "busy": sum(m.worker.busy for m in members)})

    def _sleep_until(self, fabric_s: float) -> bool:
        """False when the replay ended first."""
        return not self._done.wait(max(0.0, self._t0 + fabric_s / self.ts - time.monotonic()))

    def _fault(self, f) -> None:
        if not self._sleep_until(f.at_h * 3600):
            return
        tenants = [f.tenant] if getattr(f, "tenant", None) else [t.id for t in self.cfg.tenants]
        if isinstance(f, WorkerCrash):
            for tid in tenants:
                names = self.fleet.crash(tid, f.count)
                self._say(f"crash: {', '.join(names)}")
        elif isinstance(f, BlueGreen):
            for tid in tenants:
                self._say(f"blue/green: {tid} to {f.version}")
                self.fleet.cutover(tid, f.version)
        elif isinstance(f, SpotStorm):
            rng = np.random.default_rng(self.scenario.seed + 1)
            end = (f.at_h + f.duration_h) * 3600
            step = self.spec.sample_wall_s
            while self.fabric(time.monotonic()) < end and not self._done.wait(step):
                p = f.interruptions_per_hour / 3600 * step * self.ts
                for tid in tenants:
                    for m in list(self.fleet.spot_pools[tid]):
                        if rng.random() < p:
                            self.fleet.interrupt(tid, m.worker.name)

    # -- results ------------------------------------------------------------------
    def _result(self, plan: pd.DataFrame, accepted: dict, label: str, wall_s: float) -> ReplayResult:
        start: dict[str, float] = {}
        worker: dict[str, str] = {}
        end: dict[str, tuple[float, str]] = {}
        redeliveries = {t.id: 0 for t in self.cfg.tenants}
        for mono, kind, job, extra in self.events:
            if kind == "started":
                start[job] = self.fabric(mono)
                worker[job] = str(extra.get("worker", ""))
                redeliveries[extra["tenant"]] += int(extra.get("attempt", 1) > 1)
            elif kind in ("succeeded", "failed"):
                end[job] = (self.fabric(mono), "ok" if kind == "succeeded" else "dlq")
        rows = []
        rejected = 0
        for r in plan.itertuples():
            arrival, code, enqueued = accepted.get(r.job_id, (float(r.arrival), 0, np.nan))
            if code != 202:
                rejected += 1
            e, status = end.get(r.job_id, (np.nan, "unfinished"))
            s = start.get(r.job_id, np.nan)
            rows.append({"tenant": r.tenant, "class": r.priority, "arrival": arrival, "start": s, "end": e,
                         "service": e - s if status == "ok" else np.nan, "status": status, "enqueued": enqueued,
                         "worker": worker.get(r.job_id, ""), "job_id": r.job_id,
                         "group": message_group_index(r.job_id, self.cfg.queues.message_groups)})
        if rejected:
            self.notes.append(f"live: the router refused {rejected} submissions (counted as lost)")
        counters = {tid: {k: float(v) for k, v in c.items()} for tid, c in self.fleet.counters.items()}
        for tid, c in counters.items():
            c["redeliveries"] = float(redeliveries[tid])
        first = self.cfg.tenants[0].id
        for cut in self.fleet.cutovers:
            if not cut["ok"]:
                self.notes.append(f"live: cutover of {cut['tenant']} failed its health check")
                counters[cut["tenant"]]["cutover_s"] = float("inf")
            else:
                self.notes.append(f"live: cutover of {cut['tenant']} to {cut['version']}: green ready after "
                                  f"{cut['green_ready_s']:.1f} s, blue stopped at {cut['cutover_s']:.1f} s "
                                  f"(seed: < 90 s)")
        if any(isinstance(f, BlueGreen) for f in self.scenario.faults) and not self.fleet.cutovers:
            self.notes.append("live: the cutover had not finished when the replay ended")
            for f in self.scenario.faults_of(BlueGreen):
                counters[f.tenant or first]["cutover_s"] = float("inf")
        timeline = pd.DataFrame(self.samples, columns=list(TIMELINE_COLUMNS))
        return ReplayResult(scenario=self.scenario, mode="live", cfg=self.cfg, jobs=pd.DataFrame(rows),
                            timeline=timeline, counters=counters, wall_s=wall_s, notes=self.notes, label=label)


def run_live(scenario: Scenario, cfg: FabricConfig, cloud: Cloud | None = None, label: str = "",
             progress: Callable[[str], None] | None = None) -> ReplayResult:
    """Replay ``scenario`` on the in-process pipeline (a fresh embedded AWS unless ``cloud`` is given)."""
    try:
        return LiveReplay(scenario, cfg, cloud, progress).run(label)
    except ReplayError:
        raise
    except (OSError, RuntimeError) as exc:
        raise ReplayError(f"live replay of {scenario.name} failed: {type(exc).__name__}: {exc}") from exc
