"""The fleet model's state: options, workers, pools, and what a run returns.

Kept apart from :mod:`sim.fleet` (the behaviour) so the state can be read
by metrics and plots without the event code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from comfyfab.policy import AutoscalePolicy, WorkerView

OK, DLQ, UNFINISHED = 0, 1, 2
INF = float("inf")


@dataclass(frozen=True)
class FleetOptions:
    """Switches of the fleet model that are not part of the architecture."""

    heartbeats: bool = True
    autoscale: bool = True
    spot: bool = True
    sample_s: float = 60.0
    skip_quiet_ticks: bool = True  # False: ask the policy at every tick (for tests; slower)
    # What the pipeline adds to each job beyond queueing and execution (0 = an ideal pipeline):
    dispatch_s: float = 0.0    # from arrival until a worker can receive it (router, SQS send, receive)
    completion_s: float = 0.0  # after execution until the worker is free (upload, record, delete)
    # Measured dispatch times per class (realtime, standard, batch), fabric seconds: each job's
    # dispatch is drawn from its class's samples (its own random stream) instead of ``dispatch_s``.
    dispatch_samples: tuple[tuple[float, ...], ...] | None = None
    # Measured receive latencies per class, fabric seconds: once a job is receivable and a worker is
    # free, the worker has it this much later (the empty receives of higher classes, the receive, the
    # start write); the worker is busy meanwhile and the job's wait includes it.
    receive_samples: tuple[tuple[float, ...], ...] | None = None
    # A worker that takes its next job straight after finishing one (the job was waiting) holds it this
    # much later than an idle worker would (it still closes the previous job before it polls).
    turnaround_s: float = 0.0
    # Measured turnarounds, fabric seconds (pooled over the classes): with them, each job's turnaround,
    # should its pickup be chained, is drawn from these (its own random stream) instead of ``turnaround_s``.
    turnaround_samples: tuple[float, ...] | None = None
    # Measured (submit, receive) rank pairs in (0, 1), one per probe pickup: each job draws one pair and
    # takes its dispatch at the first rank of its class's dispatch samples and its receive at the second
    # of its class's receive samples -- the same marginals, but together as they happen live, where a
    # slow moment of the machine slows both (an empirical copula).  None: drawn independently.
    overhead_ranks: tuple[tuple[float, float], ...] | None = None
    dispatch_draw: int = 0  # another independent draw of the overheads alone (same arrivals, services)
    # SQS FIFO message groups per queue (``queues.message_groups``): a job is not receivable while
    # another job of its group in the same queue is in flight (received, not yet deleted).  None:
    # an ideal queue, where any queued job can be received (queueing theory's model).
    message_groups: int | None = None

    def __post_init__(self) -> None:
        for name in ("dispatch_samples", "receive_samples"):
            samples = getattr(self, name)
            if samples is None:
                continue
            if len(samples) != 3 or not all(samples):
                raise ValueError(f"{name} needs a non-empty tuple of samples for each of the 3 classes")
            if min(min(c) for c in samples) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.overhead_ranks is not None and (not self.overhead_ranks or not all(
                len(p) == 2 and 0.0 <= p[0] < 1.0 and 0.0 <= p[1] < 1.0 for p in self.overhead_ranks)):
            raise ValueError("overhead_ranks needs (submit, receive) pairs of ranks in [0, 1)")
        if self.turnaround_samples is not None and (not self.turnaround_samples or min(self.turnaround_samples) < 0):
            raise ValueError("turnaround_samples needs non-negative samples")
        if self.turnaround_s < 0:
            raise ValueError("turnaround_s must not be negative")
        if self.message_groups is not None and self.message_groups < 1:
            raise ValueError("message_groups must be at least 1 (or None for an ideal queue)")


class Worker:
    """One GPU worker: its pool, what it serves, what it is doing."""

    __slots__ = ("id", "pool", "queues", "job", "idle_since", "starting", "started_at",
                 "stopped", "busy_s", "t_int")

    def __init__(self, wid: str, pool: "Pool", queues: tuple, now: float, starting: bool) -> None:
        self.id = wid
        self.pool = pool
        self.queues = queues
        self.job = -1
        self.idle_since = None if starting else now
        self.starting = starting
        self.started_at = now
        self.stopped = False
        self.busy_s = 0.0
        self.t_int = INF

    def view(self) -> WorkerView:
        busy = self.job >= 0
        return WorkerView(id=self.id, busy=busy, starting=self.starting,
                          idle_since=None if busy or self.starting else self.idle_since)


@dataclass
class Pool:
    """A set of workers scaled by one policy (on-demand or spot)."""

    name: str
    spot: bool
    policy: AutoscalePolicy
    serve: tuple[int, ...]          # class indices polled, priority order
    depth_classes: tuple[int, ...]  # class indices whose depth drives the policy
    workers: list[Worker] = field(default_factory=list)
    idle: list[Worker] = field(default_factory=list)
    ticking: bool = False
    last_tick: float = -INF
    cadence: float = 10.0
    order: int = 0                  # ties between pools' ticks at one instant go by this
    rng_cold: np.random.Generator | None = None
    worker_s: float = 0.0
    busy_s: float = 0.0
    cold_starts: int = 0
    added: int = 0
    stopped: int = 0
    peak: int = 0


@dataclass
class TenantRun:
    """What one tenant's run produced: per-job arrays, samples and counters."""

    tenant: str
    gpu: str
    arrival: np.ndarray
    cls: np.ndarray
    service: np.ndarray   # service of the final attempt
    start: np.ndarray     # start of the final attempt
    end: np.ndarray       # completion or DLQ time; NaN when unfinished
    status: np.ndarray    # OK, DLQ, UNFINISHED
    samples: list[tuple]  # (t, depth rt, std, batch, workers od, spot, busy, in system)
    horizon_s: float
    end_s: float
    pools: dict[str, Pool]
    receives: int
    redeliveries: int
    interruptions: int
    decisions: int
