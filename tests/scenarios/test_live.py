"""Scenarios on the live pipeline (embedded AWS, no-op executor, time-compressed), each under a minute.

Each replay provisions a freshly reset embedded AWS (the session's server,
emptied by the ``cloud`` fixture).  Each test replays a library scenario exactly as
``comfyfab replay NAME --mode live`` does and checks its SLOs plus what the
fault must have done.
"""
from __future__ import annotations

import pytest

from scenarios.live import LiveReplay, plan_arrivals
from scenarios.loader import load_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def replay(name, fabric_config, cloud):
    s = load_scenario(name)
    cfg = s.effective_config(fabric_config)
    lr = LiveReplay(s, cfg, cloud)
    return lr, lr.run()


def verdicts(r):
    return [(str(v.assertion), v.value, v.reason) for v in r.verdicts if not v.passed]


def test_steady_40k_live(fabric_config, cloud):
    lr, r = replay("steady-40k", fabric_config, cloud)
    assert r.passed, (verdicts(r), r.notes)
    plan = plan_arrivals(r.scenario, r.cfg, r.scenario.live)
    assert r.metrics["jobs"] == len(plan) == r.metrics["completed"] > 20
    assert r.wall_s < 60
    assert len(r.timeline) > 0 and r.timeline["workers"].max() == 2, "the warm pool serves a steady 40k/day"
    # The model check of --mode both: fed this run's own overheads, the simulator lands near this run.
    # (Without them it would put every wait near zero: the pipeline's own overheads are most of it.)
    from scenarios.cli import _model_check
    from scenarios.gate import agreement

    (check,) = _model_check(r.scenario, fabric_config, "", [r])
    rows = {row.metric: row for row in agreement(check, r, boot=0)}
    assert abs(rows["all.wait_p50"].rel_diff) < 0.25, rows["all.wait_p50"]
    assert rows["all.wait_p50"].sim > 0.03


def test_poison_pill_live_dead_letters_exactly_the_poison(fabric_config, cloud):
    lr, r = replay("poison-pill-workflow", fabric_config, cloud)
    assert r.passed, (verdicts(r), r.notes)
    failed = [e for e in lr.events if e[1] == "failed"]
    assert len(failed) == 3 and all("poisoned workflow" in e[3]["reason"] for e in failed)
    assert sum(1 for e in lr.events if e[1] == "attempt_failed") == 3, "each poison job is tried twice"
    assert r.wall_s < 60


def test_blue_green_live_cuts_over_inside_90_s_and_loses_nothing(fabric_config, cloud):
    lr, r = replay("blue-green-peak", fabric_config, cloud)
    assert r.passed, (verdicts(r), r.notes)
    cut = lr.fleet.cutovers[0]
    assert cut["ok"] and cut["blue_drained_cleanly"]
    assert cut["green_ready_s"] >= 18, "green pays its cold start before it pulls"
    assert r.metrics["cutover_s"] == pytest.approx(cut["cutover_s"]) and cut["cutover_s"] < 90
    t_done = cut["start_s"] + cut["cutover_s"]
    after = [e for e in lr.events if e[1] == "started" and lr.fabric(e[0]) > t_done]
    assert after and all(e[3]["version"] == "sdxl-2026.11" for e in after), "only green pulls after the cutover"
    assert r.wall_s < 60
