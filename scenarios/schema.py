"""The scenario schema: traffic, faults, config overrides and SLO assertions, as one frozen model.

A scenario file is YAML::

    name: monday-morning-burst
    duration_h: 3
    tenants: [acme-health]            # optional: only these tenants of the fabric
    config: {fleet.autoscaling.max_workers: 32}   # dotted overrides, validated into FabricConfig
    traffic:
      per_day: 40000                  # jobs a day over the scenario's tenants
      mix: {realtime: 0.3, standard: 0.5, batch: 0.2}
      diurnal: office                 # flat | office | 24 hourly weights
      start_hour: 7                   # the clock hour the scenario starts at
      bursts: [{start_h: 1, duration_h: 1, multiplier: 6}]
    faults:
      - {kind: spot_storm, at_h: 0.5, duration_h: 0.5, interruptions_per_hour: 30}
    assert: ["realtime.p95 <= 2s", "lost == 0", "dlq <= 5"]
    live: {time_scale: 20, window_h: 0.1}   # optional: how to replay it on the live pipeline

Traffic becomes a :class:`sim.workload.WorkloadSpec` (or a trace DataFrame),
so the simulator and the live replay draw the very same arrival sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from comfyfab.config import PRIORITY_ORDER, ConfigError, FabricConfig, PriorityName
from sim.errors import SimError
from sim.workload import OFFICE_HOURS, SEED_CLASS_MIX, BurstSpec, StreamSpec, WorkloadSpec, load_trace

from .assertions import Assertion, parse_assertion
from .errors import ScenarioFileError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TrafficSpec(_Frozen):
    """What arrives: a daily volume split over tenants and classes, shaped by a profile and bursts, or a trace."""

    per_day: float | None = Field(None, gt=0, description="jobs a day over all the scenario's tenants")
    tenants: dict[str, float] | None = Field(None, description="share of per_day per tenant; equal when unset")
    mix: dict[PriorityName, float] = Field(default_factory=lambda: dict(SEED_CLASS_MIX))
    diurnal: Literal["flat", "office"] | tuple[float, ...] = "flat"
    start_hour: int = Field(0, ge=0, le=23, description="clock hour at t = 0 (rotates the diurnal profile)")
    bursts: tuple[BurstSpec, ...] = ()
    streams: tuple[StreamSpec, ...] = Field((), description="extra explicit Poisson streams")
    trace: str | None = Field(None, description="CSV/Parquet trace, relative to the scenario file")

    @field_validator("mix")
    @classmethod
    def _mix(cls, v: dict[str, float]) -> dict[str, float]:
        if any(x < 0 for x in v.values()) or abs(sum(v.values()) - 1) > 1e-6:
            raise ValueError(f"class mix must be non-negative shares summing to 1, got {v}")
        return v

    @field_validator("diurnal")
    @classmethod
    def _profile(cls, v: Any) -> Any:
        if isinstance(v, tuple) and (len(v) != 24 or min(v) < 0 or sum(v) <= 0):
            raise ValueError("diurnal needs 24 non-negative hourly weights, not all zero")
        return v

    @model_validator(mode="after")
    def _some_traffic(self) -> "TrafficSpec":
        if self.trace is None and self.per_day is None and not self.streams:
            raise ValueError("traffic needs per_day, streams or a trace")
        if self.trace is not None and (self.per_day is not None or self.streams):
            raise ValueError("traffic is either a trace or per_day/streams, not both")
        if self.tenants is not None and (not self.tenants or any(x < 0 for x in self.tenants.values())
                                         or sum(self.tenants.values()) <= 0):
            raise ValueError("tenant shares must be non-negative and not all zero")
        return self

    def profile(self) -> tuple[float, ...] | None:
        base = OFFICE_HOURS if self.diurnal == "office" else None if self.diurnal == "flat" else self.diurnal
        if base is None:
            return None
        return tuple(base[(h + self.start_hour) % 24] for h in range(24))


class SpotStorm(_Frozen):
    """Spot capacity reclaimed in a window: each spot worker is interrupted at this Poisson rate (notice first)."""

    kind: Literal["spot_storm"]
    at_h: float = Field(ge=0)
    duration_h: float = Field(gt=0)
    interruptions_per_hour: float = Field(gt=0, description="per spot worker, inside the window")
    tenant: str | None = None


class WorkerCrash(_Frozen):
    """Busy on-demand workers die without a drain; their jobs reappear after the visibility timeout."""

    kind: Literal["worker_crash"]
    at_h: float = Field(ge=0)
    count: int = Field(1, ge=1)
    tenant: str | None = None


class PoisonJob(_Frozen):
    """Jobs whose workflow always fails: two attempts, then the DLQ."""

    kind: Literal["poison_job"]
    at_h: float = Field(ge=0)
    count: int = Field(1, ge=1)
    priority: PriorityName = "standard"
    tenant: str | None = None


class RegionFailover(_Frozen):
    """The primary region's ingress is lost; DNS fails over to the warm standby after ``outage_s``."""

    kind: Literal["region_failover"]
    at_h: float = Field(ge=0)
    outage_s: float | None = Field(None, gt=0, description="default: network.failover_s of the config")


