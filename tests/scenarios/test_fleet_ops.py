"""Fleet operations the replays drive: spot pools and notices, crashes, blue/green; the worker's seams."""
from __future__ import annotations

import threading
import time

import pytest

from comfyfab.policy import ScaleDecision
from pipeline.fleet import FleetManager
from pipeline.queues import Delivery
from pipeline.worker import Doorbell, TenantTarget, Worker


class FakeWorker:
    """What the fleet needs of a worker, with a log of what it was told."""

    def __init__(self, name, log, healthy=True):
        self.name, self.log, self._healthy = name, log, healthy
        self.busy, self.idle_since_fabric, self.model_version = False, None, ""
        self.started = self.stopped = False

    @property
    def alive(self):
        return self.started and not self.stopped

    def start(self):
        self.started = True
        self.log.append(("start", self.name, self.model_version))

    def request_stop(self):
        self.log.append(("request_stop", self.name))

    def stop(self, drain_timeout_s=None):
        self.stopped = True
        self.log.append(("stop", self.name))
        return True

    def interrupt(self, notice_wall_s):
        self.log.append(("interrupt", self.name, notice_wall_s))

    def crash(self):
        self.log.append(("crash", self.name))

    def healthy(self):
        self.log.append(("health", self.name))
        return self._healthy


class Depths:
    def __init__(self):
        self.d = {"realtime": 0, "standard": 0, "batch": 0}

    def depths(self, tenant):
        return dict(self.d)


@pytest.fixture
def setup(fabric_config):
    cfg = fabric_config.with_overrides({"fleet.autoscaling.max_workers": 5})
    clock = {"now": 0.0}
    log: list = []
    q = Depths()
    fm = FleetManager(cfg, q, lambda t, n: FakeWorker(n, log), clock=lambda: clock["now"], time_scale=1e9,
                      spot_factory=lambda t, n: FakeWorker(n, log))
    for tid, pol in fm.policies.items():
        fm.apply(tid, ScaleDecision(add=pol.min_workers), warm=True)
    time.sleep(0.05)
    return fm, q, clock, log, cfg.tenants[0].id


def test_batch_depth_scales_the_spot_pool_within_the_tenant_cap(setup):
    fm, q, clock, log, tenant = setup
    q.d["batch"] = 50
    fm.check()
    assert len(fm.spot_pools[tenant]) == 2 and len(fm.pools[tenant]) == 2, "batch depth drives spot, not on-demand"
    assert all(m.spot and m.worker.name.startswith(f"{tenant}-s") for m in fm.spot_pools[tenant])
    clock["now"] = 30
    fm.check()
    assert fm.pool_size(tenant) == 5, "on-demand + spot stay within max_workers (5)"
    assert fm.counters[tenant]["cold_starts"] == 3 and fm.counters[tenant]["peak_workers"] == 5


def test_a_spot_notice_takes_the_worker_out_and_tells_it_the_notice(setup):
    fm, q, clock, log, tenant = setup
    q.d["batch"] = 50
    fm.check()
    victim = fm.spot_pools[tenant][0].worker.name
    assert fm.interrupt(tenant, victim)
    assert victim not in [m.worker.name for m in fm.spot_pools[tenant]]
    assert ("interrupt", victim, 120 / 1e9) in log
    assert fm.counters[tenant]["interruptions"] == 1
    assert not fm.interrupt(tenant, fm.pools[tenant][0].worker.name), "on-demand workers get no spot notice"


def test_a_crash_kills_busy_workers_first_and_the_warm_pool_refills(setup):
    fm, q, clock, log, tenant = setup
    fm.pools[tenant][1].worker.busy = True
    busy = fm.pools[tenant][1].worker.name
    assert fm.crash(tenant, 1) == [busy]
    assert ("crash", busy) in log and fm.pool_size(tenant) == 1
    fm.check()
    assert fm.pool_size(tenant) == 2 and 18 <= fm.pools[tenant][-1].ready_at <= 22, "replaced with a cold start"


