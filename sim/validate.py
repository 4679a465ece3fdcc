"""The model against exact results: each check returns theory, estimate and CI.

The tests in ``tests/sim/test_validation.py`` assert on these checks, and
``comfyfab sim validate`` prints them, so the figures quoted anywhere are
the ones the tests see.  Theory tests use a fixed fleet (warm pool = max
workers, autoscaling off, no spot) on one tenant and exponential service
with the H100's mean; the first ``WARMUP_S`` seconds are dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from comfyfab.config import FabricConfig, load_config

from .metrics import confidence_interval
from .run import SimOptions, SimResult, simulate
from .state import FleetOptions
from .theory import cobham_waits, dlq_probability, exp_exceed, mmc_wait, saturated_throughput_per_hour
from .workload import StreamSpec, WorkloadSpec

WARMUP_S = 600.0
EXPONENTIAL = SimOptions(distribution="exponential", fleet=FleetOptions(autoscale=False, sample_s=0))


@dataclass(frozen=True)
class Check:
    """One comparison: the exact value, the replication mean and its 95 % CI."""

    name: str
    theory: float
    estimate: float
    ci_low: float
    ci_high: float
    reps: int

    @property
    def rel_error(self) -> float:
        return self.estimate / self.theory - 1

    @property
    def covered(self) -> bool:
        """Theory inside the CI (always False for a single replication)."""
        return bool(self.ci_low <= self.theory <= self.ci_high)


def fixed_fleet(workers: int, gpu: str = "H100", tenants: int = 1, base: FabricConfig | None = None,
                **overrides) -> FabricConfig:
    """``tenants`` tenants, each with ``workers`` always-on workers, no scaling room, no spot."""
    cfg = base or load_config()
    ov = {"fleet.warm_realtime_workers": workers, "fleet.autoscaling.max_workers": workers,
          "fleet.autoscaling.queue_depth_threshold": 10 ** 9, "fleet.spot.enabled_for": [], "fleet.gpu": gpu}
    ov.update(overrides)
    data = cfg.with_overrides(ov).model_dump(mode="json")
    data["tenants"] = [{**t, "gpu": None, "max_workers": None} for t in data["tenants"][:tenants]]
    return FabricConfig.model_validate(data)


def poisson(tenant: str, rates_per_s: dict[str, float], hours: float) -> WorkloadSpec:
    """Homogeneous Poisson streams, one per class, rates in jobs per second."""
    return WorkloadSpec(duration_h=hours, streams=tuple(
        StreamSpec(tenant=tenant, priority=c, per_day=r * 86400) for c, r in rates_per_s.items()))


def _mean_service(cfg: FabricConfig) -> float:
    return cfg.gpu().service_time().mean_s


def class_waits(result: SimResult, cls: int, warmup_s: float = WARMUP_S) -> np.ndarray:
    r = next(iter(result.runs.values()))
    m = (r.cls == cls) & (r.arrival >= warmup_s) & (r.status == 0)
    return (r.end - r.arrival - r.service)[m]


def _check(name: str, theory: float, values: list[float]) -> Check:
    mean, lo, hi = confidence_interval(values)
    return Check(name, theory, mean, lo, hi, len(values))


def mmc(c: int = 2, rho: float = 0.7, hours: float = 5, reps: int = 10, seed: int = 11) -> Check:
    """Mean wait in M/M/c against Erlang C."""
    cfg = fixed_fleet(c)
    mu = 1 / _mean_service(cfg)
    lam = rho * c * mu
    wl = poisson(cfg.tenants[0].id, {"standard": lam}, hours)
    waits = [float(class_waits(simulate(cfg, wl, seed=seed, rep=r, options=EXPONENTIAL), 1).mean())
             for r in range(reps)]
    return _check(f"M/M/{c} rho={rho} Wq (Erlang C)", mmc_wait(lam, mu, c), waits)


def cobham(c: int = 2, rho: float = 0.6, hours: float = 12, reps: int = 8, seed: int = 23,
           shares: tuple[float, float, float] = (0.2, 0.5, 0.3)) -> list[Check]:
    """Mean wait per class under non-preemptive strict priority against Cobham's formula."""
    cfg = fixed_fleet(c)
    mu = 1 / _mean_service(cfg)
    names = ("realtime", "standard", "batch")
    lams = [s * rho * c * mu for s in shares]
    wl = poisson(cfg.tenants[0].id, dict(zip(names, lams)), hours)
    theory = cobham_waits(lams, mu, c)
    per = [[], [], []]
    for r in range(reps):
        res = simulate(cfg, wl, seed=seed, rep=r, options=EXPONENTIAL)
        for k in range(3):
            per[k].append(float(class_waits(res, k).mean()))
    return [_check(f"M/M/{c} priority rho={rho} Wq {names[k]} (Cobham)", theory[k], per[k]) for k in range(3)]


