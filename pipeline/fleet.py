"""The live fleet manager: each tenant's worker pool, sized by the shared autoscaler.

Every ``check`` the manager asks :class:`~comfyfab.policy.AutoscalePolicy`
(the same object the simulator uses) what to do given the tenant's visible
queue depth and its workers, and applies the decision: new workers go
through a cold start (a sleep drawn from the config, divided by
``time_scale``) before they poll; stopped workers drain first.  Policy time is
"fabric time": wall seconds times ``time_scale``, so a scenario of an hour can
run live in a minute with the same policy parameters.
"""

from __future__ import annotations

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

    def __post_init__(self) -> None:
        self._t0 = time.monotonic()
        self._rng = np.random.default_rng(self.seed)
        self.policies = {t.id: AutoscalePolicy.from_config(self.cfg, t.id) for t in self.cfg.tenants}
        self.pools: dict[str, list[PoolMember]] = {t.id: [] for t in self.cfg.tenants}
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
        return len(self.pools[tenant_id])

    # -- applying decisions ------------------------------------------------
    def _launch(self, tenant_id: str, warm: bool) -> None:
        name = f"{tenant_id}-w{next(self._names):03d}"
        w = self.factory(tenant_id, name)
        w.idle_since_fabric = None
        cold = 0.0
        if self.cold_starts and not warm:
            cs = self.cfg.fleet.cold_start
            cold = float(self._rng.uniform(cs.min_s, cs.max_s))
        member = PoolMember(worker=w, ready_at=self.now() + cold)
        self.pools[tenant_id].append(member)
        delay = cold / self.time_scale

        def boot() -> None:
            if delay and self._stop.wait(delay):
                return
            w.idle_since_fabric = self.now()
            w.start()

        threading.Thread(target=boot, daemon=True, name=f"boot-{name}").start()

    def apply(self, tenant_id: str, decision: ScaleDecision, warm: bool = False) -> None:
        with self._lock:
            for _ in range(decision.add):
                self._launch(tenant_id, warm)
            victims = [m for m in self.pools[tenant_id] if m.worker.name in decision.stop]
            self.pools[tenant_id] = [m for m in self.pools[tenant_id] if m.worker.name not in decision.stop]
        for m in victims:
            threading.Thread(target=m.worker.stop, daemon=True, name=f"drain-{m.worker.name}").start()

    def check(self) -> None:
        now = self.now()
        for tenant_id, policy in self.policies.items():
            depth = sum(self.queues.depths(tenant_id).values())
            for m in self.pools[tenant_id]:
                w = m.worker
                if not w.busy and w.idle_since_fabric is None and now >= m.ready_at and w.alive:
                    w.idle_since_fabric = now
                if w.busy:
                    w.idle_since_fabric = None
            views = [m.view(now) for m in self.pools[tenant_id]]
            decision = policy.decide(now, depth, views)
            if not decision.noop:
                self.decisions.append((now, tenant_id, decision))
                log.info("%s at %.1fs: %s", tenant_id, now, decision)
                self.apply(tenant_id, decision)

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
        workers = [m.worker for pool in self.pools.values() for m in pool]
        for w in workers:
            w.request_stop()
        for w in workers:
            w.stop(drain_timeout_s)

    def workers(self) -> list[Worker]:
        return [m.worker for pool in self.pools.values() for m in pool]
