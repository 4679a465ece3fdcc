"""The model against queueing theory and the case study's headline figures.

Each check runs independent replications; the theoretical value must lie in
the 95 % confidence interval of the replication means, and the point
estimate within the stated tolerance.  Exponential service is used where
the theory assumes it.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.fleet import FleetOptions
from sim.metrics import confidence_interval
from sim.run import SimOptions, simulate
from sim.theory import (cobham_waits, dlq_probability, exp_exceed, mmc_wait,
                        saturated_throughput_per_hour)

from .helpers import fixed_fleet, poisson

EXP = SimOptions(distribution="exponential", fleet=FleetOptions(autoscale=False, sample_s=0))
H100_MEAN = (0.85 + 1.1) / 2
WARMUP_S = 600.0


def _waits(result, cls: int) -> np.ndarray:
    r = next(iter(result.runs.values()))
    m = (r.cls == cls) & (r.arrival >= WARMUP_S) & (r.status == 0)
    return (r.end - r.arrival - r.service)[m]


def test_mmc_mean_wait_matches_erlang_c():
    c, rho = 2, 0.7
    mu = 1 / H100_MEAN
    lam = rho * c * mu
    cfg = fixed_fleet(c)
    wl = poisson(cfg.tenants[0].id, {"standard": lam}, hours=5)
    means = [_waits(simulate(cfg, wl, seed=11, rep=r, options=EXP), 1).mean() for r in range(10)]
    theory = mmc_wait(lam, mu, c)
    mean, lo, hi = confidence_interval(means)
    assert lo <= theory <= hi, (theory, mean, lo, hi)
    assert abs(mean / theory - 1) < 0.03


def test_three_priority_classes_match_cobham():
    c, rho = 2, 0.6
    mu = 1 / H100_MEAN
    shares = {"realtime": 0.2, "standard": 0.5, "batch": 0.3}
    lams = {k: v * rho * c * mu for k, v in shares.items()}
    cfg = fixed_fleet(c)
    wl = poisson(cfg.tenants[0].id, lams, hours=12)
    theory = cobham_waits(list(lams.values()), mu, c)
    per_class = [[] for _ in range(3)]
    for r in range(8):
        res = simulate(cfg, wl, seed=23, rep=r, options=EXP)
        for k in range(3):
            per_class[k].append(_waits(res, k).mean())
    for k in range(3):
        mean, lo, hi = confidence_interval(per_class[k])
        assert lo <= theory[k] <= hi, (k, theory[k], mean, lo, hi)
        assert abs(mean / theory[k] - 1) < 0.02, (k, theory[k], mean)


def test_littles_law_holds_on_the_sampled_path():
    c = 2
    lam = 0.75 * c / H100_MEAN
    cfg = fixed_fleet(c)
    wl = poisson(cfg.tenants[0].id, {"realtime": lam * 0.3, "batch": lam * 0.7}, hours=8)
    opts = SimOptions(distribution="exponential", fleet=FleetOptions(autoscale=False, sample_s=0.25))
    res = simulate(cfg, wl, seed=5, options=opts)
    r = next(iter(res.runs.values()))
    L = np.mean([s[7] for s in r.samples])          # time-average jobs in system, sampled
    lam_hat = len(r.arrival) / r.horizon_s          # arrival rate
    W = float(np.mean(r.end - r.arrival))           # mean time in system
    assert abs(L / (lam_hat * W) - 1) < 0.005, (L, lam_hat * W)


def test_dlq_rate_without_heartbeats_is_p_exceed_squared():
    mean_s, vt = 10.0, 10
    cfg = fixed_fleet(8, **{"gpus.H100.service_times.0.min_s": 8.0, "gpus.H100.service_times.0.max_s": 12.0,
                            "queues.classes.realtime.visibility_timeout_s": vt})
    wl = poisson(cfg.tenants[0].id, {"realtime": 0.3}, hours=12)
    theory = dlq_probability(exp_exceed(mean_s, vt), cfg.queues.cls("realtime").max_receive_count)
    off = SimOptions(distribution="exponential", fleet=FleetOptions(heartbeats=False, autoscale=False, sample_s=0))
    rates, redelivered = [], 0
    for r in range(5):
        run = next(iter(simulate(cfg, wl, seed=3, rep=r, options=off).runs.values()))
        rates.append(float(np.mean(run.status == 1)))
        redelivered += run.redeliveries
        assert not (run.status == 2).any()
    mean, lo, hi = confidence_interval(rates)
    assert lo <= theory <= hi, (theory, mean, lo, hi)
    assert redelivered > 0
    on = SimOptions(distribution="exponential", fleet=FleetOptions(autoscale=False, sample_s=0))
    run = next(iter(simulate(cfg, wl, seed=3, options=on).runs.values()))
    assert run.redeliveries == 0 and not (run.status == 1).any()


@pytest.mark.parametrize("gpu,workers,seed_figure", [("A100", 1, 1200), ("H100", 8, 28000)])
def test_seed_headline_throughput(gpu, workers, seed_figure):
    cfg = fixed_fleet(workers, gpu)
    capacity = saturated_throughput_per_hour(workers, cfg.gpu(gpu).service_time().mean_s)
    wl = poisson(cfg.tenants[0].id, {"batch": 1.5 * capacity / 3600}, hours=2)
    opts = SimOptions(fleet=FleetOptions(autoscale=False, sample_s=0))
    r = next(iter(simulate(cfg, wl, seed=1, options=opts).runs.values()))
    per_hour = np.sum((r.end >= 1800) & (r.end < 7200)) / 1.5
    assert abs(per_hour / capacity - 1) < 0.01        # the model saturates as it should
    assert abs(per_hour / seed_figure - 1) < 0.10     # and lands within 10 % of the case study