def little(c: int = 2, rho: float = 0.75, hours: float = 8, seed: int = 5, sample_s: float = 0.25) -> Check:
    """Sampled time-average jobs in system L against lambda * W on the same path."""
    cfg = fixed_fleet(c)
    lam = rho * c / _mean_service(cfg)
    wl = poisson(cfg.tenants[0].id, {"realtime": lam * 0.3, "batch": lam * 0.7}, hours)
    opts = SimOptions(distribution="exponential", fleet=FleetOptions(autoscale=False, sample_s=sample_s))
    r = next(iter(simulate(cfg, wl, seed=seed, options=opts).runs.values()))
    L = float(np.mean([s[7] for s in r.samples]))
    lam_w = len(r.arrival) / r.horizon_s * float(np.mean(r.end - r.arrival))
    return Check("Little's law L = lambda W", lam_w, L, float("nan"), float("nan"), 1)


def dlq(mean_s: float = 10.0, timeout_s: int = 10, workers: int = 8, rate: float = 0.3, hours: float = 12,
        reps: int = 5, seed: int = 3) -> Check:
    """DLQ share with heartbeats off against P(S > timeout) ** max_receive_count."""
    cfg = fixed_fleet(workers, **{"gpus.H100.service_times.0.min_s": mean_s * 0.8,
                                  "gpus.H100.service_times.0.max_s": mean_s * 1.2,
                                  "queues.classes.realtime.visibility_timeout_s": timeout_s})
    wl = poisson(cfg.tenants[0].id, {"realtime": rate}, hours)
    off = SimOptions(distribution="exponential", fleet=FleetOptions(heartbeats=False, autoscale=False, sample_s=0))
    shares = [float(np.mean(next(iter(simulate(cfg, wl, seed=seed, rep=r, options=off).runs.values())).status == 1))
              for r in range(reps)]
    theory = dlq_probability(exp_exceed(mean_s, timeout_s), cfg.queues.cls("realtime").max_receive_count)
    return _check(f"DLQ share, heartbeats off, P(S>{timeout_s}s)^2", theory, shares)


def throughput(gpu: str, workers: int, seed_figure: float, hours: float = 2, seed: int = 1) -> Check:
    """Completions per hour of a saturated fixed fleet against the case study's figure."""
    cfg = fixed_fleet(workers, gpu)
    capacity = saturated_throughput_per_hour(workers, cfg.gpu(gpu).service_time().mean_s)
    wl = poisson(cfg.tenants[0].id, {"batch": 1.5 * capacity / 3600}, hours)
    opts = SimOptions(fleet=FleetOptions(autoscale=False, sample_s=0))
    r = next(iter(simulate(cfg, wl, seed=seed, options=opts).runs.values()))
    lo_s = 1800.0
    per_hour = float(np.sum((r.end >= lo_s) & (r.end < hours * 3600)) / (hours - lo_s / 3600))
    return Check(f"{workers} x {gpu} SDXL images/hour (case study)", seed_figure, per_hour,
                 float("nan"), float("nan"), 1)


def all_checks() -> pd.DataFrame:
    checks = [mmc(), *cobham(), little(), dlq(), throughput("A100", 1, 1200), throughput("H100", 8, 28000)]
    return pd.DataFrame([{**asdict(c), "rel_error": c.rel_error, "theory_in_ci": c.covered if c.reps > 1 else None}
                         for c in checks])
