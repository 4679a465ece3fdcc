"""Sweeps on every scheduler give the inline table (common random numbers), and bad schedulers are refused."""

from __future__ import annotations

import pytest

from comfyfab.config import load_config
from sim.errors import SchedulerError
from sim.sweep import sweep
from sim.workload import WorkloadSpec

distributed = pytest.importorskip("distributed")

CFG = load_config()
COLS = ["variant", "rep", "tenant", "class", "jobs", "completed", "latency_p95_s", "wait_mean_s",
        "total_cost_usd", "fleet.warm_realtime_workers", "fleet.gpu"]
VARIANTS = [{"fleet.warm_realtime_workers": 1, "fleet.gpu": "H100"},
            {"fleet.warm_realtime_workers": 3, "fleet.gpu": "H100"},
            {"fleet.warm_realtime_workers": 2, "fleet.gpu": "A100"}]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as c:
        yield c


@pytest.fixture(scope="module")
def workload():
    return WorkloadSpec.seed_month(CFG, days=0.05)


@pytest.fixture(scope="module")
def inline(workload):
    return sweep(CFG, workload, VARIANTS, reps=2, seed=11, processes=1)


def test_inline_table_is_ordered_and_shares_arrivals(inline):
    order = list(inline.drop_duplicates(["variant", "rep"])[["variant", "rep"]].itertuples(index=False))
    assert order == [(v, r) for v in range(3) for r in range(2)]
    jobs = inline[inline["class"] == "all"].groupby(["rep", "tenant"])["jobs"].nunique()
    assert (jobs == 1).all()  # every variant saw the very same arrivals in each replication
    p95 = inline[(inline["class"] == "realtime") & (inline["tenant"] == "all")].groupby("variant")["latency_p95_s"]
    assert p95.mean().nunique() == 3  # and they differ where the fleets differ


def test_dask_address_gives_the_inline_table(cluster, workload, inline):
    seen: list[tuple[int, int]] = []
    table = sweep(CFG, workload, VARIANTS, reps=2, seed=11, scheduler=cluster.scheduler_address,
                  progress=lambda k, n: seen.append((k, n)))
    assert table[COLS].equals(inline[COLS])
    assert seen == [(k, 6) for k in range(1, 7)]


def test_dask_client_is_used_and_left_open(cluster, workload, inline):
    with distributed.Client(cluster, set_as_default=False) as client:
        first = sweep(CFG, workload, VARIANTS[:1], reps=2, seed=11, scheduler=client)
        assert client.status == "running"
        third = sweep(CFG, workload, VARIANTS[2:], reps=2, seed=11, scheduler=client)  # a second sweep, same client
    assert first[COLS].equals(inline[inline["variant"] == 0][COLS].reset_index(drop=True))
    expected = inline[inline["variant"] == 2].assign(variant=0)[COLS].reset_index(drop=True)
    assert third[COLS].equals(expected)


def test_process_pool_gives_the_inline_table(workload, inline):
    table = sweep(CFG, workload, VARIANTS, reps=2, seed=11, processes=2, scheduler="processes")
    assert table[COLS].equals(inline[COLS])


@pytest.mark.parametrize("scheduler", ["threads", "localhost:8786", 8786])
def test_unknown_schedulers_are_refused(workload, scheduler):
    with pytest.raises(SchedulerError, match="scheduler must be"):
        sweep(CFG, workload, VARIANTS, scheduler=scheduler)


def test_an_unreachable_scheduler_is_a_clear_error(workload, monkeypatch):
    monkeypatch.setattr("sim.sweep.CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(SchedulerError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        sweep(CFG, workload, VARIANTS, scheduler="tcp://127.0.0.1:9")


@pytest.mark.parametrize("kwargs, match", [({"reps": 0}, "reps"), ({"variants": []}, "at least one variant")])
def test_bad_sweeps_are_refused(workload, kwargs, match):
    args = {"variants": VARIANTS, "reps": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        sweep(CFG, workload, args.pop("variants"), **args)


def test_cli_sweep_and_plan_on_a_dask_cluster(cluster, tmp_path, capsys):
    from .test_cli import run

    addr = cluster.scheduler_address
    assert run(["sim", "sweep", "--days", "0.05", "--vary", "fleet.warm_realtime_workers=1,3", "--reps", "2",
                "--scheduler", addr, "--out", str(tmp_path / "s.csv")]) == 0
    assert "monthly_cost_usd" in capsys.readouterr().out
    assert run(["plan", "--slo", "realtime.p95<=2s", "--per-day", "20000", "--gpus", "A100,H100", "--warm", "1",
                "--max-workers", "4", "--thresholds", "10", "--days", "0.1", "--reps", "1",
                "--scheduler", addr]) == 0
    assert "H100, warm pool 1" in capsys.readouterr().out


def test_cli_refuses_a_bad_scheduler_without_a_traceback():
    from comfyfab.cli import CliError

    from .test_cli import run

    with pytest.raises(CliError, match="scheduler must be"):
        run(["sim", "sweep", "--days", "0.05", "--vary", "fleet.warm_realtime_workers=1", "--scheduler", "threads"])
