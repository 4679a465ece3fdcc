"""What the live replay will submit: the simulator's arrivals and service draws, faults folded in, a sane pace."""
from __future__ import annotations

import numpy as np
import pytest

from scenarios.errors import ReplayError
from scenarios.live import check_pace, plan_arrivals, poison_fault
from scenarios.loader import parse_scenario
from scenarios.schema import LiveSpec
from scenarios.sim_mode import run_sim
from pipeline.comfy.workflows import txt2img


def scenario(**extra):
    return parse_scenario({"name": "t", "duration_h": 0.2, "seed": 4, "tenants": ["acme-health"],
                           "traffic": {"per_day": 40000}, "live": {"time_scale": 5, "window_h": 0.05}, **extra}, "t")


def test_the_plan_is_the_simulators_window_with_the_same_service_draws(fabric_config):
    s = scenario()
    cfg = s.effective_config(fabric_config)
    plan = plan_arrivals(s, cfg, s.live)
    sim = run_sim(s, cfg, window_h=0.05)
    assert np.allclose(plan["arrival"], sim.jobs["arrival"]) and list(plan["priority"]) == list(sim.jobs["class"])
    assert np.allclose(plan["service"], sim.jobs["service"])
    again = plan_arrivals(s, cfg, s.live)
    assert list(again["job_id"]) == list(plan["job_id"]) and plan["job_id"].is_unique


def test_failover_holds_submissions_and_poison_jobs_join_the_plan(fabric_config):
    s = scenario(faults=[{"kind": "region_failover", "at_h": 0.01, "outage_s": 30},
                         {"kind": "poison_job", "at_h": 0.02, "count": 2, "priority": "batch"},
                         {"kind": "poison_job", "at_h": 0.5, "count": 5}])
    plan = plan_arrivals(s, s.effective_config(fabric_config), s.live)
    held = plan[(plan["arrival"] >= 36) & (plan["arrival"] < 66)]
    assert len(held) and (held["submit_at"] == 66).all()
    rest = plan.drop(held.index)
    assert (rest["submit_at"] == rest["arrival"]).all()
    poison = plan[plan["poison"]]
    assert len(poison) == 2 and set(poison["priority"]) == {"batch"}, "only poison inside the live window"


def test_poison_fault_hook_fails_only_the_marked_workflow():
    assert poison_fault(txt2img("x", filename_prefix="poison-pill")) is not None
    assert poison_fault(txt2img("x", filename_prefix="replay")) is None


def test_a_pace_the_stack_cannot_keep_is_refused(fabric_config):
    s = scenario()
    cfg = s.effective_config(fabric_config)
    check_pace(s, s.live, plan_arrivals(s, cfg, s.live))
    fast = LiveSpec(time_scale=200, window_h=0.05)
    with pytest.raises(ReplayError, match="jobs per wall second"):
        check_pace(s, fast, plan_arrivals(s, cfg, fast))
    with pytest.raises(ReplayError, match="no arrivals"):
        check_pace(s, s.live, plan_arrivals(s, cfg, s.live).iloc[:0])
