"""Configs and workloads shared by the simulator tests."""

from __future__ import annotations

from comfyfab.config import FabricConfig, load_config
from sim.workload import StreamSpec, WorkloadSpec


def fixed_fleet(workers: int, gpu: str = "H100", tenants: int = 1, **extra) -> FabricConfig:
    """One tenant (or a few), ``workers`` always-on workers, no autoscaling room, no spot."""
    cfg = load_config()
    overrides = {"fleet.warm_realtime_workers": workers, "fleet.autoscaling.max_workers": workers,
                 "fleet.autoscaling.queue_depth_threshold": 10 ** 9, "fleet.spot.enabled_for": [],
                 "fleet.gpu": gpu}
    overrides.update(extra)
    data = cfg.with_overrides(overrides).model_dump(mode="json")
    data["tenants"] = [{**t, "gpu": None, "max_workers": None} for t in data["tenants"][:tenants]]
    return FabricConfig.model_validate(data)


def poisson(tenant: str, rates_per_s: dict[str, float], hours: float) -> WorkloadSpec:
    return WorkloadSpec(duration_h=hours, streams=tuple(
        StreamSpec(tenant=tenant, priority=c, per_day=r * 86400) for c, r in rates_per_s.items()))
