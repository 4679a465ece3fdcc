"""Decisions shared by the live fleet and the simulator: one policy, two clocks.

A policy is a plain object.  It is given what the caller observed (a time, a
queue depth, the workers it has) and returns a decision; the caller applies
it -- the live fleet manager by starting and stopping worker threads, the
simulator by scheduling events.  Neither the policy nor its decisions know
which clock is running, so the twin cannot drift from the system it models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .config import PRIORITY_ORDER, AutoscalingConfig, FabricConfig


@dataclass(frozen=True)
class WorkerView:
    """What the autoscaler needs to know of one worker."""

    id: str
    busy: bool
    idle_since: float | None = None  # time it last became idle; None while busy or starting
    starting: bool = False           # still in its cold start


@dataclass(frozen=True)
class ScaleDecision:
    """Start ``add`` workers and stop the workers named in ``stop``."""

    add: int = 0
    stop: tuple[str, ...] = ()
    reason: str = ""

    @property
    def noop(self) -> bool:
        return self.add == 0 and not self.stop


@dataclass
class AutoscalePolicy:
    """The case study's autoscaler for one tenant's pool.

    * keep ``min_workers`` always on (the warm pool);
    * when the visible queue depth exceeds ``threshold``, add ``step`` workers,
      at most once per ``interval_s``, up to ``max_workers`` (starting workers count);
      with ``count_starting``, workers still in their cold start are capacity on its way:
      a scale-out adds only the part of ``step`` they do not cover, and none while they cover it
      (without it, a cold start longer than ``interval_s`` keeps adding workers the depth
      has already asked for);
    * stop workers beyond the minimum once idle for ``idle_stop_s``.
    """

    min_workers: int
    max_workers: int
    threshold: int = 10
    step: int = 2
    interval_s: float = 30.0
    idle_stop_s: float = 300.0
    count_starting: bool = False
    last_scale_out: float | None = field(default=None)

    @classmethod
    def from_config(cls, cfg: FabricConfig, tenant_id: str) -> "AutoscalePolicy":
        a: AutoscalingConfig = cfg.fleet.autoscaling
        max_w = cfg.tenant_max_workers(tenant_id)
        return cls(min_workers=min(cfg.fleet.warm_realtime_workers, max_w), max_workers=max_w,
                   threshold=a.queue_depth_threshold, step=a.step, interval_s=a.interval_s,
                   idle_stop_s=a.idle_stop_s, count_starting=a.count_starting)

    def decide(self, now: float, depth: int, workers: Sequence[WorkerView]) -> ScaleDecision:
        n = len(workers)
        if n < self.min_workers:
            return ScaleDecision(add=self.min_workers - n, reason="warm pool below minimum")
        if depth > self.threshold and n < self.max_workers:
            if self.last_scale_out is None or now - self.last_scale_out >= self.interval_s:
                add = min(self.step, self.max_workers - n)
                if self.count_starting:
                    starting = sum(1 for w in workers if w.starting)
                    add = max(0, add - starting)
                    if add == 0:  # the cooldown is not taken: the next check may add once they are up
                        return ScaleDecision(reason=f"depth {depth} > {self.threshold}, {starting} still starting")
                self.last_scale_out = now
                return ScaleDecision(add=add, reason=f"depth {depth} > {self.threshold}")
            return ScaleDecision(reason="scale-out cooling down")
        if depth == 0:
            idle = sorted(
                (w for w in workers if not w.busy and not w.starting and w.idle_since is not None
                 and now - w.idle_since >= self.idle_stop_s),
                key=lambda w: (w.idle_since, w.id))
            surplus = n - self.min_workers
            if surplus > 0 and idle:
                victims = tuple(w.id for w in idle[:surplus])
                return ScaleDecision(stop=victims, reason=f"idle ≥ {self.idle_stop_s:g}s")
        return ScaleDecision()

    def next_check(self, now: float) -> float:
        """When the caller should ask again (both clocks use the same cadence)."""
        return now + min(self.interval_s, self.idle_stop_s) / 3


@dataclass(frozen=True)
class PollPolicy:
    """Which queues a worker polls, in what order: strict priority by default.

    ``classes`` is the subset of classes the worker serves (spot workers serve
    batch only); ``order`` returns them realtime first.
    """

    classes: tuple[str, ...] = PRIORITY_ORDER

    def order(self) -> tuple[str, ...]:
        return tuple(c for c in PRIORITY_ORDER if c in self.classes)

    def idle_class(self, slot: int) -> str:
        """The class an idle worker long-polls once every queue it serves answered empty.

        An SQS long poll waits on one queue.  Were every idle worker to wait on
        realtime, a standard or batch job reaching an idle pool would wait until
        one of those polls ran out (``long_poll_s`` over the number of idle
        workers, plus one, on average).  So idle workers spread over the
        classes by ``slot``, their place in the pool, realtime first: slot 0
        realtime, 1 standard, 2 batch, 3 realtime again.  With at least as many
        idle workers as classes a job of any class meets a waiting receive; a
        pool of one keeps its wait on realtime.  The simulator hands an idle
        worker its job at once, which is what the spread comes close to.
        """
        order = self.order()
        return order[slot % len(order)]

    def pick(self, depths: dict[str, int]) -> str | None:
        """The class to serve next given visible depths, or None when all are empty."""
        for c in self.order():
            if depths.get(c, 0) > 0:
                return c
        return None


def total_depth(depths: Iterable[int]) -> int:
    return sum(depths)
