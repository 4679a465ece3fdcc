"""Layer 3, a GPU worker: pull a job, run its workflow on ComfyUI, store the output.

One worker serves one tenant (it lives in that tenant's VPC).  Its loop:

1. poll the tenant's queues in the order of a :class:`~comfyfab.policy.PollPolicy`
   (realtime first); when all are empty, long-poll the class the policy gives
   the worker's slot (idle workers spread over the classes);
2. mark the record running -- a conditional write that fails for a job that
   already succeeded, so a redelivered or duplicated message never runs twice;
3. run the workflow through ComfyUI's HTTP API while a heartbeat keeps the
   message invisible for as long as it runs;
4. write each image to the tenant bucket with SSE-KMS under the tenant key,
   mark the record succeeded, delete the message.

A failed attempt releases the message (visibility 0) so it reappears; the
attempt that reaches the class's ``max_receive_count`` marks the record
failed, and SQS moves the message to the DLQ on its next receive.  ``stop``
drains: no new receives, the held job finishes within the drain budget or is
released.

Scenario replays add three seams, all off by default: ``service_time`` holds
a job for a drawn GPU time (fabric seconds, divided by ``time_scale``) so a
no-op executor behaves like a GPU; a :class:`Doorbell` wakes one idle worker
per accepted job (SQS long-polls one queue per call; the bell stands in for a
long poll over all three classes); ``interrupt`` (a spot notice: stop
receiving, finish or release within the notice) and ``crash`` (die holding
the job: it reappears after its visibility timeout).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig
from comfyfab.policy import PollPolicy

from .comfy.client import ComfyClient
from .jobs import JobStore
from .models import JobStatus
from .queues import Delivery, JobQueues

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TenantTarget:
    """Where a tenant's outputs go."""

    bucket: str
    key_arn: str


class WorkerKilled(Exception):
    """The worker was interrupted or crashed while holding a job."""


class Doorbell:
    """Wakes one idle worker of a tenant per ring (a token count under a condition)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._tokens = 0

    def ring(self) -> None:
        with self._cond:
            self._tokens += 1
            self._cond.notify(1)

    def wait(self, timeout: float) -> bool:
        """True when a ring was consumed, False on timeout."""
        with self._cond:
            if self._tokens == 0:
                self._cond.wait(timeout)
            if self._tokens:
                self._tokens -= 1
                return True
            return False


@dataclass
class WorkerStats:
    succeeded: int = 0
    failed_attempts: int = 0
    duplicates_dropped: int = 0
    busy_s: float = 0.0


class Heartbeat:
    """Extends the visibility of the message a worker holds, every ``fraction`` of its timeout, while
    a job runs.  One thread per worker, started at its first job and armed per job with :meth:`hold`
    (a thread per job cost a start and a join each time)."""

    def __init__(self, queues: JobQueues, fraction: float, name: str = "heartbeat"):
        self._queues, self._fraction, self._name = queues, fraction, name
        self._cond = threading.Condition()
        self._held: Delivery | None = None
        self._vis = 0
        self._due = 0.0
        self._in_flight = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.beats = 0

    def _period(self, visibility_s: int) -> float:
        return max(0.05, visibility_s * self._fraction)

    @contextlib.contextmanager
    def hold(self, delivery: Delivery, visibility_s: int) -> Iterator["Heartbeat"]:
        """Keep ``delivery`` invisible, ``visibility_s`` at a time, until the block ends.  On leaving,
        an extension already sent is waited for, so none lands after the job's delete or release."""
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed")
            self._held, self._vis = delivery, visibility_s
            self._due = time.monotonic() + self._period(visibility_s)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name=self._name)
                self._thread.start()
            self._cond.notify_all()
        try:
            yield self
        finally:
            with self._cond:
                self._held = None
                self._cond.notify_all()
                while self._in_flight:
                    self._cond.wait()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._held is None or time.monotonic() < self._due):
                    self._cond.wait(None if self._held is None else self._due - time.monotonic())
                if self._closed:
                    return
                held, vis = self._held, self._vis
                self._due = time.monotonic() + self._period(vis)
                self._in_flight = True
            try:
                self._queues.extend(held, vis)
                self.beats += 1
            except Exception as exc:  # the job goes on; SQS will redeliver if the lease is truly lost
                log.warning("heartbeat for %s failed: %s", held.job_id, exc)
            finally:
                with self._cond:
                    self._in_flight = False
                    self._cond.notify_all()