def test_blue_green_starts_green_after_its_health_check_then_drains_blue(setup):
    fm, q, clock, log, tenant = setup
    blue = [m.worker.name for m in fm.pools[tenant]]
    fm.cutover(tenant, "v2").join(5)
    rec = fm.cutovers[-1]
    assert rec["ok"] and rec["tenant"] == tenant and rec["blue_drained_cleanly"]
    green = [m.worker.name for m in fm.pools[tenant]]
    assert len(green) == 2 and not set(green) & set(blue)
    order = [e[:2] for e in log if e[1] in green + blue and e[0] != "start" or (e[0] == "start" and e[1] in green)]
    first_green_start = order.index(("start", green[0]))
    assert all(order.index(("health", g)) < first_green_start for g in green), "health check before pulling"
    assert all(order.index(("request_stop", b)) > first_green_start for b in blue), "blue stops after green pulls"
    assert all(("stop", b) in log for b in blue)
    assert all(e[2] == "v2" for e in log if e[0] == "start" and e[1] in green)
    assert fm.versions[tenant] == "v2"
    assert fm.counters[tenant]["peak_workers"] == 4, "blue and green run side by side until blue drains"


def test_a_green_pool_that_fails_its_health_check_leaves_blue_serving(fabric_config):
    log: list = []
    fm = FleetManager(fabric_config, Depths(), lambda t, n: FakeWorker(n, log, healthy=False), clock=lambda: 0.0,
                      time_scale=1e9, health_timeout_s=1e7)
    tenant = fabric_config.tenants[0].id
    fm.apply(tenant, ScaleDecision(add=2), warm=True)
    fm.health_timeout_s = 0.0
    blue = [m.worker.name for m in fm.pools[tenant]]
    fm.cutover(tenant, "broken").join(5)
    assert fm.cutovers[-1]["ok"] is False
    assert [m.worker.name for m in fm.pools[tenant]] == blue
    assert not any(e[0] == "request_stop" for e in log)


# -- the worker's replay seams, with fakes for AWS and ComfyUI ---------------------------------------------

class FakeQueues:
    def __init__(self, deliveries):
        self.pending = list(deliveries)
        self.calls: list = []

    def receive(self, tenant, cls, max_messages=1, wait_s=0):
        if cls == "standard" and self.pending:
            return [self.pending.pop(0)]
        return []

    def extend(self, d, seconds):
        self.calls.append(("extend", d.job_id, seconds))

    def release(self, d):
        self.calls.append(("release", d.job_id))

    def delete(self, d):
        self.calls.append(("delete", d.job_id))


class FakeStore:
    def __init__(self):
        self.calls: list = []

    def start(self, job_id, worker, attempt):
        self.calls.append(("start", job_id))
        return True

    def succeed(self, job_id, worker, keys, key_arn):
        self.calls.append(("succeed", job_id))
        return True

    def attempt_failed(self, job_id, reason, final):
        self.calls.append(("failed", job_id, final))
        return True

    def get(self, job_id):
        return None


class FakeCloud:
    class S3:
        def put_object(self, **kw):
            pass

    def client(self, name):
        return self.S3()


class FakeComfy:
    def run(self, workflow, timeout=None):
        return [("out.png", b"\x89PNG")]


