import numpy as np
import pandas as pd
import pytest

from comfyfab.config import load_config
from sim.errors import TraceError, WorkloadError
from sim.workload import (BurstSpec, StreamSpec, WorkloadSpec, jobs_from_trace, load_trace, materialize,
                          write_trace)

CFG = load_config()
T0 = CFG.tenants[0].id


def test_seed_month_has_the_case_study_volume_and_shape():
    spec = WorkloadSpec.seed_month(CFG)
    assert spec.duration_h == 720
    assert {s.tenant for s in spec.streams} == {t.id for t in CFG.tenants}
    assert abs(spec.expected_jobs() / 2_400_000 - 1) < 0.01  # bursts add well under 1 %
    small = WorkloadSpec.seed_month(CFG, days=2)
    n = sum(len(jt) for jt in materialize(small, CFG, seed=4).values())
    assert abs(n / small.expected_jobs() - 1) < 0.02


def test_poisson_counts_and_gaps():
    spec = WorkloadSpec(duration_h=10, streams=(StreamSpec(tenant=T0, priority="realtime", per_day=86400),))
    t = materialize(spec, CFG, seed=1)[T0].t
    assert abs(len(t) / 36000 - 1) < 0.02
    gaps = np.diff(t)
    assert abs(gaps.mean() - 1) < 0.02 and abs(gaps.std() / gaps.mean() - 1) < 0.03  # exponential: CV 1


def test_diurnal_thinning_follows_the_profile():
    prof = tuple([1.0] * 12 + [3.0] * 12)
    spec = WorkloadSpec(duration_h=24 * 20, diurnal=prof,
                        streams=(StreamSpec(tenant=T0, priority="batch", per_day=20000),))
    t = materialize(spec, CFG, seed=2)[T0].t
    hour = (t // 3600).astype(int) % 24
    low, high = np.sum(hour < 12), np.sum(hour >= 12)
    assert abs(high / low / 3 - 1) < 0.03
    assert abs(len(t) / (20000 * 20) - 1) < 0.02  # the profile reshapes, it does not add volume


def test_burst_multiplies_only_its_window_and_stream():
    spec = WorkloadSpec(duration_h=10, streams=(
        StreamSpec(tenant=T0, priority="batch", per_day=86400 * 2),
        StreamSpec(tenant=T0, priority="realtime", per_day=86400 * 2)),
        bursts=(BurstSpec(start_h=2, duration_h=1, multiplier=4, priority="batch"),))
    jt = materialize(spec, CFG, seed=3)[T0]
    inside = (jt.t >= 7200) & (jt.t < 10800)
    before = (jt.t >= 3600) & (jt.t < 7200)
    batch, rt = jt.cls == 2, jt.cls == 0
    assert abs(np.sum(inside & batch) / np.sum(before & batch) / 4 - 1) < 0.05
    assert abs(np.sum(inside & rt) / np.sum(before & rt) - 1) < 0.1


def test_components_have_independent_seeds_and_reps_differ():
    one = WorkloadSpec(duration_h=1, streams=(StreamSpec(tenant=T0, priority="batch", per_day=50000),))
    two = WorkloadSpec(duration_h=1, streams=(*one.streams, StreamSpec(tenant=T0, priority="realtime", per_day=50000)))
    a, b = materialize(one, CFG, seed=9)[T0], materialize(two, CFG, seed=9)[T0]
    assert np.array_equal(a.t, b.t[b.cls == 2])  # adding a stream leaves the others alone
    c = materialize(one, CFG, seed=9, rep=1)[T0]
    assert not np.array_equal(a.t[:10], c.t[:10])
    assert np.array_equal(a.t, materialize(one, CFG, seed=9)[T0].t)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_trace_round_trip(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    spec = WorkloadSpec(duration_h=1, streams=(
        StreamSpec(tenant=T0, priority="batch", per_day=20000, resolution=768, steps=30),
        StreamSpec(tenant=CFG.tenants[1].id, priority="realtime", per_day=20000)))
    tables = materialize(spec, CFG, seed=1)
    path = write_trace(tables, tmp_path / f"trace{suffix}")
    back = jobs_from_trace(load_trace(path), CFG, seed=1)
    for tid, jt in tables.items():
        if len(jt) == 0:
            continue
        shift = jt.t.min() - min(x.t.min() for x in tables.values() if len(x))
        assert np.allclose(back[tid].t, jt.t - jt.t.min() + shift)
        assert np.array_equal(back[tid].cls, jt.cls)
        assert [back[tid].keys[k] for k in back[tid].key] == [jt.keys[k] for k in jt.key]


def test_trace_with_iso_timestamps(tmp_path):
    p = tmp_path / "t.csv"
    pd.DataFrame({"timestamp": ["2026-01-01T00:00:00Z", "2026-01-01T00:00:02.5Z"], "tenant": [T0, T0],
                  "class": ["realtime", "batch"], "resolution": [1024, 512], "steps": [20, 20],
                  "model": ["sdxl", "sdxl"], "seed": [1, 2]}).to_csv(p, index=False)
    jt = jobs_from_trace(load_trace(p), CFG)[T0]
    assert jt.t.tolist() == [0.0, 2.5] and jt.cls.tolist() == [0, 2]


def test_bad_traces_and_specs_are_refused(tmp_path):
    with pytest.raises(TraceError, match="not found"):
        load_trace(tmp_path / "none.csv")
    p = tmp_path / "bad.csv"
    pd.DataFrame({"timestamp": [0], "tenant": [T0]}).to_csv(p, index=False)
    with pytest.raises(TraceError, match="lacks columns"):
        load_trace(p)
    pd.DataFrame({"timestamp": [0], "tenant": ["nobody"], "class": ["batch"], "resolution": [1],
                  "steps": [1], "model": ["m"], "seed": [0]}).to_csv(p, index=False)
    with pytest.raises(TraceError, match="not in the config"):
        jobs_from_trace(load_trace(p), CFG)
    with pytest.raises(WorkloadError, match="unknown tenant"):
        materialize(WorkloadSpec(duration_h=1, streams=(StreamSpec(tenant="zzz-x", priority="batch", per_day=1),)), CFG)
    with pytest.raises(WorkloadError, match="class mix"):
        WorkloadSpec.seed_month(CFG, mix={"realtime": 0.5})
