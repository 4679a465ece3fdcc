import pytest
from hypothesis import given, strategies as st

from comfyfab.config import load_config
from sim.errors import PlanError, SloSpecError
from sim.plan import PlanSpace, parse_slo, plan
from sim.sweep import sweep
from sim.workload import WorkloadSpec

CFG = load_config()


@given(st.sampled_from(["realtime", "standard", "batch"]), st.sampled_from(["p50", "p95", "p99", "mean"]),
       st.floats(0.001, 1e4), st.sampled_from([("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]))
def test_slo_parses_with_units(cls, stat, num, unit):
    slo = parse_slo(f"{cls}.{stat} <= {num:.6f}{unit[0]}")
    assert (slo.cls, slo.stat) == (cls, stat)
    assert slo.limit_s == pytest.approx(float(f"{num:.6f}") * unit[1])


@pytest.mark.parametrize("text", ["realtime.p95>=2s", "urgent.p95<=2s", "realtime.p42<=2s", "p95<=2", ""])
def test_bad_slos_are_refused(text):
    with pytest.raises(SloSpecError):
        parse_slo(text)


def test_sweep_in_processes_equals_inline_and_shares_random_numbers():
    wl = WorkloadSpec.seed_month(CFG, days=0.1)
    variants = [{"fleet.warm_realtime_workers": 1}, {"fleet.warm_realtime_workers": 3}]
    inline = sweep(CFG, wl, variants, reps=2, seed=5, processes=1)
    pooled = sweep(CFG, wl, variants, reps=2, seed=5, processes=2)
    cols = ["variant", "rep", "tenant", "class", "jobs", "latency_p95_s", "total_cost_usd"]
    assert inline[cols].equals(pooled[cols])
    jobs = inline[inline["class"] == "all"].groupby(["rep", "tenant"])["jobs"].nunique()
    assert (jobs == 1).all()  # both variants saw the very same arrivals in each rep


def test_plan_picks_the_cheapest_fleet_that_meets_the_slo():
    space = PlanSpace(gpus=("A100", "H100"), warm=(1, 2), max_workers=(4,), thresholds=(10,))
    res = plan(CFG, [parse_slo("realtime.p95<=2s")], 20000, space=space, days=0.5, reps=1, processes=1)
    assert res.best["gpu"] == "H100"  # the A100's service alone is over 2 s
    ok = res.table[res.table["meets_slos"]]
    assert res.monthly_cost_usd == ok["monthly_cost_usd"].min()
    assert (res.table[res.table["gpu"] == "A100"]["meets_slos"] == False).all()  # noqa: E712
    loose = plan(CFG, [parse_slo("batch.p95<=1h")], 20000, space=space, days=0.5, reps=1, processes=1)
    assert loose.monthly_cost_usd <= res.monthly_cost_usd
    tight = plan(CFG, [parse_slo("realtime.p95<=2s")], 20000, space=space, days=0.5, reps=1, processes=1,
                 margin=0.1)
    met = tight.table[tight.table["meets_slos"]]
    assert (met["realtime.p95<=2s"] <= 1.8).all()
    assert tight.table["meets_slos"].sum() <= res.table["meets_slos"].sum()
    with pytest.raises(PlanError, match="margin"):
        plan(CFG, [parse_slo("batch.p95<=1h")], 10, space=space, margin=1.5)
    with pytest.raises(PlanError, match="unknown tenant"):
        plan(CFG, [parse_slo("batch.p95<=1h")], 10, tenant="nobody", space=space)
