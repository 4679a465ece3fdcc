"""The live fleet manager: each tenant's worker pool, sized by the shared autoscaler.

Every ``check`` the manager asks :class:`~comfyfab.policy.AutoscalePolicy`
(the same object the simulator uses) what to do given the tenant's visible
queue depth and its workers, and applies the decision: new workers go
through a cold start (a sleep drawn from the config, divided by
``time_scale``) before they poll; stopped workers drain first.  Policy time is
"fabric time": wall seconds times ``time_scale``, so a scenario of an hour can
run live in a minute with the same policy parameters.

Fleet operations a scenario replay drives, all in fabric time:

* **spot pools** (when a ``spot_factory`` is given): per tenant a second pool
  of workers that serve only ``fleet.spot.enabled_for`` (batch), scaled by
  its own policy (minimum 0) on those classes' depth, like the simulator's;
  the on-demand pool then watches the other classes.  Both pools together
  stay within the tenant's ``max_workers``;
* :meth:`interrupt` -- a spot notice: the worker leaves the pool, stops
  receiving, finishes its job or releases it when the notice runs out;
* :meth:`crash` -- workers die holding their jobs; the warm-pool rule
  replaces them (with a cold start);
* :meth:`cutover` -- blue/green at the queue-consumer level: green workers
  cold-start and pass a health check, then start pulling; blue workers stop
  receiving, drain and stop.  Its duration is recorded as ``cutover_s``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from comfyfab.config import FabricConfig
from comfyfab.policy import AutoscalePolicy, ScaleDecision, WorkerView

from .queues import JobQueues
from .worker import Worker

log = logging.getLogger(__name__)

WorkerFactory = Callable[[str, str], Worker]  # (tenant id, worker name) -> unstarted Worker


@dataclass
class PoolMember:
    worker: Worker
    ready_at: float  # fabric time when its cold start ends
    spot: bool = False

    def view(self, now: float) -> WorkerView:
        w = self.worker
        starting = now < self.ready_at
        idle_since = None if (w.busy or starting) else (w.idle_since_fabric if w.idle_since_fabric is not None else self.ready_at)
        return WorkerView(id=w.name, busy=w.busy, idle_since=idle_since, starting=starting)


@dataclass
class FleetManager:
    """Starts and stops workers per tenant according to the shared policy."""

    cfg: FabricConfig
    queues: JobQueues
    factory: WorkerFactory
    time_scale: float = 1.0
    cold_starts: bool = True
    seed: int = 0
    clock: Callable[[], float] | None = None  # fabric-time source; wall time × time_scale by default
    decisions: list[tuple[float, str, ScaleDecision]] = field(default_factory=list)
    spot_factory: WorkerFactory | None = None  # spot pools for fleet.spot.enabled_for when given
    health_check: Callable[[Worker], bool] = lambda w: w.healthy()
    health_timeout_s: float = 30.0             # fabric seconds a green worker may take to pass it

    def __post_init__(self) -> None:
        self._t0 = time.monotonic()
        self._rng = np.random.default_rng(self.seed)
        self.policies = {t.id: AutoscalePolicy.from_config(self.cfg, t.id) for t in self.cfg.tenants}
        self.pools: dict[str, list[PoolMember]] = {t.id: [] for t in self.cfg.tenants}
        self.spot_classes = tuple(self.cfg.fleet.spot.enabled_for) if self.spot_factory else ()
        self.spot_policies: dict[str, AutoscalePolicy] = {}
        self.spot_pools: dict[str, list[PoolMember]] = {t.id: [] for t in self.cfg.tenants}
        if self.spot_classes:
            for t in self.cfg.tenants:
                self.spot_policies[t.id] = dataclasses.replace(self.policies[t.id], min_workers=0)
        self.versions: dict[str, str] = {t.id: "" for t in self.cfg.tenants}
        self.counters: dict[str, dict[str, float]] = {
            t.id: {"cold_starts": 0, "interruptions": 0, "crashes": 0, "peak_workers": 0}
            for t in self.cfg.tenants}
        self.cutovers: list[dict] = []
        self._cutting: set[str] = set()
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        """Fabric time in seconds."""
        if self.clock is not None:
            return self.clock()
        return (time.monotonic() - self._t0) * self.time_scale

    def pool_size(self, tenant_id: str) -> int:
        return len(self.pools[tenant_id]) + len(self.spot_pools[tenant_id])

    # -- applying decisions ------------------------------------------------
    def _new_worker(self, tenant_id: str, spot: bool) -> Worker:
        name = f"{tenant_id}-{'s' if spot else 'w'}{next(self._names):03d}"
        factory = self.spot_factory if spot and self.spot_factory else self.factory
        w = factory(tenant_id, name)
        w.idle_since_fabric = None
        if self.versions[tenant_id]:
            w.model_version = self.versions[tenant_id]
        return w

    def _cold_start(self) -> float:
        cs = self.cfg.fleet.cold_start
        return float(self._rng.uniform(cs.min_s, cs.max_s)) if self.cold_starts else 0.0

    def _launch(self, tenant_id: str, warm: bool, spot: bool = False) -> None:
        w = self._new_worker(tenant_id, spot)
        pool = (self.spot_pools if spot else self.pools)[tenant_id]
        # the lowest slot no member holds: idle, the pool's workers long-poll different classes
        # (PollPolicy.idle_class), and stay spread after scale-ins
        taken = {m.worker.poll_slot for m in pool}  # every member came in here or by a cutover: it has one
        w.poll_slot = next(i for i in range(len(pool) + 1) if i not in taken)
        cold = 0.0 if warm else self._cold_start()
        if cold:
            self.counters[tenant_id]["cold_starts"] += 1
        member = PoolMember(worker=w, ready_at=self.now() + cold, spot=spot)
        pool.append(member)
        self._peak(tenant_id)
        delay = cold / self.time_scale

        def boot() -> None:
            if delay and self._stop.wait(delay):
                return
            w.idle_since_fabric = self.now()
            w.start()

        threading.Thread(target=boot, daemon=True, name=f"boot-{w.name}").start()

    def _peak(self, tenant_id: str) -> None:
        c = self.counters[tenant_id]
        c["peak_workers"] = max(c["peak_workers"], self.pool_size(tenant_id))

    def apply(self, tenant_id: str, decision: ScaleDecision, warm: bool = False, spot: bool = False) -> None:
        pools = self.spot_pools if spot else self.pools
        with self._lock:
            room = self.cfg.tenant_max_workers(tenant_id) - self.pool_size(tenant_id)
            for _ in range(min(decision.add, room) if self.spot_classes else decision.add):
                self._launch(tenant_id, warm, spot)
            victims = [m for m in pools[tenant_id] if m.worker.name in decision.stop]
            pools[tenant_id] = [m for m in pools[tenant_id] if m.worker.name not in decision.stop]
        for m in victims:
            threading.Thread(target=m.worker.stop, daemon=True, name=f"drain-{m.worker.name}").start()

    def _decide(self, tenant_id: str, policy: AutoscalePolicy, members: list[PoolMember], depth: int,
                now: float, spot: bool) -> None:
        for m in members:
            w = m.worker
            if not w.busy and w.idle_since_fabric is None and now >= m.ready_at and w.alive:
                w.idle_since_fabric = now
            if w.busy:
                w.idle_since_fabric = None
        views = [m.view(now) for m in members]
        decision = policy.decide(now, depth, views)
        if not decision.noop:
            self.decisions.append((now, tenant_id, decision))
            log.info("%s%s at %.1fs: %s", tenant_id, " spot" if spot else "", now, decision)
            self.apply(tenant_id, decision, spot=spot)

    def check(self) -> None:
        now = self.now()
        for tenant_id, policy in self.policies.items():
            if tenant_id in self._cutting:
                continue  # a cutover owns this pool until blue has stopped
            depths = self.queues.depths(tenant_id)
            od_depth = sum(v for c, v in depths.items() if c not in self.spot_classes)
            self._decide(tenant_id, policy, self.pools[tenant_id], od_depth, now, spot=False)
            if self.spot_classes:
                sp_depth = sum(v for c, v in depths.items() if c in self.spot_classes)
                self._decide(tenant_id, self.spot_policies[tenant_id], self.spot_pools[tenant_id], sp_depth,
                             now, spot=True)

    # -- fleet operations ---------------------------------------------------
    def interrupt(self, tenant_id: str, name: str, notice_s: float | None = None) -> bool:
        """A spot interruption notice for one spot worker; False when it is not in the spot pool."""
        with self._lock:
            members = [m for m in self.spot_pools[tenant_id] if m.worker.name == name]
            if not members:
                return False
            self.spot_pools[tenant_id].remove(members[0])
            self.counters[tenant_id]["interruptions"] += 1
        notice = self.cfg.fleet.spot.notice_s if notice_s is None else notice_s
        members[0].worker.interrupt(notice / self.time_scale)
        return True

    def crash(self, tenant_id: str, count: int = 1) -> list[str]:
        """``count`` on-demand workers die (busy ones first); the warm-pool rule replaces them."""
        with self._lock:
            pool = self.pools[tenant_id]
            victims = sorted(pool, key=lambda m: not m.worker.busy)[:count]
            self.pools[tenant_id] = [m for m in pool if m not in victims]
            self.counters[tenant_id]["crashes"] += len(victims)
        for m in victims:
            m.worker.crash()
        return [m.worker.name for m in victims]

    def cutover(self, tenant_id: str, version: str) -> threading.Thread:
        """Blue/green to ``version`` in the background; the record lands in ``cutovers``."""
        t = threading.Thread(target=self._cutover, args=(tenant_id, version), daemon=True,
                             name=f"cutover-{tenant_id}")
        t.start()
        return t

    def _cutover(self, tenant_id: str, version: str) -> None:
        t0 = self.now()
        with self._lock:
            self._cutting.add(tenant_id)
            blue = list(self.pools[tenant_id])
            self.versions[tenant_id] = version
        n = max(len(blue), self.policies[tenant_id].min_workers)
        green = [self._new_worker(tenant_id, spot=False) for _ in range(n)]
        for slot, w in enumerate(green):  # green replaces the whole pool: slots from 0 (PollPolicy.idle_class)
            w.poll_slot = slot
        colds = [self._cold_start() for _ in green]
        self.counters[tenant_id]["cold_starts"] += sum(1 for c in colds if c)
        # Green boots (image pull, checkpoint into VRAM) while blue keeps serving.
        if self._stop.wait(max(colds, default=0.0) / self.time_scale):
            return
        deadline = time.monotonic() + self.health_timeout_s / self.time_scale
        while not all(self.health_check(w) for w in green):
            if time.monotonic() > deadline or self._stop.wait(0.05):
                self._cutting.discard(tenant_id)
                self.cutovers.append({"tenant": tenant_id, "version": version, "start_s": t0, "ok": False})
                log.error("cutover of %s to %s: green failed its health check", tenant_id, version)
                return
        ready = self.now()
        now = self.now()
        c = self.counters[tenant_id]
        c["peak_workers"] = max(c["peak_workers"], self.pool_size(tenant_id) + len(green))  # blue and green overlap
        for w in green:  # green starts pulling from the queues
            w.idle_since_fabric = now
            w.start()
        with self._lock:
            self.pools[tenant_id] = [*(PoolMember(worker=w, ready_at=ready) for w in green),
                                     *(m for m in self.pools[tenant_id] if m not in blue)]
        for m in blue:  # blue stops receiving at once, then each drains its held job
            m.worker.request_stop()
        clean = [m.worker.stop(self.cfg.fleet.drain_timeout_s / self.time_scale) for m in blue]
        end = self.now()
        self._cutting.discard(tenant_id)
        self._peak(tenant_id)
        self.cutovers.append({"tenant": tenant_id, "version": version, "start_s": t0, "green_ready_s": ready - t0,
                              "cutover_s": end - t0, "blue_drained_cleanly": all(clean), "ok": True})
        self.counters[tenant_id]["cutover_s"] = end - t0

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "FleetManager":
        """Start the warm pools at once (models already loaded), then the control loop."""
        for tenant_id, policy in self.policies.items():
            self.apply(tenant_id, ScaleDecision(add=policy.min_workers, reason="warm pool"), warm=True)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fleet")
        self._thread.start()
        return self

    def _loop(self) -> None:
        period = min(p.interval_s for p in self.policies.values()) / 3 / self.time_scale
        while not self._stop.wait(max(0.05, period)):
            try:
                self.check()
            except Exception:  # keep managing the fleet; the failure is logged with its traceback
                log.exception("fleet check failed")

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        workers = self.workers()
        for w in workers:
            w.request_stop()
        for w in workers:
            w.stop(drain_timeout_s)

    def workers(self) -> list[Worker]:
        return [m.worker for pools in (self.pools, self.spot_pools) for pool in pools.values() for m in pool]
