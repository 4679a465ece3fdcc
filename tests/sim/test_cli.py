"""The sim commands, driven through their own parser (independent of other areas' modules)."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from comfyfab.cli import CliError, Context
from sim import cli as simcli
from sim.workload import StreamSpec, WorkloadSpec, materialize, write_trace

from .helpers import fixed_fleet


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", action="append")
    sub = parser.add_subparsers()
    bench = sub.add_parser("bench").add_subparsers()
    simcli.register(sub, bench)
    args = parser.parse_args(argv)
    return args.func(args, Context(args))


def test_sim_run_prints_metrics_and_saves(tmp_path, capsys):
    pytest.importorskip("pyarrow")  # jobs are saved as Parquet
    assert run(["sim", "run", "--days", "0.2", "--reps", "2", "--out", str(tmp_path), "--plots"]) == 0
    out = capsys.readouterr().out
    assert "latency_p95_s" in out and "jobs/s" in out and "per 1,000 images" in out
    assert (tmp_path / "rep1" / "depth.png").exists() and (tmp_path / "summary_ci.csv").exists()
    ci = pd.read_csv(tmp_path / "summary_ci.csv")
    assert (ci["latency_p95_s_ci_low"].dropna() <= ci["latency_p95_s"].dropna()).all()


def test_sim_run_replays_a_trace(tmp_path, capsys):
    cfg = fixed_fleet(1)
    spec = WorkloadSpec(duration_h=0.2, streams=(StreamSpec(tenant=cfg.tenants[0].id, priority="batch",
                                                            per_day=20000),))
    path = write_trace(materialize(spec, cfg, seed=1), tmp_path / "t.csv")
    assert run(["sim", "run", "--trace", str(path)]) == 0
    assert "acme-health" in capsys.readouterr().out


def test_bench_prints_jobs_per_second(capsys):
    assert run(["bench", "sim", "--jobs", "20000", "--no-progress"]) == 0
    assert "simulated jobs per wall-second" in capsys.readouterr().out


def test_bench_saves_a_plot_when_asked(tmp_path, capsys):
    from PIL import Image

    png = tmp_path / "plots" / "bench.png"
    assert run(["bench", "sim", "--jobs", "20000", "--no-progress", "--plot", str(png)]) == 0
    assert f"plot in {png}" in capsys.readouterr().out
    with Image.open(png) as im:
        assert im.format == "PNG" and im.height > 400


def test_sweep_and_plan(tmp_path, capsys):
    assert run(["sim", "sweep", "--days", "0.1", "--vary", "fleet.warm_realtime_workers=1,3",
                "--processes", "1", "--out", str(tmp_path / "s.csv")]) == 0
    table = pd.read_csv(tmp_path / "s.csv")
    assert sorted(table["fleet.warm_realtime_workers"].unique()) == [1, 3]
    assert "monthly_cost_usd" in capsys.readouterr().out
    assert run(["plan", "--slo", "realtime.p95<=2s", "--per-day", "20000", "--gpus", "A100,H100",
                "--warm", "1,2", "--max-workers", "4", "--thresholds", "10", "--days", "0.25",
                "--reps", "1", "--processes", "1"]) == 0
    out = capsys.readouterr().out
    assert "cheapest fleet" in out and "H100, warm pool" in out and "/month" in out


@pytest.mark.parametrize("argv,match", [
    (["plan", "--slo", "realtime.p95=2", "--per-day", "10"], "cannot read SLO"),
    (["plan", "--slo", "realtime.p95<=0.5s", "--per-day", "40000", "--gpus", "A100", "--warm", "1",
      "--max-workers", "2", "--thresholds", "10", "--days", "0.05", "--reps", "1", "--processes", "1"],
     "no fleet"),
    (["sim", "run", "--trace", "/nonexistent.csv"], "trace not found"),
    (["sim", "run", "--days", "0.01", "--distribution", "empirical"], "no measured samples"),
])
def test_expected_failures_are_cli_errors(argv, match):
    with pytest.raises(CliError, match=match):
        run(argv)


def test_a_batched_profile_is_named_with_what_it_leaves_out(capsys):
    """A batch-4 profile gives each job a quarter of the batch's time: the fleet's capacity is right,
    its latencies are not; the command says so (and says nothing for a batch-1 profile)."""
    from pathlib import Path

    from sim.service import batched_profiles

    profiles = Path(__file__).resolve().parents[2] / "profiles"
    b4, b1 = profiles / "h100-sdxl-1024-20-b4-compiled.csv", profiles / "h100-sdxl-1024-20-b1-compiled.csv"
    assert batched_profiles([b4, b1, None, b4]) == {str(b4): 4}
    assert run(["--set", f"gpus.H100.profile_file={b4}", "sim", "run", "--days", "0.02"]) == 0
    err = capsys.readouterr().err
    assert f"{b4} was measured at batch 4" in err and "up to 3 more shares" in err
    assert run(["--set", f"gpus.H100.profile_file={b1}", "sim", "run", "--days", "0.02"]) == 0
    assert "measured at batch" not in capsys.readouterr().err