def make_worker(fabric_config, service_s, time_scale=1.0, bell=None):
    d = Delivery(tenant_id="acme-health", priority="standard", receipt="r1",
                 body={"jobId": "job-1", "tenantId": "acme-health", "workflow": {}}, receive_count=1, message_id="m")
    q, store = FakeQueues([d]), FakeStore()
    events: list = []
    w = Worker(name="w1", tenant_id="acme-health", cfg=fabric_config, cloud=FakeCloud(), queues=q, store=store,
               target=TenantTarget(bucket="b", key_arn="k"), executor_url="http://127.0.0.1:9", time_scale=time_scale,
               service_time=lambda _: service_s, doorbell=bell or Doorbell(), idle_wait_s=0.02,
               on_event=lambda kind, job, extra: events.append((time.monotonic(), kind, extra)))
    w._comfy = FakeComfy()
    return w, q, store, events


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_the_worker_holds_a_job_for_its_service_time_divided_by_the_time_scale(fabric_config):
    w, q, store, events = make_worker(fabric_config, service_s=2.0, time_scale=10.0)
    w.start()
    wait_for(lambda: ("delete", "job-1") in q.calls)
    w.stop(1)
    started = next(t for t, k, _ in events if k == "started")
    done = next(t for t, k, _ in events if k == "succeeded")
    assert 0.18 <= done - started < 0.6
    assert store.calls == [("start", "job-1"), ("succeed", "job-1")]


def test_a_spot_notice_shorter_than_the_job_releases_it_and_records_nothing(fabric_config):
    bell = Doorbell()
    w, q, store, events = make_worker(fabric_config, service_s=30.0, bell=bell)
    w.start()
    wait_for(lambda: w.busy)
    w.interrupt(notice_wall_s=0.1)
    wait_for(lambda: not w.alive)
    assert ("release", "job-1") in q.calls and ("delete", "job-1") not in q.calls
    assert [k for _, k, _ in events] == ["started", "released"]
    assert store.calls == [("start", "job-1")], "an interruption is not a failed attempt"
    assert bell.wait(0), "the release wakes an idle worker"


def test_a_spot_notice_longer_than_the_job_lets_it_finish(fabric_config):
    w, q, store, events = make_worker(fabric_config, service_s=0.2)
    w.start()
    wait_for(lambda: w.busy)
    w.interrupt(notice_wall_s=5.0)
    wait_for(lambda: not w.alive)
    assert ("delete", "job-1") in q.calls and ("release", "job-1") not in q.calls


class LongPollQueues(FakeQueues):
    """Queues whose receive waits, as SQS's long poll does, until a job arrives."""

    def __init__(self, deliveries):
        super().__init__(deliveries)
        self.polling, self.arrive = threading.Event(), threading.Event()

    def receive(self, tenant, cls, max_messages=1, wait_s=0):
        if not wait_s:
            return []
        self.polling.set()
        self.arrive.wait(5)
        return [self.pending.pop(0)] if self.pending else []


def test_a_job_that_arrives_on_a_stopping_workers_long_poll_is_run_not_handed_back(fabric_config):
    """SIGTERM drains: the worker stops receiving and finishes what it holds.  A job its long poll
    returns after the stop is held: released, it would have spent one of its two receives unrun."""
    w, _, store, events = make_worker(fabric_config, service_s=0.0)
    w.queues = q = LongPollQueues(w.queues.pending)
    w.doorbell = None  # idle workers long-poll SQS
    w.start()
    wait_for(q.polling.is_set)
    w.request_stop()
    q.arrive.set()  # the job lands while the receive is still waiting
    wait_for(lambda: not w.alive)
    assert q.calls == [("delete", "job-1")] and store.calls == [("start", "job-1"), ("succeed", "job-1")]
    assert [k for _, k, _ in events] == ["started", "succeeded"]


class RecordingQueues(FakeQueues):
    """Every queue answers empty; each receive is logged as (class, wait)."""

    def __init__(self):
        super().__init__([])
        self.receives = []

    def receive(self, tenant, cls, max_messages=1, wait_s=0):
        self.receives.append((cls, wait_s))
        return []


@pytest.mark.parametrize("slot,waits_on", [(0, "realtime"), (1, "standard"), (2, "batch"), (3, "realtime")])
def test_an_idle_worker_long_polls_the_class_of_its_slot_after_polling_every_class(fabric_config, slot, waits_on):
    w, _, _, _ = make_worker(fabric_config, service_s=0.0)
    w.queues, w.doorbell, w.poll_slot = RecordingQueues(), None, slot
    assert w.next_delivery() is None
    assert w.queues.receives == [("realtime", 0), ("standard", 0), ("batch", 0),
                                 (waits_on, fabric_config.queues.long_poll_s)]


