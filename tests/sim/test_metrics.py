from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.fleet import FleetOptions
from sim.metrics import Metric, across, confidence_interval, fleet_totals, summary
from sim.run import SimOptions, simulate

from .helpers import fixed_fleet, poisson

DOC = (Path(__file__).parents[2] / "sim" / "METRICS.md").read_text()


def test_every_metric_is_documented():
    for m in Metric:
        assert f"`{m.value}`" in DOC, m


def test_fixed_fleet_summary_and_cost():
    cfg = fixed_fleet(2)
    tid = cfg.tenants[0].id
    res = simulate(cfg, poisson(tid, {"realtime": 0.5, "batch": 0.5}, hours=2), seed=1,
                   options=SimOptions(fleet=FleetOptions(autoscale=False)))
    s = summary(res)
    assert set(s["class"]) == {"realtime", "standard", "batch", "all"}
    row = s[(s.tenant == tid) & (s["class"] == "all")].iloc[0]
    r = res.runs[tid]
    gpu = cfg.gpu("H100")
    assert row["cost_usd"] == pytest.approx(gpu.reserved_usd_per_hour * 2 * r.end_s / 3600)
    assert row["completed"] == len(r.arrival) and row["dlq"] == 0
    assert row["utilisation"] == pytest.approx(r.service.sum() / (2 * r.end_s))
    assert row["cost_per_1000_images"] == pytest.approx(row["cost_usd"] / row["completed"] * 1000)
    rt = s[(s.tenant == tid) & (s["class"] == "realtime")].iloc[0]
    assert rt["latency_p50_s"] <= rt["latency_p95_s"] <= rt["latency_p99_s"]
    assert rt["slo_p95_s"] == 2.0 and 0 <= rt["slo_attainment"] <= 1 and rt["slo_met"] in (0.0, 1.0)
    assert rt["throughput_per_hour"] == pytest.approx(rt["completed"] / 2)
    tot = fleet_totals(res)
    assert tot["cost_usd"] == pytest.approx(row["cost_usd"])
    assert tot["monthly_cost_usd"] == pytest.approx(gpu.reserved_usd_per_hour * 2 * 720)


def test_confidence_interval_and_across():
    m, lo, hi = confidence_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo == pytest.approx(2 - 4.302653 / np.sqrt(3)) and hi == pytest.approx(4 - lo)
    assert np.isnan(confidence_interval([5.0])[1])
    a = pd.DataFrame({"tenant": ["x"], "class": ["all"], "jobs": [10.0]})
    b = a.assign(jobs=[14.0])
    out = across([a, b], metrics=["jobs"])
    assert out.loc[0, "jobs"] == 12.0 and out.loc[0, "reps"] == 2 and out.loc[0, "jobs_ci_low"] < 12


def test_result_saves_its_config(tmp_path):
    pytest.importorskip("pyarrow")  # jobs are saved as Parquet
    cfg = fixed_fleet(1)
    res = simulate(cfg, poisson(cfg.tenants[0].id, {"standard": 0.2}, hours=0.5), seed=2)
    d = res.save(tmp_path / "run")
    assert (d / "config.yaml").exists() and (d / "summary.csv").exists()
    assert '"config_digest": "%s"' % cfg.digest() in (d / "run.json").read_text()
    jobs = pd.read_parquet(d / "jobs.parquet")
    assert len(jobs) == res.jobs and (jobs["latency"] >= jobs["service"] - 1e-9).all()
