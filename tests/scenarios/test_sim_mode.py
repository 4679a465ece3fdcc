"""Scenarios on the simulator: the library passes on the default fabric, faults leave their marks, the gate bites."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from scenarios.gate import agreement, compare, format_agreement
from scenarios.loader import load_scenario, parse_scenario
from scenarios.metrics import compute
from scenarios.sim_mode import run_sim
from tests.scenarios.test_schema import SHIPPED


def sim(name_or_scenario, cfg, **overrides):
    s = load_scenario(name_or_scenario) if isinstance(name_or_scenario, str) else name_or_scenario
    if overrides:
        cfg = cfg.with_overrides(overrides)
    return run_sim(s, s.effective_config(cfg))


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_scenario_passes_on_the_default_config(name, fabric_config):
    r = sim(name, fabric_config)
    failed = [(str(v.assertion), v.value, v.reason) for v in r.verdicts if not v.passed]
    assert r.passed, failed
    assert r.metrics["jobs"] > 0 and r.metrics["lost"] == 0


def test_max_workers_8_breaks_the_monday_burst_and_the_gate_says_so(fabric_config):
    base = sim("monday-morning-burst", fabric_config)
    cand = sim("monday-morning-burst", fabric_config, **{"fleet.autoscaling.max_workers": 8})
    report = compare(base, cand)
    assert base.passed and not report.passed
    row = next(r for r in report.rows if r.metric == "standard.p95")
    assert row.baseline_ok and not row.candidate_ok and row.candidate > 30 > row.baseline
    assert row.worse(0.10)
    text = report.format()
    assert "gate: FAIL (candidate breaks: standard.p95 <= 30s)" in text
    assert cand.metrics["peak_workers"] < base.metrics["peak_workers"]


def test_a_replay_is_repeatable(fabric_config):
    a, b = sim("spot-storm-batch", fabric_config), sim("spot-storm-batch", fabric_config)
    assert pd.Series(a.metrics).equals(pd.Series(b.metrics))  # NaN-aware
    assert a.jobs.equals(b.jobs)


def test_the_storm_raises_the_simulated_interruption_rate(fabric_config):
    r = sim("spot-storm-batch", fabric_config)
    # 120/h for half an hour of a two-hour run: 30/h on average, on top of the config's 0.05/h
    assert r.cfg.fleet.spot.interruptions_per_hour == pytest.approx(0.05 + 30)
    assert r.metrics["cold_starts"] > 0, "the batch campaign scales the spot pool out"


def base_scenario(**extra):
    return parse_scenario({"name": "t", "duration_h": 0.5, "seed": 1, "tenants": ["acme-health"],
                           "traffic": {"per_day": 40000}, **extra}, "t.yaml")


def test_failover_latency_counts_from_the_first_attempt(fabric_config):
    plain = sim(base_scenario(), fabric_config)
    failed = sim(base_scenario(faults=[{"kind": "region_failover", "at_h": 0.1, "outage_s": 60}]), fabric_config)
    assert failed.metrics["jobs"] == plain.metrics["jobs"]
    j = failed.jobs
    held = j[(j["arrival"] >= 360) & (j["arrival"] < 420)]
    assert len(held) > 0 and (held["start"] >= 420).all(), "nothing starts before the standby answers"
    lat = held["end"] - held["arrival"]
    assert (lat >= 420 - held["arrival"]).all()
    assert failed.metrics["all.p99"] > plain.metrics["all.p99"]


def test_a_crash_redelivers_the_held_jobs_after_the_visibility_timeout(fabric_config):
    plain = sim(base_scenario(), fabric_config)
    crashed = sim(base_scenario(faults=[{"kind": "worker_crash", "at_h": 0.2, "count": 2}]), fabric_config)
    assert crashed.metrics["crashes"] == 2 and crashed.metrics["redeliveries"] == 2
    moved = crashed.jobs["start"] != plain.jobs["start"]
    assert moved.sum() == 2
    for i in crashed.jobs.index[moved]:
        vt = fabric_config.queues.cls(crashed.jobs.at[i, "class"]).visibility_timeout_s
        assert crashed.jobs.at[i, "start"] == pytest.approx(max(720.0, plain.jobs.at[i, "start"]) + vt)


def test_poison_jobs_are_dead_lettered_and_nothing_else(fabric_config):
    r = sim(base_scenario(faults=[{"kind": "poison_job", "at_h": 0.1, "count": 4, "priority": "batch"}]),
            fabric_config)
    assert r.metrics["dlq"] == 4 and r.metrics["batch.dlq"] == 4 and r.metrics["lost"] == 0


def test_blue_green_in_sim_is_an_estimate_from_the_config(fabric_config):
    r = sim(base_scenario(faults=[{"kind": "blue_green", "at_h": 0.1, "version": "v2"}]), fabric_config)
    assert r.metrics["cutover_s"] == pytest.approx(22 + 1.1)
    assert any("--mode live" in n for n in r.notes)


def test_window_keeps_the_same_arrivals(fabric_config):
    s = load_scenario("steady-40k")
    cfg = s.effective_config(fabric_config)
    full = run_sim(s, cfg)
    part = run_sim(s, cfg, window_h=0.1)
    head = full.jobs[full.jobs["arrival"] < 360]
    assert np.array_equal(part.jobs["arrival"].to_numpy(), head["arrival"].to_numpy())


def frame(rows):
    return pd.DataFrame(rows, columns=["tenant", "class", "arrival", "start", "end", "service", "status"])


def test_metrics_follow_their_formulas(fabric_config):
    jobs = frame([
        ("acme-health", "realtime", 0.0, 0.0, 1.0, 1.0, "ok"),
        ("acme-health", "realtime", 1.0, 2.0, 4.0, 2.0, "ok"),
        ("acme-health", "standard", 2.0, np.nan, np.nan, np.nan, "dlq"),
        ("globex-retail", "batch", 3.0, np.nan, np.nan, np.nan, "unfinished"),
        ("globex-retail", "batch", 3.0, 5.0, 6.0, 1.0, "ok"),
    ])
    m = compute(jobs, fabric_config, {"acme-health": {"peak_workers": 3, "cutover_s": 20.0},
                                      "globex-retail": {"peak_workers": 2, "cutover_s": 40.0}})
    assert m["realtime.p50"] == pytest.approx(2.0) and m["realtime.mean"] == pytest.approx(2.0)
    assert m["realtime.wait_p95"] == pytest.approx(0.95)
    assert m["realtime.slo_attainment"] == 0.5
    assert (m["jobs"], m["completed"], m["dlq"], m["lost"]) == (5, 3, 1, 1)
    assert m["globex-retail:batch.lost"] == 1 and m["acme-health:standard.dlq"] == 1
    assert m["peak_workers"] == 5 and m["cutover_s"] == 40.0 and m["globex-retail:cutover_s"] == 40.0
    assert math.isnan(m["standard.p95"])
    with pytest.raises(ValueError, match="lacks columns"):
        compute(jobs.drop(columns=["start"]), fabric_config, {})


def test_agreement_rows_are_relative_to_the_simulator(fabric_config):
    r = sim(base_scenario(), fabric_config)
    rows = {a.metric: a for a in agreement(r, r)}
    assert rows["all.p95"].rel_diff == 0 and rows["realtime.wait_p50"].abs_diff == 0
    assert "largest absolute gap 0.000 s" in format_agreement(list(rows.values()), r, r)


def test_agreement_takes_the_median_of_draws_and_bounds_the_live_value(fabric_config):
    import copy

    r = sim(base_scenario(), fabric_config)
    # the live statistic is inside its own bootstrap interval, and the same run as "sim" lies in it
    rows = {a.metric: a for a in agreement(r, r)}
    p95 = rows["all.p95"]
    assert p95.live_lo <= p95.live <= p95.live_hi and p95.sim_in_live_interval
    # three "draws" whose all.p95 are 1, 2 and 100: the median (2) is compared, not the mean
    draws = []
    for v in (1.0, 100.0, 2.0):
        d = copy.copy(r)
        d.metrics = {**r.metrics, "all.p95": v}
        draws.append(d)
    row = {a.metric: a for a in agreement(draws, r)}["all.p95"]
    assert row.sim == 2.0
    far = {a.metric: a for a in agreement(draws[1], r)}["all.p95"]
    assert far.sim_in_live_interval is False
    text = format_agreement([row, far], r, r, draws=3)
    assert "median of 3 draws" in text and "sim out" in text


def test_several_live_runs_compare_their_median_and_show_their_spread(fabric_config):
    import copy

    r = sim(base_scenario(), fabric_config)
    lives = []
    for v in (0.30, 0.20, 0.25):
        d = copy.copy(r)
        d.metrics = {**r.metrics, "all.wait_p95": v}
        lives.append(d)
    sims = copy.copy(r)
    sims.metrics = {**r.metrics, "all.wait_p95": 0.35}
    row = {a.metric: a for a in agreement(sims, lives)}["all.wait_p95"]
    assert row.live == 0.25 and row.live_runs == (0.30, 0.20, 0.25)
    assert (row.live_lo, row.live_hi) == (0.20, 0.30) and row.sim_in_live_interval is False
    assert row.live_spread == pytest.approx(0.4) and row.rel_diff == pytest.approx(-0.10 / 0.35)
    text = format_agreement([row], sims, lives[0], draws=1)
    assert "live = median of 3 runs" in text and "live runs low-high" in text
    assert "spread by up to 40% of their median" in text
    # one live run: the bootstrap interval, no spread
    one = {a.metric: a for a in agreement(sims, [lives[0]])}["all.wait_p95"]
    assert one.live == 0.30 and len(one.live_runs) == 1 and math.isnan(one.live_spread)


def test_live_runs_is_refused_outside_both_mode(capsys):
    from comfyfab.cli import main

    assert main(["replay", "steady-40k", "--live-runs", "2"]) == 2
    assert "--live-runs" in capsys.readouterr().err
    assert main(["replay", "steady-40k", "--mode", "both", "--live-runs", "0"]) == 2


@st.composite
def job_frames(draw):
    n = draw(st.integers(0, 40))
    rows = []
    for _ in range(n):
        a = draw(st.floats(0, 1000))
        status = draw(st.sampled_from(["ok", "dlq", "unfinished"]))
        wait, svc = draw(st.floats(0, 100)), draw(st.floats(0.01, 10))
        ok = status == "ok"
        rows.append((draw(st.sampled_from(["acme-health", "globex-retail"])),
                     draw(st.sampled_from(["realtime", "standard", "batch"])), a,
                     a + wait if ok else np.nan, a + wait + svc if ok else np.nan, svc if ok else np.nan, status))
    return frame(rows)


@settings(max_examples=40, deadline=None)
@given(jobs=job_frames())
def test_counts_add_up_and_latency_bounds_wait(jobs, fabric_config):
    m = compute(jobs, fabric_config, {})
    assert m["jobs"] == len(jobs) == m["completed"] + m["dlq"] + m["lost"]
    assert m["jobs"] == sum(m[f"{c}.jobs"] for c in ("realtime", "standard", "batch"))
    assert m["lost"] == m["acme-health:lost"] + m["globex-retail:lost"]
    for c in ("realtime", "standard", "batch", "all"):
        if m[f"{c}.completed"]:
            assert m[f"{c}.wait_p95"] <= m[f"{c}.p95"] + 1e-9
            assert m[f"{c}.p50"] <= m[f"{c}.p95"] + 1e-9 <= m[f"{c}.p99"] + 2e-9
        else:
            assert math.isnan(m[f"{c}.p95"])


def test_overhead_probe_is_the_scenarios_tenant_and_mix_at_a_load_that_does_not_queue(fabric_config):
    from scenarios.overheads import probe_scenario

    s = load_scenario("steady-40k")
    p = probe_scenario(s, fabric_config, jobs=12, gap_s=6.0)
    assert p.tenants == s.tenants[:1] and p.traffic.mix == s.traffic.mix
    assert p.live.time_scale == s.live.time_scale and p.live.window_h is None
    r = run_sim(p, fabric_config)
    assert 4 <= len(r.jobs) <= 30
    ok = r.jobs[r.jobs["status"] == "ok"]
    assert ((ok["start"] - ok["arrival"]) < 1e-9).mean() >= 0.9, "the probe is meant to measure, not to queue"


def test_live_overheads_separate_submit_and_receive_from_waiting_for_a_worker():
    import pandas as pd

    from scenarios.overheads import MIN_CLASS_SAMPLES, live_overheads

    rows = []
    # worker w1 serves six realtime jobs back to back: each arrives while w1 is still busy
    t = prev_end = 0.0
    for i in range(6):
        arrival = t
        enqueued = arrival + 0.04
        start = max(enqueued, t) + 0.02 if i == 0 else prev_end + 0.02
        end = start + 1.0
        rows.append(("realtime", arrival, enqueued, start, end, "w1"))
        prev_end, t = end, arrival + 0.5
    # worker w2 is idle; six standard jobs, each receive takes 0.05 after its enqueue
    for i in range(6):
        arrival = 100.0 + 10 * i
        rows.append(("standard", arrival, arrival + 0.03, arrival + 0.08, arrival + 1.08, "w2"))
    rows.append(("batch", 200.0, 200.1, 200.4, 201.4, "w3"))
    jobs = pd.DataFrame(rows, columns=["class", "arrival", "enqueued", "start", "end", "worker"]).assign(status="ok")
    submit, receive = live_overheads(jobs)
    # the router's work is the same for every class: each class draws from all 13 submit times
    assert submit[0] == submit[1] == submit[2] == pytest.approx(sorted((0.04,) * 6 + (0.03,) * 6 + (0.1,)))
    # realtime jobs 2-6 waited ~0.5 s for w1, but only the 0.02 s after w1 was free is receive time
    assert receive[0] == pytest.approx((0.02,) * 6)
    assert receive[1] == pytest.approx((0.05,) * 6)
    assert len(receive[2]) == 13 > MIN_CLASS_SAMPLES  # one batch job is too few: all classes' samples


def test_a_wait_for_the_message_group_is_not_counted_as_receive_time():
    from scenarios.overheads import live_overheads

    # two idle workers; job b arrives while job a (same group) runs, so b waits for a's end
    rows = [("standard", 0.0, 0.03, 0.08, 1.08, "w1", 7), ("standard", 0.5, 0.53, 1.13, 2.13, "w2", 7)]
    rows += [("standard", 10.0 + i, 10.03 + i, 10.08 + i, 10.5 + i, "w1", 8 + i) for i in range(4)]
    cols = ["class", "arrival", "enqueued", "start", "end", "worker", "group"]
    jobs = pd.DataFrame(rows, columns=cols).assign(status="ok", tenant="t")
    _, receive = live_overheads(jobs)
    assert receive[1] == pytest.approx((0.05,) * 6)          # b: 1.13 - a's end 1.08, not 1.13 - 0.53
    _, ungrouped = live_overheads(jobs.drop(columns=["group"]))
    assert max(ungrouped[1]) == pytest.approx(0.60)


def test_turnaround_is_how_much_longer_a_worker_takes_coming_straight_from_a_job():
    from scenarios.overheads import live_overheads, turnaround

    rows = []
    for i in range(6):  # idle pickups: each standard job arrives to an idle w1 and is held 0.04 after its enqueue
        a = 10.0 * i
        rows.append(("standard", a, a + 0.03, a + 0.07, a + 1.07, "w1"))
    end = 0.0
    for i in range(7):  # a burst: the first finds w1 idle; each later one waits for the previous to end
        a = 100.0 + 0.1 * i
        start = a + 0.07 if i == 0 else end + 0.10  # ... and is held 0.10 after it
        end = start + 1.0
        rows.append(("standard", a, a + 0.03, start, end, "w1"))
    jobs = pd.DataFrame(rows, columns=["class", "arrival", "enqueued", "start", "end", "worker"]).assign(status="ok")
    assert turnaround(jobs) == pytest.approx(0.06)
    _, idle_only = live_overheads(jobs, chained=False)
    assert idle_only[1] == pytest.approx((0.04,) * 7)
    _, every = live_overheads(jobs)
    assert len(every[1]) == 13
    assert turnaround(jobs.iloc[:9]) == 0.0  # two chained pickups are too few to say


def test_probe_slices_pool_without_reading_one_run_as_following_another():
    from scenarios.overheads import live_overheads, pooled, turnaround

    cols = ["class", "arrival", "enqueued", "start", "end", "worker", "group"]
    # each slice: w001 idle, then job b arrives at 5.0; the two runs share names and one clock origin
    first = pd.DataFrame([("standard", 0.0, 0.03, 0.07, 1.07, "t-w001", 3),
                          ("standard", 5.0, 5.03, 5.07, 6.07, "t-w001", 4)], columns=cols)
    # slice 2's w001 starts a job at 0.5 while slice 1's w001 was busy until 1.07: not a chained pickup
    second = pd.DataFrame([("standard", 0.4, 0.43, 0.5, 1.5, "t-w001", 3),
                           ("standard", 6.0, 6.03, 6.08, 7.08, "t-w001", 5)], columns=cols)
    frames = [f.assign(status="ok", tenant="t") for f in (first, second)]
    _, receive = live_overheads(pooled(frames), chained=False)
    assert receive[1] == pytest.approx(sorted((0.04, 0.04, 0.07, 0.05)))
    assert turnaround(pooled(frames)) == 0.0
    # pooled naively, slice 2's first job reads as waiting for slice 1's w001 and its group 3
    _, naive = live_overheads(pd.concat(frames, ignore_index=True), chained=False)
    assert len(naive[1]) < 4 or sorted(naive[1]) != pytest.approx(sorted((0.04, 0.04, 0.07, 0.05)))


def test_measured_overheads_read_completion_submit_receive_and_turnaround_off_one_run():
    from scenarios.overheads import measured_overheads

    cols = ["class", "arrival", "enqueued", "start", "end", "worker", "service"]
    # six idle pickups on w1: submit 0.03, receive 0.04, live service 1.02 against a simulated 1.0
    live = pd.DataFrame([("standard", 10.0 * i, 10.0 * i + 0.03, 10.0 * i + 0.07, 10.0 * i + 1.09, "w1", 1.02)
                         for i in range(6)], columns=cols).assign(status="ok")
    sim = pd.DataFrame({"service": [1.0] * 6, "status": ["ok"] * 6})
    over = measured_overheads(live, sim, time_scale=3.0)
    assert over.completion_s == pytest.approx(0.02) and over.jobs == 6 and over.time_scale == 3.0
    assert over.dispatch_samples[1] == pytest.approx((0.03,) * 6)
    assert over.receive_samples[1] == pytest.approx((0.04,) * 6)
    assert over.turnaround_s == 0.0
    assert measured_overheads(live.assign(status="failed"), sim, 3.0).jobs == 0


def test_the_model_check_table_judges_each_run_where_the_simulated_wait_is_50_ms_or_more():
    from scenarios.gate import AgreementRow, format_model_check

    def run(p50_live, p95_live):
        return [AgreementRow("all.wait_p50", 0.080, p50_live), AgreementRow("all.wait_p95", 0.400, p95_live),
                AgreementRow("realtime.wait_p50", 0.010, 0.020),  # under 50 ms: shown, not judged
                AgreementRow("all.p50", 1.0, 1.5)]                # not a wait: not shown
    text = format_model_check([run(0.084, 0.380), run(0.100, 0.404)], draws=25)
    lines = text.splitlines()
    assert "run 1" in lines[1] and "run 2" in lines[1]
    assert lines[2].split()[1:] == ["+5.0%", "+25.0%"] and lines[3].split()[1:] == ["-5.0%", "+1.0%"]
    assert lines[4].split()[1:] == ["+100.0%", "+100.0%"] and "all.p50" not in text
    assert lines[-1].startswith("model check: 3 of 4 run-statistics") and "worst 25.0%" in lines[-1]


def test_rank_pairs_keep_a_pickups_submit_and_receive_together():
    from scenarios.overheads import live_overheads, rank_pairs

    cols = ["class", "arrival", "enqueued", "start", "end", "worker"]
    # eight idle pickups: the slower the router answered, the slower the worker's receive (a slow moment)
    rows = [("standard", 10.0 * i, 10.0 * i + 0.01 * (i + 1), 10.0 * i + 0.03 * (i + 1) + 0.01 * (i + 1), 0, "w1")
            for i in range(8)]
    jobs = pd.DataFrame(rows, columns=cols).assign(status="ok")
    jobs["end"] = jobs["start"] + 1.0
    submit, receive = live_overheads(jobs, chained=False)
    pairs = rank_pairs(jobs, submit, receive)
    assert len(pairs) == 8 and all(0 < a < 1 and 0 < b < 1 for a, b in pairs)
    assert [a for a, _ in pairs] == pytest.approx([b for _, b in pairs])  # co-monotone: equal ranks
    assert sorted(a for a, _ in pairs) == pytest.approx([(k + 0.5) / 8 for k in range(8)])
    assert rank_pairs(jobs.iloc[:3], submit, receive) is None  # too few pickups to say


@pytest.mark.parametrize("coupled", [True, False])
def test_coupled_overheads_draw_a_jobs_submit_and_receive_from_one_pair(fabric_config, coupled):
    from scenarios.overheads import PipelineOverheads

    s = load_scenario("steady-40k")
    fast_slow = ((0.01, 0.10),) * 3, ((0.02, 0.20),) * 3
    over = PipelineOverheads(0.0, 100, 3.0, *fast_slow,
                             rank_pairs=((0.25, 0.25), (0.75, 0.75)) if coupled else None)
    r = run_sim(s, s.effective_config(fabric_config), window_h=0.4, overheads=over)
    wait = (r.jobs["start"] - r.jobs["arrival"]).to_numpy()
    both_fast, both_slow = np.isclose(wait, 0.03).sum(), np.isclose(wait, 0.30).sum()
    mixed = np.isclose(wait, 0.12).sum() + np.isclose(wait, 0.21).sum()
    assert both_fast > 100 and both_slow > 100  # most jobs find an idle worker
    if coupled:
        assert mixed == 0  # a fast router answer never comes with a slow receive, nor the reverse
    else:
        assert mixed > 100


def test_turnaround_samples_are_every_chained_pickups_extra():
    from scenarios.overheads import turnaround, turnaround_samples

    rows = [("standard", 10.0 * i, 10.0 * i + 0.03, 10.0 * i + 0.07, 10.0 * i + 1.07, "w1") for i in range(6)]
    end = 0.0
    for i, extra in enumerate((0.0, 0.01, 0.02, 0.05, 0.10, 0.30, 0.04)):  # a burst: each chained but the first
        a = 100.0 + 0.1 * i
        start = a + 0.07 if i == 0 else end + 0.04 + extra
        end = start + 1.0
        rows.append(("standard", a, a + 0.03, start, end, "w1"))
    jobs = pd.DataFrame(rows, columns=["class", "arrival", "enqueued", "start", "end", "worker"]).assign(status="ok")
    assert turnaround_samples(jobs) == pytest.approx((0.01, 0.02, 0.04, 0.05, 0.10, 0.30))
    assert turnaround(jobs) == pytest.approx(0.045)  # their median, what the constant was
    assert turnaround_samples(jobs.iloc[:9]) is None


def test_the_simulator_draws_each_jobs_turnaround_from_the_samples(fabric_config):
    from scenarios.overheads import PipelineOverheads

    s = load_scenario("steady-40k")
    cfg = s.effective_config(fabric_config)

    def waits(**kw):
        over = PipelineOverheads(0.0, 100, 3.0, ((0.04,),) * 3, ((0.03,),) * 3, **kw)
        r = run_sim(s, cfg, window_h=0.4, overheads=over)
        return (r.jobs["start"] - r.jobs["arrival"]).to_numpy()

    one = waits(turnaround_s=0.3)
    assert np.array_equal(one, waits(turnaround_samples=(0.3,)))  # one sample: the constant
    none, most, mixed = waits(), waits(turnaround_s=0.6), waits(turnaround_samples=(0.0, 0.6))
    assert none.mean() < mixed.mean() < most.mean()  # chained pickups took 0 or 0.6, about half each
    assert not np.array_equal(mixed, one)