class BlueGreen(_Frozen):
    """A new worker image: green starts and passes its health check, then blue drains and stops."""

    kind: Literal["blue_green"]
    at_h: float = Field(ge=0)
    version: str = Field(min_length=1)
    tenant: str | None = None


Fault = Annotated[Union[SpotStorm, WorkerCrash, PoisonJob, RegionFailover, BlueGreen], Field(discriminator="kind")]


class LiveSpec(_Frozen):
    """How the scenario runs on the live pipeline: time compression and how much of it to replay."""

    time_scale: float = Field(20.0, gt=0, description="fabric seconds per wall second")
    window_h: float | None = Field(None, gt=0, description="replay only arrivals before this (fabric hours)")
    agreement_window_h: float | None = Field(
        None, gt=0, description="the window --mode both uses instead: p95s need ~100 arrivals to mean anything")
    drain_wall_s: float = Field(60.0, gt=0, description="wall seconds to wait for the last jobs")
    sample_wall_s: float = Field(0.25, gt=0, description="wall seconds between depth/worker samples")


class Scenario(_Frozen):
    """One named, replayable situation and the SLOs that must hold in it."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    duration_h: float = Field(gt=0)
    seed: int = Field(0, ge=0)
    tenants: tuple[str, ...] | None = None
    config: dict[str, Any] = Field(default_factory=dict, description="dotted-path overrides of the fabric")
    traffic: TrafficSpec
    faults: tuple[Fault, ...] = ()
    assertions: tuple[str, ...] = Field((), alias="assert")
    live: LiveSpec | None = None
    base_dir: str | None = Field(None, exclude=True, description="folder the file was read from")

    @field_validator("assertions")
    @classmethod
    def _parse(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for text in v:
            parse_assertion(text)  # an AssertionSpecError is a ValueError: pydantic reports the field
        return v

    @property
    def checks(self) -> tuple[Assertion, ...]:
        return tuple(parse_assertion(a) for a in self.assertions)

    @property
    def duration_s(self) -> float:
        return self.duration_h * 3600.0

    def faults_of(self, kind: type) -> list:
        return [f for f in self.faults if isinstance(f, kind)]

    # -- into the fabric ---------------------------------------------------
    def effective_config(self, base: FabricConfig) -> FabricConfig:
        """The base config restricted to the scenario's tenants, with its overrides applied."""
        cfg = base
        if self.tenants is not None:
            known = [t.id for t in base.tenants]
            missing = [t for t in self.tenants if t not in known]
            if missing:
                raise ScenarioFileError(f"scenario {self.name}: tenants {missing} are not in the config ({known})")
            data = base.model_dump(mode="json")
            data["tenants"] = [t for t in data["tenants"] if t["id"] in self.tenants]
            cfg = FabricConfig.model_validate(data)
        try:
            cfg = cfg.with_overrides(self.config) if self.config else cfg
        except ConfigError as exc:
            raise ScenarioFileError(f"scenario {self.name}: {exc}") from None
        ids = {t.id for t in cfg.tenants}
        named = [f.tenant for f in self.faults if getattr(f, "tenant", None)] + list(self.traffic.tenants or {})
        unknown = sorted({t for t in named if t not in ids})
        if unknown:
            raise ScenarioFileError(f"scenario {self.name}: tenants {unknown} are not in the effective config")
        return cfg

    def workload(self, cfg: FabricConfig) -> WorkloadSpec | pd.DataFrame:
        """The traffic as the simulator's workload (the live replay draws from the same tables)."""
        t = self.traffic
        if t.trace is not None:
            path = Path(t.trace)
            if not path.is_absolute() and self.base_dir:
                path = Path(self.base_dir) / path
            try:
                return load_trace(path)
            except SimError as exc:
                raise ScenarioFileError(f"scenario {self.name}: {exc}") from None
        tenants = [x.id for x in cfg.tenants]
        shares = t.tenants or {tid: 1.0 for tid in tenants}
        total = sum(shares.values())
        streams = list(t.streams)
        if t.per_day is not None:
            for tid, share in shares.items():
                for c in PRIORITY_ORDER:
                    rate = t.per_day * share / total * t.mix.get(c, 0.0)
                    if rate > 0:
                        streams.append(StreamSpec(tenant=tid, priority=c, per_day=rate))
        try:
            return WorkloadSpec(duration_h=self.duration_h, streams=tuple(streams), diurnal=t.profile(),
                                bursts=t.bursts)
        except ValueError as exc:
            raise ScenarioFileError(f"scenario {self.name}: traffic: {exc}") from None