@dataclass
class Worker:
    """One tenant's GPU worker, running in a thread."""

    name: str
    tenant_id: str
    cfg: FabricConfig
    cloud: Cloud
    queues: JobQueues
    store: JobStore
    target: TenantTarget
    executor_url: str
    poll: PollPolicy = field(default_factory=PollPolicy)
    time_scale: float = 1.0           # divides visibility and heartbeat periods (scenario replays)
    exec_timeout_s: float = 600.0
    on_event: Callable[[str, str, dict], None] | None = None
    stats: WorkerStats = field(default_factory=WorkerStats)
    service_time: Callable[[Delivery], float] | None = None  # fabric seconds a job holds the GPU (replays)
    doorbell: Doorbell | None = None  # wakes this worker when idle; SQS long poll when None
    idle_wait_s: float = 0.25         # wall seconds an idle worker waits on the doorbell before polling again
    model_version: str = ""
    poll_slot: int = 0                # its place in the pool: which class it long-polls when idle (PollPolicy)

    def __post_init__(self) -> None:
        self._comfy = ComfyClient(self.executor_url, timeout=self.exec_timeout_s)
        self._s3 = self.cloud.client("s3")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.busy = False
        self.idle_since: float | None = time.monotonic()
        self.idle_since_fabric: float | None = None  # kept by the fleet manager in fabric time
        self.current: Delivery | None = None
        self._kill = threading.Event()
        self.crashed = False
        self.interrupted = False
        self.heartbeat = self._new_heartbeat()

    # -- lifecycle -------------------------------------------------------
    def start(self) -> "Worker":
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Stop receiving new jobs (the first half of a drain)."""
        self._stop.set()

    def stop(self, drain_timeout_s: float | None = None) -> bool:
        """Stop receiving; wait for the held job up to the drain budget. True if it drained cleanly."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout=drain_timeout_s if drain_timeout_s is not None else self.cfg.fleet.drain_timeout_s)
        held = self.current
        if self._thread.is_alive() and held is not None:
            self.queues.release(held)  # another worker takes it now
            return False
        return True

    def interrupt(self, notice_wall_s: float) -> None:
        """A spot interruption notice: stop receiving now; a job still held when the notice ends is released."""
        self.interrupted = True
        self._stop.set()

        def reclaim() -> None:
            if self._thread is not None:
                self._thread.join(timeout=notice_wall_s)
            if self.alive:
                self._kill.set()  # the instance is gone: process() releases what it holds

        threading.Thread(target=reclaim, daemon=True, name=f"notice-{self.name}").start()

    def crash(self) -> None:
        """Die at once, holding whatever job: no release, no record update, no heartbeat."""
        self.crashed = True
        self._stop.set()
        self._kill.set()

    def healthy(self) -> bool:
        """The executor answers ``/system_stats`` (the blue/green health check)."""
        from pipeline.comfy.client import ComfyError

        try:
            self._comfy.system_stats()
            return True
        except ComfyError:
            return False

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _new_heartbeat(self) -> Heartbeat:
        return Heartbeat(self.queues, self.cfg.queues.heartbeat_fraction, name=f"heartbeat-{self.name}")

    def run(self) -> None:
        if self.heartbeat.closed:  # started again after a stop
            self.heartbeat = self._new_heartbeat()
        try:
            while not self._stop.is_set():
                d = self.next_delivery()
                if d is None:
                    continue
                # A job that a long poll brings in after a stop runs here, within the drain: handing it
                # back would spend one of its receives (maxReceiveCount 2) without running it.
                self.busy, self.idle_since, self.current = True, None, d
                t0 = time.monotonic()
                try:
                    self.process(d)
                finally:
                    self.stats.busy_s += time.monotonic() - t0
                    self.busy, self.idle_since, self.current = False, time.monotonic(), None
        finally:
            self.heartbeat.close()

    def next_delivery(self) -> Delivery | None:
        for cls in self.poll.order():
            got = self.queues.receive(self.tenant_id, cls, max_messages=1)
            if got:
                return got[0]
        # Everything empty: long-poll briefly so an idle worker costs little, on the class its slot names
        # (idle workers spread over the classes, realtime first).
        if self._stop.is_set():
            return None
        if self.doorbell is not None:
            self.doorbell.wait(self.idle_wait_s)
            return None
        got = self.queues.receive(self.tenant_id, self.poll.idle_class(self.poll_slot), max_messages=1,
                                  wait_s=self.cfg.queues.long_poll_s)
        return got[0] if got else None

    # -- one job ---------------------------------------------------------
    def _emit(self, kind: str, d: Delivery, **extra: object) -> None:
        if self.on_event:
            self.on_event(kind, d.job_id, {"worker": self.name, "tenant": self.tenant_id,
                                           "version": self.model_version, **extra})

    def process(self, d: Delivery) -> None:
        cls = self.cfg.queues.cls(d.priority)
        if d.body.get("tenantId") != self.tenant_id:
            # Never run another tenant's job, whatever reached this queue.
            self.queues.release(d)
            raise RuntimeError(f"{self.name}: message for tenant {d.body.get('tenantId')!r} in {self.tenant_id}'s queue")
        if not self.store.start(d.job_id, self.name, d.receive_count):
            record = self.store.get(d.job_id)
            if record is not None and record.status is JobStatus.FAILED:
                self.queues.release(d)  # out of attempts: SQS moves it to the DLQ on its next receive
                return
            self.stats.duplicates_dropped += 1  # already succeeded: this copy must not run again
            self.queues.delete(d)
            self._emit("duplicate_dropped", d)
            return
        self._emit("started", d, attempt=d.receive_count)
        vis = max(1, round(cls.visibility_timeout_s / self.time_scale))
        try:
            with self.heartbeat.hold(d, vis):
                t_exec = time.monotonic()
                images = self._comfy.run(d.body["workflow"], timeout=self.exec_timeout_s)
                if not images:
                    raise RuntimeError("the workflow produced no images")
                keys = []
                for filename, data in images:
                    key = f"{self.tenant_id}/{d.job_id}/{filename}"
                    self._s3.put_object(Bucket=self.target.bucket, Key=key, Body=data, ContentType="image/png",
                                        ServerSideEncryption="aws:kms", SSEKMSKeyId=self.target.key_arn,
                                        BucketKeyEnabled=self.cfg.encryption.bucket_key,
                                        Metadata={"job-id": d.job_id, "tenant-id": self.tenant_id})
                    keys.append(key)
                if self.service_time is not None:  # the drawn GPU time covers execution and the upload
                    hold = self.service_time(d) / self.time_scale - (time.monotonic() - t_exec)
                    if hold > 0 and self._kill.wait(hold):
                        raise WorkerKilled(self.name)
                if self._kill.is_set():
                    raise WorkerKilled(self.name)
        except WorkerKilled:
            if self.crashed:
                self._emit("crashed", d)  # the message reappears when its visibility lapses
                return
            self.queues.release(d)
            if self.doorbell is not None:
                self.doorbell.ring()
            self._emit("released", d, reason="spot interruption")
            return
        except Exception as exc:
            final = d.receive_count >= cls.max_receive_count
            reason = f"{type(exc).__name__}: {exc}"
            self.store.attempt_failed(d.job_id, reason, final=final)
            self.stats.failed_attempts += 1
            self.queues.release(d)
            if self.doorbell is not None:
                self.doorbell.ring()
            self._emit("failed" if final else "attempt_failed", d, reason=reason, attempt=d.receive_count)
            return
        if self.store.succeed(d.job_id, self.name, keys, self.target.key_arn):
            self.stats.succeeded += 1
            self._emit("succeeded", d, outputs=keys)
        self.queues.delete(d)
