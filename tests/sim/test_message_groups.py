"""SQS FIFO message groups in the simulator: a job waits while another job of its group is in flight
in the same queue, even with a worker idle; with groups that never collide nothing changes."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from comfyfab.config import PRIORITY_ORDER
from sim.fleet import OK
from sim.run import SimOptions, job_tables, simulate
from sim.state import FleetOptions
from sim.workload import StreamSpec, WorkloadSpec

from .helpers import fixed_fleet

CFG = fixed_fleet(4)
T0 = CFG.tenants[0].id
IDEAL = SimOptions(fleet=FleetOptions(autoscale=False, sample_s=0))


def grouped(groups: int) -> SimOptions:
    return SimOptions(fleet=FleetOptions(autoscale=False, sample_s=0, message_groups=groups))


def workload(hours=1.0, per_s=1.0, classes=PRIORITY_ORDER) -> WorkloadSpec:
    return WorkloadSpec(duration_h=hours, streams=tuple(
        StreamSpec(tenant=T0, priority=c, per_day=per_s / len(classes) * 86400) for c in classes))


def tables_with(groups_of, seed=1, **kw):
    tables = job_tables(CFG, workload(**kw), seed, 0)
    jt = tables[T0]
    return {**tables, T0: dataclasses.replace(jt, group=np.asarray(groups_of(len(jt)), dtype=np.int64))}


def in_flight_overlaps(run, group) -> int:
    """Pairs of jobs of one (class, group) whose receive-to-done intervals overlap."""
    ok = run.status == OK
    bad = 0
    for c in range(3):
        for g in np.unique(group):
            m = ok & (run.cls == c) & (group == g)
            s, e = run.start[m], run.end[m]
            order = np.argsort(s)
            bad += int((s[order][1:] < e[order][:-1] - 1e-9).sum())
    return bad


def test_one_group_serialises_each_queue_though_workers_are_idle():
    tables = tables_with(lambda n: np.zeros(n), per_s=0.5)
    ideal = simulate(CFG, tables, seed=1, options=IDEAL).runs[T0]
    one = simulate(CFG, tables, seed=1, options=grouped(1)).runs[T0]
    assert in_flight_overlaps(ideal, np.zeros(len(ideal.cls), int)) > 0    # the ideal queue overlaps them
    assert in_flight_overlaps(one, np.zeros(len(one.cls), int)) == 0
    assert (one.status == OK).all()                                         # nothing lost or stuck
    wait = lambda r: np.mean(r.start - r.arrival)                           # noqa: E731
    assert wait(one) > wait(ideal)


def test_a_job_waits_for_its_group_and_not_for_another():
    # two jobs of group 0 and one of group 1 arrive together; four workers idle
    tables = tables_with(lambda n: np.zeros(n), per_s=0.5)
    jt = tables[T0]
    t = np.array([10.0, 10.0, 10.0])
    three = dataclasses.replace(jt, t=t, cls=np.array([1, 1, 1], dtype=jt.cls.dtype), key=jt.key[:3],
                                u=jt.u[:3], group=np.array([0, 0, 1]))
    r = simulate(CFG, {**tables, T0: three}, seed=1, options=grouped(64)).runs[T0]
    assert r.start[0] == 10.0 and r.start[2] == 10.0
    assert r.start[1] == r.end[0]                 # received when the first of its group is done


def test_groups_that_never_collide_change_nothing():
    tables = tables_with(lambda n: np.arange(n), per_s=2.0)
    ideal = simulate(CFG, tables, seed=3, options=IDEAL).runs[T0]
    many = simulate(CFG, tables, seed=3, options=grouped(10**6)).runs[T0]
    assert np.array_equal(ideal.start, many.start, equal_nan=True)
    assert np.array_equal(ideal.end, many.end, equal_nan=True)


def test_drawn_groups_follow_the_seed_and_the_count():
    wl = workload(per_s=2.0)
    a = simulate(CFG, wl, seed=5, options=grouped(2)).runs[T0]
    b = simulate(CFG, wl, seed=5, options=grouped(2)).runs[T0]
    ideal = simulate(CFG, wl, seed=5, options=IDEAL).runs[T0]
    assert np.array_equal(a.start, b.start, equal_nan=True)
    assert not np.array_equal(a.start, ideal.start, equal_nan=True)        # 2 groups over 4 workers collide


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.floats(0.2, 3.0), st.integers(0, 10**6))
def test_no_two_jobs_of_a_group_are_ever_in_flight_together(groups, per_s, seed):
    rng = np.random.default_rng(seed)
    tables = tables_with(lambda n: rng.integers(0, groups, n), seed=seed % 1000, hours=0.25, per_s=per_s)
    r = simulate(CFG, tables, seed=seed % 1000, options=grouped(groups)).runs[T0]
    assert (r.status == OK).all()
    assert in_flight_overlaps(r, tables[T0].group) == 0
    # strict priority and FIFO hold within what groups allow: nobody starts before arriving
    assert (r.start >= r.arrival - 1e-9).all()
