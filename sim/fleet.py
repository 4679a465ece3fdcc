"""One tenant's fleet: three class queues, worker pools, the autoscaler, spot.

What is modelled, per tenant (tenants share nothing, so each runs alone):

* three SQS queues, realtime / standard / batch.  A worker that frees up
  polls them in the order :class:`comfyfab.policy.PollPolicy` gives (strict
  priority) and takes the head of the first non-empty one; an idle worker
  long-polls, so an arrival is received at once;
* visibility timeouts: with heartbeats on (the live worker's default) a
  job longer than its class's timeout is extended and never redelivered.
  With heartbeats off, a job whose service exceeds the timeout becomes
  visible again at receive + timeout (the first worker's result is lost:
  its delete fails), is received again with a fresh service draw, and
  after ``max_receive_count`` receives goes to the DLQ instead;
* an on-demand pool (its first ``warm_realtime_workers`` are warm at t=0
  and billed at the reserved rate) serving all classes, and a spot pool
  serving the classes in ``fleet.spot.enabled_for`` only.  Each pool has
  its own :class:`comfyfab.policy.AutoscalePolicy` watching the depth of
  the classes it is scaled for (on-demand: the non-spot classes; spot:
  the spot classes).  Its decisions are applied as they are: added workers
  cold-start (uniform on ``fleet.cold_start`` or a calibrated profile), stopped ones leave.  The
  two pools together never exceed the tenant's ``max_workers``;
* spot interruptions: Poisson per spot worker; at the notice the worker
  takes no new job, and a job still running at the interruption is
  released and received again (nothing is lost);
* SQS FIFO message groups (``FleetOptions.message_groups``, the config's
  ``queues.message_groups``): a queued job whose group has a job in flight
  in the same queue (received, not yet deleted) is skipped until that one
  is done, as FIFO queues do; a worker takes the first receivable job.
  When a job's group frees and the worker that finished it takes another
  job, an idle worker takes the freed one at once (the live worker finds
  it at its next poll);
* the autoscaler is asked on its own cadence (``next_check``).  While a
  pool sits at its minimum with depth at or under the threshold the
  policy cannot act, so those calls are skipped and the pool is woken on
  the same grid when the depth crosses the threshold; a test checks the
  skip against the policy itself.

Speed: arrivals come from a sorted array, so a job costs one heap push and
one pop (its completion); everything else is rare and handled in
:meth:`TenantFleet._rare`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from heapq import heapify, heappop, heappush
from typing import Callable

import numpy as np

from comfyfab.config import PRIORITY_ORDER, FabricConfig
from comfyfab.policy import AutoscalePolicy, PollPolicy

from .core import EventLoop
from .state import DLQ, INF, OK, UNFINISHED, FleetOptions, Pool, TenantRun, Worker
from .service import ServiceModel, cold_start_seconds
from .workload import COLD_START, DISPATCH, GROUP, RECEIVE, RETRY, SPOT, TURNAROUND, JobTable, component_rng

DONE, WASTED, READY, TICK, SAMPLE, EXPIRE, NOTICE, INTERRUPT = range(8)
CHUNK = 1 << 16
TICK_PRIORITY = 3  # after completions (0), other events (1) and samples (2) at the same instant


def _class_index(names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(PRIORITY_ORDER.index(c) for c in names)


class TenantFleet:
    """Simulates one tenant's queues and pools over a :class:`JobTable`."""

    def __init__(self, cfg: FabricConfig, tenant: str, jobs: JobTable, service: ServiceModel,
                 options: FleetOptions = FleetOptions(), seed: int = 0, rep: int = 0,
                 progress: Callable[[int], None] | None = None) -> None:
        self.cfg, self.tenant, self.jobs, self.options = cfg, tenant, jobs, options
        self.progress = progress
        self.gpu = cfg.tenant_gpu(tenant)
        self.service = service
        ti = [t.id for t in cfg.tenants].index(tenant)
        self._seed = (seed, rep, ti)
        self.rng_spot = component_rng(seed, rep, SPOT, ti)
        self.rng_retry = component_rng(seed, rep, RETRY, ti)
        self.loop = EventLoop()
        self.queues: list[deque] = [deque(), deque(), deque()]
        self.vt = [c.visibility_timeout_s for c in cfg.queues.classes]
        self.max_recv = [c.max_receive_count for c in cfg.queues.classes]
        self.cap = cfg.tenant_max_workers(tenant)
        self.recv: dict[int, int] = {}   # prior receives of jobs that were received before
        self.redeliveries = self.interruptions = self.decisions = 0
        self.samples: list[tuple] = []
        self.arrived = self.finished = self.dead = self.slow_receives = 0
        self._build_pools()
        n = len(jobs)
        svc = np.empty(n)
        for k, key in enumerate(jobs.keys):
            m = jobs.key == k
            svc[m] = service.seconds(self.gpu, key, jobs.u[m])
        if options.completion_s:
            svc += options.completion_s  # the worker is busy until its result is stored
        rcv = self._draw(options.receive_samples, RECEIVE)
        if rcv is not None:
            svc += rcv  # ... and from the moment it is free until it holds its next job
        self.rcv: list[float] = rcv.tolist() if rcv is not None else [0.0] * n
        self.rcv0 = tuple(self.rcv)  # each job's drawn receive, before any turnaround
        # each job's turnaround, added if its pickup is chained: drawn from the samples, or the constant
        if options.turnaround_samples:
            u = component_rng(seed, rep, TURNAROUND, ti, draw=options.dispatch_draw).random(n)
            vals = np.asarray(options.turnaround_samples, dtype=float)
            self.trn: list[float] = vals[np.minimum((u * len(vals)).astype(int), len(vals) - 1)].tolist()
        else:
            self.trn = [options.turnaround_s] * n
        # message groups: gk[j] indexes held[] by (class, group); held counts receives in flight
        groups = self.groups = options.message_groups
        self.grouped = groups is not None
        self.gk: list[int] = []
        self.held: list[int] = []
        if groups is not None:
            grp = jobs.group if jobs.group is not None else \
                component_rng(seed, rep, GROUP, ti).integers(0, groups, n)
            self.gk = (jobs.cls.astype(np.int64) * groups + np.asarray(grp, dtype=np.int64) % groups).tolist()
            self.held = [0] * (3 * groups)
        self.svc: list[float] = svc.tolist()
        self.start: list[float] = [math.nan] * n
        self.end: list[float] = [math.nan] * n
        self.status = bytearray([UNFINISHED]) * n

    # -- setup -------------------------------------------------------------
    def _build_pools(self) -> None:
        spot_names = tuple(c for c in PRIORITY_ORDER if c in self.cfg.fleet.spot.enabled_for) \
            if self.options.spot else ()
        od_depth = tuple(c for c in PRIORITY_ORDER if c not in spot_names) or PRIORITY_ORDER
        od_policy = AutoscalePolicy.from_config(self.cfg, self.tenant)
        self.pools: dict[str, Pool] = {}
        self.pools["on_demand"] = Pool("on_demand", False, od_policy,
                                       _class_index(PollPolicy().order()), _class_index(od_depth))
        if spot_names:
            sp = dataclasses.replace(od_policy, min_workers=0)  # the same rule from zero, as the live fleet's
            self.pools["spot"] = Pool("spot", True, sp, _class_index(PollPolicy(classes=spot_names).order()),
                                      _class_index(spot_names))
        seed, rep, ti = self._seed
        for k, p in enumerate(self.pools.values()):
            p.cadence = p.policy.next_check(0.0)
            p.order = k
            p.rng_cold = component_rng(seed, rep, COLD_START, 2 * ti + k)
        # idle workers that can take an arrival of class c, cheapest first
        self.idle_for = [tuple(p.idle for p in sorted(self.pools.values(), key=lambda p: not p.spot)
                               if c in p.serve) for c in range(3)]
        self.wake_for = [tuple(p for p in self.pools.values() if c in p.depth_classes) for c in range(3)]
        od = self.pools["on_demand"]
        for _ in range(od.policy.min_workers):
            self._new_worker(od, 0.0, warm=True)

    def _new_worker(self, pool: Pool, now: float, warm: bool) -> Worker:
        pool.added += 1
        w = Worker(f"{pool.name}-{pool.added}", pool, tuple(self.queues[c] for c in pool.serve), now,
                   starting=not warm)
        pool.workers.append(w)
        pool.peak = max(pool.peak, len(pool.workers))
        if warm:
            pool.idle.append(w)
        else:
            pool.cold_starts += 1
            cs = cold_start_seconds(self.cfg.fleet.cold_start, pool.rng_cold.random(), self.service.cold_starts)
            self.loop.schedule(now + float(cs), READY, w, priority=0)
        if pool.spot:
            rate = self.cfg.fleet.spot.interruptions_per_hour / 3600.0
            if rate > 0:
                w.t_int = now + self.rng_spot.exponential(1 / rate)
                if w.t_int < self.jobs.horizon_s + 86400:
                    self.loop.schedule(max(now, w.t_int - self.cfg.fleet.spot.notice_s), NOTICE, w)
        return w

    # -- the run -----------------------------------------------------------
    def run(self) -> TenantRun:
        # A job becomes receivable its dispatch time after it arrives; waits still count from the arrival.
        # Drawn dispatch times can reorder jobs: ``order`` lists them as they become receivable.
        ready = self.jobs.t + self._dispatch()
        order_np = np.argsort(ready, kind="stable")
        arr: list[float] = ready[order_np].tolist()
        order: list[int] = order_np.tolist()
        cls: list[int] = self.jobs.cls.tolist()
        n = len(arr)
        heap = self.loop.heap
        seqc = self.loop._seq
        svc, start, end, status, rcv = self.svc, self.start, self.end, self.status, self.rcv
        queues, idle_for, wake_for = self.queues, self.idle_for, self.wake_for
        hb_off = not self.options.heartbeats
        autoscale = self.options.autoscale
        vt = self.vt
        trn = self.trn
        rare = self._rare
        grouped, gk, held, pop = self.grouped, self.gk, self.held, self._pop
        for p in self.pools.values():
            if autoscale:
                self._schedule_tick(p, 0.0)
        if self.options.sample_s > 0:
            self.loop.schedule(0.0, SAMPLE, None, priority=2)
        done = received = 0
        i = 0
        t = 0.0
        while i < n:
            bound = min(n, i + CHUNK)
            next_arr = arr[i]
            while i < bound:
                if heap and heap[0][0] <= next_arr:
                    t, _, _, kind, w = heappop(heap)
                    if kind <= WASTED:
                        freed = -1
                        if kind == DONE:
                            j = w.job
                            end[j] = t
                            status[j] = OK
                            done += 1
                            if grouped:
                                freed = gk[j]
                                held[freed] -= 1
                        for q in w.queues:
                            if q:
                                j = pop(q) if grouped else q.popleft()
                                if j < 0:
                                    continue
                                if grouped:
                                    held[gk[j]] += 1
                                turn = trn[j]
                                if turn:
                                    svc[j] += turn
                                    rcv[j] += turn
                                s = svc[j]
                                if hb_off and s > vt[cls[j]]:
                                    self._start_doomed(w, j, t)
                                    break
                                start[j] = t + rcv[j]
                                w.job = j
                                w.busy_s += s
                                heappush(heap, (t + s, 0, next(seqc), DONE, w))
                                received += 1
                                break
                        else:
                            w.job = -1
                            w.idle_since = t
                            if w.queues:
                                w.pool.idle.append(w)
                            else:
                                self._stop(w, t)
                        if freed >= 0 and queues[freed // self.groups]:
                            self._offer(freed // self.groups, t)
                    else:
                        self.arrived, self.finished = i, done + self.dead
                        rare(kind, t, w)
                else:
                    t = next_arr
                    j = order[i]
                    i += 1
                    next_arr = arr[i] if i < bound else INF
                    c = cls[j]
                    for idle in () if grouped and held[gk[j]] else idle_for[c]:
                        if idle:
                            w = idle.pop()
                            if grouped:
                                held[gk[j]] += 1
                            s = svc[j]
                            if hb_off and s > vt[c]:
                                self._start_doomed(w, j, t)
                                break
                            start[j] = t + rcv[j]
                            w.job = j
                            w.busy_s += s
                            heappush(heap, (t + s, 0, next(seqc), DONE, w))
                            received += 1
                            break
                    else:
                        queues[c].append(j)
                        if autoscale:
                            for p in wake_for[c]:
                                if not p.ticking:
                                    self._maybe_wake(p, t)
            if self.progress is not None:
                self.progress(bound)
        # drain: no more arrivals; run until every job is done or in the DLQ
        self.arrived = n
        while heap and done + self.dead < n:
            t, _, _, kind, w = heappop(heap)
            if kind <= WASTED:
                freed = -1
                if kind == DONE:
                    j = w.job
                    end[j] = t
                    status[j] = OK
                    done += 1
                    if grouped:
                        freed = gk[j]
                        held[freed] -= 1
                self._take_next(w, t)
                if freed >= 0 and queues[freed // self.groups]:
                    self._offer(freed // self.groups, t)
            else:
                self.finished = done + self.dead
                rare(kind, t, w)
        return self._result(max(t, self.jobs.horizon_s), received + self.slow_receives)

    def _dispatch(self) -> np.ndarray | float:
        """Each job's dispatch time: drawn from its class's measured samples, or the constant."""
        drawn = self._draw(self.options.dispatch_samples, DISPATCH)
        return self.options.dispatch_s if drawn is None else drawn

    def _draw(self, samples: tuple[tuple[float, ...], ...] | None, component: int) -> np.ndarray | None:
        """One draw per job from its class's samples (the component's own stream); None without samples."""
        if samples is None:
            return None
        seed, rep, ti = self._seed
        ranks = self.options.overhead_ranks
        if ranks is None:
            u = component_rng(seed, rep, component, ti, draw=self.options.dispatch_draw).random(len(self.jobs))
        else:  # one measured pair per job, the same pair for its dispatch and its receive
            k = component_rng(seed, rep, DISPATCH, ti, draw=self.options.dispatch_draw).integers(
                0, len(ranks), len(self.jobs))
            u = np.asarray(ranks, dtype=float)[k, 0 if component == DISPATCH else 1]
        out = np.empty(len(self.jobs))
        for c, values in enumerate(samples):
            m = self.jobs.cls == c
            vals = np.asarray(values, dtype=float)
            out[m] = vals[np.minimum((u[m] * len(vals)).astype(int), len(vals) - 1)]
        return out

    # -- rare paths ----------------------------------------------------------
    def _begin(self, w: Worker, j: int, t: float, chained: bool = False) -> None:
        """Start job ``j`` on ``w`` (the slow path's copy of the inline start); ``chained``: ``w`` comes
        straight from finishing another job."""
        if chained and self.trn[j]:
            self.svc[j] += self.trn[j]
            self.rcv[j] += self.trn[j]
        s = self.svc[j]
        if not self.options.heartbeats and s > self.vt[int(self.jobs.cls[j])]:
            self._start_doomed(w, j, t)
            return
        self.start[j] = t + self.rcv[j]
        self.slow_receives += 1
        w.job = j
        w.busy_s += s
        heappush(self.loop.heap, (t + s, 0, self.loop.next_seq(), DONE, w))

    def _start_doomed(self, w: Worker, j: int, t: float) -> None:
        """Heartbeats off and service beyond the visibility timeout: the receive will expire."""
        s = self.svc[j]
        c = int(self.jobs.cls[j])
        self.start[j] = t + self.rcv[j]
        self.slow_receives += 1
        w.job = j
        w.busy_s += s
        heappush(self.loop.heap, (t + s, 0, self.loop.next_seq(), WASTED, w))
        self.loop.schedule(t + self.vt[c], EXPIRE, j, priority=0)

    def _pop(self, q: deque) -> int:
        """Receive from ``q``: its first job whose message group has nothing in flight (removed), or -1."""
        held, gk = self.held, self.gk
        for k, j in enumerate(q):
            if not held[gk[j]]:
                del q[k]
                return j
        return -1

    def _receive(self, q: deque) -> int:
        """The job a receive on ``q`` gets (its group now in flight), or -1."""
        if not self.grouped:
            return q.popleft() if q else -1
        j = self._pop(q)
        if j >= 0:
            self.held[self.gk[j]] += 1
        return j

    def _release(self, j: int) -> None:
        """``j``'s receive ended without completing (expired or released): its group is free again."""
        if self.grouped:
            self.held[self.gk[j]] -= 1

    def _offer(self, c: int, t: float) -> None:
        """Idle workers take class ``c``'s jobs that became receivable (their group freed)."""
        q = self.queues[c]
        for idle in self.idle_for[c]:
            while idle and q:
                j = self._receive(q)
                if j < 0:
                    return
                self._begin(idle.pop(), j, t)

    def _take_next(self, w: Worker, t: float, chained: bool = True) -> None:
        for q in w.queues:
            if q:
                j = self._receive(q)
                if j >= 0:
                    self._begin(w, j, t, chained)
                    return
        w.job = -1
        w.idle_since = t
        if w.queues:
            w.pool.idle.append(w)
        else:
            self._stop(w, t)

    def _redeliver(self, j: int, t: float) -> None:
        """A receive of ``j`` ended without a delete: visible again, or to the DLQ."""
        c = int(self.jobs.cls[j])
        received = self.recv.get(j, 0) + 1
        if received >= self.max_recv[c]:
            self.status[j] = DLQ
            self.end[j] = t
            self.dead += 1
            return
        self.recv[j] = received
        self.redeliveries += 1
        key = self.jobs.keys[int(self.jobs.key[j])]
        # a new attempt: a new execution, the same completion, and the job's drawn receive again (a
        # turnaround is added afresh if the next pickup is chained)
        self.rcv[j] = self.rcv0[j]
        self.svc[j] = (float(self.service.seconds(self.gpu, key, np.array([self.rng_retry.random()]))[0])
                       + self.options.completion_s + self.rcv[j])
        self.queues[c].appendleft(j)
        for idle in self.idle_for[c]:
            if idle:
                k = self._receive(self.queues[c])
                if k >= 0:
                    self._begin(idle.pop(), k, t)
                return
        for p in self.wake_for[c]:
            if self.options.autoscale and not p.ticking:
                self._maybe_wake(p, t)

    def _stop(self, w: Worker, t: float) -> None:
        if w.stopped:
            return
        w.stopped = True
        p = w.pool
        p.workers.remove(w)
        if w in p.idle:
            p.idle.remove(w)
        p.worker_s += t - w.started_at
        p.busy_s += w.busy_s
        p.stopped += 1
        if self.options.autoscale and not p.ticking:
            self._schedule_tick(p, t)

    def _depth(self, p: Pool) -> int:
        return sum(len(self.queues[c]) for c in p.depth_classes)

    def _maybe_wake(self, p: Pool, t: float) -> None:
        if self._depth(p) > p.policy.threshold or len(p.workers) != p.policy.min_workers:
            self._schedule_tick(p, t)

    def _schedule_tick(self, p: Pool, t: float) -> None:
        """Next tick on the pool's grid (multiples of its cadence), after the last one."""
        k = math.ceil(t / p.cadence)
        at = k * p.cadence
        if at <= p.last_tick:
            at = p.last_tick + p.cadence
        p.ticking = True
        self.loop.schedule(max(at, self.loop.now), TICK, p, priority=TICK_PRIORITY + p.order)

    def _tick(self, p: Pool, t: float) -> None:
        p.ticking = False
        p.last_tick = t
        depth = self._depth(p)
        decision = p.policy.decide(t, depth, [w.view() for w in p.workers])
        self.decisions += 1
        if decision.stop:
            byid = {w.id: w for w in p.workers}
            for wid in decision.stop:
                self._stop(byid[wid], t)
        if decision.add:
            total = sum(len(q.workers) for q in self.pools.values())
            for _ in range(max(0, min(decision.add, self.cap - total))):
                self._new_worker(p, t, warm=False)
        quiet = len(p.workers) == p.policy.min_workers and depth <= p.policy.threshold
        if not p.ticking and not (quiet and self.options.skip_quiet_ticks):
            p.ticking = True
            self.loop.schedule(p.policy.next_check(t), TICK, p, priority=TICK_PRIORITY + p.order)

    def _rare(self, kind: int, t: float, arg) -> None:
        self.loop.now = t
        if kind == TICK:
            self._tick(arg, t)
        elif kind == READY:
            w: Worker = arg
            if not w.stopped:
                w.starting = False
                w.idle_since = t
                self._take_next(w, t, chained=False)  # a fresh worker: its first poll
        elif kind == SAMPLE:
            q = self.queues
            busy = sum(1 for p in self.pools.values() for w in p.workers if w.job >= 0)
            sp = self.pools.get("spot")
            self.samples.append((t, len(q[0]), len(q[1]), len(q[2]), len(self.pools["on_demand"].workers),
                                 len(sp.workers) if sp else 0, busy, self.arrived - self.finished))
            nxt = t + self.options.sample_s
            if nxt <= self.jobs.horizon_s:
                self.loop.schedule(nxt, SAMPLE, None, priority=2)
        elif kind == EXPIRE:
            self._release(arg)
            self._redeliver(arg, t)
        elif kind == NOTICE:
            w = arg
            if w.stopped:
                return
            w.queues = ()
            if w.job < 0:
                self._stop(w, t)
            else:
                self.loop.schedule(w.t_int, INTERRUPT, w, priority=0)
        elif kind == INTERRUPT:
            w = arg
            if w.stopped:
                return
            self.interruptions += 1
            heap = self.loop.heap
            doomed = False
            for k, ev in enumerate(heap):
                if ev[4] is w and ev[3] <= WASTED:
                    doomed = ev[3] == WASTED
                    heap[k] = heap[-1]
                    heap.pop()
                    heapify(heap)
                    break
            j, w.job = w.job, -1
            self._stop(w, t)
            if not doomed:  # a doomed receive is redelivered (and its group freed) by its own expiry
                self._release(j)
                self._redeliver(j, t)

    def _result(self, end_s: float, receives: int) -> TenantRun:
        for p in self.pools.values():
            for w in p.workers:
                p.worker_s += end_s - w.started_at
                p.busy_s += w.busy_s
        return TenantRun(
            tenant=self.tenant, gpu=self.gpu.name, arrival=self.jobs.t, cls=self.jobs.cls,
            service=np.asarray(self.svc) - np.asarray(self.rcv),  # execution and completion, not the pickup
            start=np.asarray(self.start), end=np.asarray(self.end),
            status=np.frombuffer(bytes(self.status), dtype=np.uint8), samples=self.samples,
            horizon_s=self.jobs.horizon_s, end_s=end_s, pools=self.pools,
            receives=receives, redeliveries=self.redeliveries,
            interruptions=self.interruptions, decisions=self.decisions)
