"""Properties that hold for any fleet the config can describe."""

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from comfyfab.config import load_config
from sim.fleet import FleetOptions
from sim.run import SimOptions, simulate
from sim.workload import BurstSpec, StreamSpec, WorkloadSpec

BASE = load_config()


def one_tenant(overrides):
    data = BASE.with_overrides(overrides).model_dump(mode="json")
    data["tenants"] = data["tenants"][:1]
    return type(BASE).model_validate(data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(warm=st.integers(1, 4), extra=st.integers(0, 6), threshold=st.integers(0, 15),
       gpu=st.sampled_from(["A100", "H100"]), rate=st.floats(0.05, 3.0), heartbeats=st.booleans(),
       spot=st.booleans(), interrupts=st.sampled_from([0.0, 20.0]), seed=st.integers(0, 2 ** 16))
def test_every_job_is_accounted_for_and_the_fleet_stays_in_bounds(warm, extra, threshold, gpu, rate, heartbeats,
                                                                  spot, interrupts, seed):
    cfg = one_tenant({"fleet.warm_realtime_workers": warm, "fleet.autoscaling.max_workers": warm + extra,
                      "fleet.autoscaling.queue_depth_threshold": threshold, "fleet.gpu": gpu,
                      "fleet.spot.interruptions_per_hour": interrupts, "fleet.spot.notice_s": 1.0,
                      "queues.classes.realtime.visibility_timeout_s": 3})
    tid = cfg.tenants[0].id
    wl = WorkloadSpec(duration_h=0.25, streams=tuple(
        StreamSpec(tenant=tid, priority=c, per_day=rate * 86400 / 3) for c in ("realtime", "standard", "batch")),
        bursts=(BurstSpec(start_h=0.05, duration_h=0.05, multiplier=4),))
    opts = SimOptions(fleet=FleetOptions(heartbeats=heartbeats, spot=spot, sample_s=5.0))
    r = simulate(cfg, wl, seed=seed, options=opts).runs[tid]
    ok, dlq = r.status == 0, r.status == 1
    assert (ok | dlq).all()                       # nothing lost, nothing left behind
    assert np.all(r.start[ok] >= r.arrival[ok])
    assert np.allclose(r.end[ok], r.start[ok] + r.service[ok])
    if heartbeats and not (spot and interrupts):
        assert not dlq.any() and r.redeliveries == 0
    pools = r.pools.values()
    assert sum(p.peak for p in pools) <= warm + extra + r.pools["on_demand"].policy.max_workers
    for t, d_rt, d_std, d_b, n_od, n_spot, busy, in_sys in r.samples:
        assert n_od + n_spot <= warm + extra and n_od >= warm and busy <= n_od + n_spot
        assert in_sys >= d_rt + d_std + d_b
    assert r.receives == len(r.arrival) + r.redeliveries
