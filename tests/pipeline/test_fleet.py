"""The live fleet manager applies the shared autoscaling policy (fabric time driven by a test clock)."""
import pytest

from comfyfab.config import load_config
from pipeline.fleet import FleetManager


class FakeWorker:
    """Stands in for a worker thread: the fleet only needs these attributes."""

    def __init__(self, name):
        self.name, self.busy, self.idle_since_fabric, self.started, self.stopped = name, False, None, False, False

    @property
    def alive(self):
        return self.started and not self.stopped

    def start(self):
        self.started = True

    def request_stop(self):
        self.stopped = True

    def stop(self, drain_timeout_s=None):
        self.stopped = True
        return True


class Depths:
    def __init__(self):
        self.value = {}

    def depths(self, tenant):
        return {"realtime": self.value.get(tenant, 0), "standard": 0, "batch": 0}


@pytest.fixture
def fleet():
    cfg = load_config().with_overrides({"fleet.autoscaling.max_workers": 6})
    t = {"now": 0.0}
    q = Depths()
    # A huge time_scale makes the cold-start sleeps instant in wall time; the policy sees the test clock.
    fm = FleetManager(cfg, q, lambda tenant, name: FakeWorker(name), clock=lambda: t["now"], cold_starts=True,
                      time_scale=1e9)
    return fm, q, t


def busy(fm, tenant, flag):
    import time
    time.sleep(0.05)  # let boot threads run
    for m in fm.pools[tenant]:
        m.worker.busy = flag


def test_warm_pool_then_scale_out_and_in(fleet):
    fm, q, t = fleet
    tenant = fm.cfg.tenants[0].id
    for tid, pol in fm.policies.items():
        fm.apply(tid, __import__("comfyfab.policy", fromlist=["ScaleDecision"]).ScaleDecision(add=pol.min_workers),
                 warm=True)
    assert fm.pool_size(tenant) == 2
    q.value[tenant] = 50
    busy(fm, tenant, True)
    fm.check()
    assert fm.pool_size(tenant) == 4, "depth > 10 adds two workers"
    new = fm.pools[tenant][-1]
    assert 18 <= new.ready_at <= 22, "scaled-out workers pay a cold start"
    t["now"] = 10
    fm.check()
    assert fm.pool_size(tenant) == 4, "at most one step per 30 s"
    t["now"] = 30
    fm.check()
    t["now"] = 60
    busy(fm, tenant, True)
    fm.check()
    assert fm.pool_size(tenant) == 6, "capped at max_workers"
    busy(fm, tenant, True)
    q.value[tenant] = 0
    t["now"] = 100
    busy(fm, tenant, False)
    fm.check()  # everyone is idle from now on
    t["now"] = 399
    fm.check()
    assert fm.pool_size(tenant) == 6
    t["now"] = 401
    fm.check()
    assert fm.pool_size(tenant) == 2, "idle workers beyond the warm pool stop after 5 min"
    assert [(d[2].add, len(d[2].stop)) for d in fm.decisions if d[1] == tenant] == [(2, 0), (2, 0), (0, 4)]


def test_live_fleet_counts_starting_workers_when_configured():
    """The same ``count_starting`` rule as the simulator's (one policy object): with a 100 s cold start,
    the case study's rule adds a second step at 30 s, the counting one waits until the first is up."""
    from comfyfab.policy import ScaleDecision

    added = {}
    for count in (False, True):
        cfg = load_config().with_overrides({"fleet.autoscaling.count_starting": count,
                                            "fleet.cold_start.min_s": 100, "fleet.cold_start.max_s": 100})
        t = {"now": 0.0}
        q = Depths()
        fm = FleetManager(cfg, q, lambda tenant, name: FakeWorker(name), clock=lambda: t["now"], cold_starts=True,
                          time_scale=1e9)
        tenant = cfg.tenants[0].id
        fm.apply(tenant, ScaleDecision(add=fm.policies[tenant].min_workers), warm=True)
        q.value[tenant] = 50
        busy(fm, tenant, True)
        sizes = []
        for now in (0, 30, 60, 101):
            t["now"] = now
            busy(fm, tenant, True)
            fm.check()
            sizes.append(fm.pool_size(tenant))
        added[count] = sizes
    assert added[False] == [4, 6, 8, 10]
    assert added[True] == [4, 4, 4, 6]
