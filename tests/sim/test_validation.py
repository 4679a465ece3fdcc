"""The model against queueing theory and the case study's headline figures.

Each check runs independent replications; the theoretical value must lie in
the 95 % confidence interval of the replication means, and the point
estimate within the stated tolerance.  Exponential service is used where
the theory assumes it.  ``comfyfab sim validate`` prints the same checks.
"""

from __future__ import annotations

import pytest

from sim import validate
from sim.fleet import FleetOptions
from sim.run import SimOptions, simulate


def test_mmc_mean_wait_matches_erlang_c():
    c = validate.mmc()
    assert c.covered, c
    assert abs(c.rel_error) < 0.03, c


def test_three_priority_classes_match_cobham():
    for c in validate.cobham():
        assert c.covered, c
        assert abs(c.rel_error) < 0.02, c


def test_littles_law_holds_on_the_sampled_path():
    c = validate.little()
    assert abs(c.rel_error) < 0.005, c


def test_dlq_rate_without_heartbeats_is_p_exceed_squared():
    c = validate.dlq()
    assert c.covered, c
    assert abs(c.rel_error) < 0.05, c


def test_heartbeats_on_never_dead_letter_the_same_jobs():
    cfg = validate.fixed_fleet(8, **{"gpus.H100.service_times.0.min_s": 8.0, "gpus.H100.service_times.0.max_s": 12.0,
                                     "queues.classes.realtime.visibility_timeout_s": 10})
    wl = validate.poisson(cfg.tenants[0].id, {"realtime": 0.3}, hours=4)
    on = SimOptions(distribution="exponential", fleet=FleetOptions(autoscale=False, sample_s=0))
    run = next(iter(simulate(cfg, wl, seed=3, options=on).runs.values()))
    assert run.redeliveries == 0 and not (run.status == 1).any() and (run.status == 0).all()


@pytest.mark.parametrize("gpu,workers,seed_figure", [("A100", 1, 1200), ("H100", 8, 28000)])
def test_seed_headline_throughput(gpu, workers, seed_figure):
    c = validate.throughput(gpu, workers, seed_figure)
    capacity = workers * 3600 / validate.fixed_fleet(workers, gpu).gpu(gpu).service_time().mean_s
    assert abs(c.estimate / capacity - 1) < 0.01, c  # the model saturates as it should
    assert abs(c.rel_error) < 0.10, c                # and lands within 10 % of the case study