def test_a_pool_gives_its_workers_the_lowest_free_slots_and_keeps_them_spread_after_a_scale_in(setup):
    fm, _, _, _, tenant = setup
    fm.apply(tenant, ScaleDecision(add=3), warm=True)
    slots = {m.worker.name: m.worker.poll_slot for m in fm.pools[tenant]}
    assert sorted(slots.values()) == list(range(len(slots)))
    second = sorted(slots, key=slots.get)[1]  # the worker in slot 1: standard's long poll
    fm.apply(tenant, ScaleDecision(stop=(second,)))
    fm.apply(tenant, ScaleDecision(add=1), warm=True)
    assert sorted(m.worker.poll_slot for m in fm.pools[tenant]) == list(range(len(slots)))


def test_a_crash_neither_releases_nor_records(fabric_config):
    w, q, store, events = make_worker(fabric_config, service_s=30.0)
    w.start()
    wait_for(lambda: w.busy)
    w.crash()
    wait_for(lambda: not w.alive)
    assert not [c for c in q.calls if c[0] in ("release", "delete")]
    assert store.calls == [("start", "job-1")]
    assert [k for _, k, _ in events] == ["started", "crashed"]


def test_a_doorbell_wakes_one_waiter_per_ring():
    bell = Doorbell()
    woke: list = []
    threads = [threading.Thread(target=lambda: woke.append(bell.wait(1.0))) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    bell.ring()
    for t in threads:
        t.join()
    assert sorted(woke) == [False, False, True]


def test_the_heartbeat_extends_a_long_jobs_message_and_stops_with_the_job(fabric_config):
    """A job longer than its class's visibility timeout: the worker's heartbeat extends the message,
    by the class's timeout each time, every ``heartbeat_fraction`` of it, and sends nothing once the
    job is done.  time_scale 90 turns the standard class's 45 s into 1 s (the floor), so a 3-second
    job (270 fabric seconds) needs about five extensions."""
    w, q, store, events = make_worker(fabric_config, service_s=270.0, time_scale=90.0)
    w.start()
    wait_for(lambda: ("delete", "job-1") in q.calls, timeout=10)
    extends = [c for c in q.calls if c[0] == "extend"]
    period = max(0.05, 1 * fabric_config.queues.heartbeat_fraction)
    assert len(extends) >= int(3.0 / period) - 2, q.calls
    assert all(c == ("extend", "job-1", 1) for c in extends)
    assert q.calls.index(("delete", "job-1")) == len(q.calls) - 1, "no extension after the delete"
    time.sleep(2 * period)
    assert q.calls[-1] == ("delete", "job-1"), "the heartbeat is idle between jobs"
    assert w.heartbeat.beats == len(extends)
    w.stop(1)
    assert not w.alive and w.heartbeat.closed


def test_one_heartbeat_thread_serves_a_workers_jobs_one_after_another(fabric_config):

    w, q, store, events = make_worker(fabric_config, service_s=135.0, time_scale=90.0)
    q.pending.append(Delivery(tenant_id="acme-health", priority="standard", receipt="r2",
                              body={"jobId": "job-2", "tenantId": "acme-health", "workflow": {}}, receive_count=1,
                              message_id="m2"))
    w.start()
    wait_for(lambda: ("delete", "job-2") in q.calls, timeout=10)
    w.stop(1)
    assert {c[1] for c in q.calls if c[0] == "extend"} == {"job-1", "job-2"}
    first_delete = q.calls.index(("delete", "job-1"))
    assert all(c[1] == "job-2" for c in q.calls[first_delete:] if c[0] == "extend")
    threads = [t.name for t in threading.enumerate() if t.name.startswith("heartbeat-")]
    assert threads == [], "the worker's heartbeat thread ended with the worker"
