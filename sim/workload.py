"""Arrivals: what the fleet is asked to do, as per-tenant job tables.

A :class:`WorkloadSpec` describes traffic as Poisson streams, one per
(tenant, class, model/resolution/steps), optionally shaped by an hourly
diurnal profile and by bursts; both are applied by thinning a homogeneous
Poisson process at the peak rate (Lewis & Shedler), so a stream stays an
exact non-homogeneous Poisson process.  A trace (CSV or Parquet with columns
``timestamp, tenant, class, resolution, steps, model, seed``) replays
recorded arrivals instead.

Either way the result is one :class:`JobTable` per tenant: arrival times in
order, class index, a key into (model, resolution, steps), and one uniform
draw per job from which the GPU's service time is made later.  Each stream
and each tenant's service draws come from their own numpy generator,
derived from one :class:`numpy.random.SeedSequence`, so adding a stream does
not change the others and a replication is ``rep`` in the spawn key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from comfyfab.config import PRIORITY_ORDER, FabricConfig, PriorityName

from .errors import TraceError, WorkloadError
from .tables import read_table

TRACE_COLUMNS = ("timestamp", "tenant", "class", "resolution", "steps", "model", "seed")
SEED_MONTH_JOBS = 2_400_000
SEED_CLASS_MIX: Mapping[str, float] = {"realtime": 0.2, "standard": 0.5, "batch": 0.3}
# Relative hourly load (UTC); business hours peak.  Normalised to mean 1 when used.
OFFICE_HOURS: tuple[float, ...] = (
    0.3, 0.25, 0.2, 0.2, 0.25, 0.35, 0.6, 0.9, 1.3, 1.6, 1.7, 1.7,
    1.6, 1.7, 1.7, 1.6, 1.5, 1.3, 1.1, 0.9, 0.7, 0.55, 0.45, 0.35)

# Component ids in the seed's spawn key: (rep, component, index)
ARRIVALS, SERVICE, COLD_START, SPOT, RETRY, DISPATCH, RECEIVE, GROUP, TURNAROUND = range(9)


def component_rng(seed: int, rep: int, component: int, index: int = 0, draw: int = 0) -> np.random.Generator:
    """The generator of one component of one replication; independent of all others.  ``draw`` > 0
    gives further independent streams of the same component (re-drawing it alone)."""
    key = (rep, component, index) if draw == 0 else (rep, component, index, draw)
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=key))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StreamSpec(_Frozen):
    """One Poisson stream of identical requests from one tenant in one class."""

    tenant: str
    priority: PriorityName
    per_day: float = Field(gt=0, description="mean arrivals per day before shaping")
    model: str = "sdxl"
    resolution: int = Field(1024, gt=0)
    steps: int = Field(20, gt=0)


class BurstSpec(_Frozen):
    """A window in which the rate of matching streams is multiplied."""

    start_h: float = Field(ge=0)
    duration_h: float = Field(gt=0)
    multiplier: float = Field(gt=0)
    tenant: str | None = None
    priority: PriorityName | None = None

    def applies(self, s: StreamSpec) -> bool:
        return self.tenant in (None, s.tenant) and self.priority in (None, s.priority)


class WorkloadSpec(_Frozen):
    """Synthetic traffic: streams, an optional diurnal profile and bursts, over ``duration_h``."""

    duration_h: float = Field(gt=0)
    streams: tuple[StreamSpec, ...]
    diurnal: tuple[float, ...] | None = Field(None, description="24 relative hourly rates")
    bursts: tuple[BurstSpec, ...] = ()

    @field_validator("diurnal")
    @classmethod
    def _hours(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and (len(v) != 24 or min(v) < 0 or sum(v) <= 0):
            raise ValueError("diurnal needs 24 non-negative hourly weights, not all zero")
        return v

    @model_validator(mode="after")
    def _streams(self) -> "WorkloadSpec":
        if not self.streams:
            raise ValueError("a workload needs at least one stream")
        return self

    @property
    def duration_s(self) -> float:
        return self.duration_h * 3600.0

    def expected_jobs(self) -> float:
        return sum(s.per_day for s in self.streams) * self.duration_h / 24 * self._burst_gain()

    def _burst_gain(self) -> float:
        extra = sum(b.duration_h * (b.multiplier - 1) * sum(s.per_day for s in self.streams if b.applies(s))
                    for b in self.bursts)
        base = sum(s.per_day for s in self.streams) * self.duration_h
        return 1 + extra / base if base else 1.0

    def scaled(self, factor: float) -> "WorkloadSpec":
        """The same shape with every stream's rate multiplied by ``factor``."""
        return self.model_copy(update={"streams": tuple(
            s.model_copy(update={"per_day": s.per_day * factor}) for s in self.streams)})

    @classmethod
    def seed_month(cls, cfg: FabricConfig, days: float = 30, jobs: float = SEED_MONTH_JOBS,
                   mix: Mapping[str, float] = SEED_CLASS_MIX, diurnal: bool = True,
                   bursts: bool = True) -> "WorkloadSpec":
        """The case study's traffic: ``jobs`` a month over all tenants, shared evenly."""
        if abs(sum(mix.values()) - 1) > 1e-9 or set(mix) - set(PRIORITY_ORDER):
            raise WorkloadError(f"class mix must be fractions of {PRIORITY_ORDER} summing to 1, got {dict(mix)}")
        per_day = jobs / 30.0 / len(cfg.tenants)
        streams = tuple(StreamSpec(tenant=t.id, priority=c, per_day=per_day * mix[c])
                        for t in cfg.tenants for c in PRIORITY_ORDER if mix.get(c, 0) > 0)
        burst = ()
        if bursts and days >= 1:
            # one campaign per tenant: triple the batch rate for two hours on a weekday afternoon
            burst = tuple(BurstSpec(start_h=24 * ((2 + 7 * i) % max(int(days), 1)) + 14, duration_h=2,
                                    multiplier=3, tenant=t.id, priority="batch")
                          for i, t in enumerate(cfg.tenants))
        return cls(duration_h=days * 24, streams=streams, diurnal=OFFICE_HOURS if diurnal else None,
                   bursts=burst)


@dataclass
class JobTable:
    """One tenant's jobs in arrival order (parallel numpy arrays)."""

    t: np.ndarray          # arrival time, seconds from the start
    cls: np.ndarray        # class index into PRIORITY_ORDER
    key: np.ndarray        # index into ``keys``
    keys: list[tuple[str, int, int]]  # (model, resolution, steps)
    u: np.ndarray          # uniform draw for the service time
    horizon_s: float
    # each job's SQS FIFO message group (0 .. queues.message_groups - 1), when known (a live replay's
    # job ids fix it); None: the fleet draws one per job when it models message groups
    group: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls, horizon_s: float) -> "JobTable":
        return cls(np.empty(0), np.empty(0, np.int8), np.empty(0, np.int32), [], np.empty(0), horizon_s)


def _rate_factor(spec: WorkloadSpec, s: StreamSpec, t: np.ndarray) -> np.ndarray:
    f = np.ones_like(t)
    if spec.diurnal is not None:
        prof = np.asarray(spec.diurnal, dtype=float)
        prof = prof / prof.mean()
        f *= prof[(t // 3600).astype(np.int64) % 24]
    for b in spec.bursts:
        if b.applies(s):
            inside = (t >= b.start_h * 3600) & (t < (b.start_h + b.duration_h) * 3600)
            f[inside] *= b.multiplier
    return f


def _peak_factor(spec: WorkloadSpec, s: StreamSpec) -> float:
    peak = 1.0
    if spec.diurnal is not None:
        prof = np.asarray(spec.diurnal, dtype=float)
        peak = float(prof.max() / prof.mean())
    mult = [b.multiplier for b in spec.bursts if b.applies(s)]
    return peak * max([1.0, *mult]) if mult else peak


def stream_arrivals(spec: WorkloadSpec, s: StreamSpec, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of one stream: homogeneous Poisson at the peak rate, thinned."""
    T = spec.duration_s
    lam_max = s.per_day / 86400.0 * _peak_factor(spec, s)
    n = rng.poisson(lam_max * T)
    t = np.sort(rng.uniform(0.0, T, n))
    if spec.diurnal is None and not any(b.applies(s) for b in spec.bursts):
        return t
    keep = rng.random(n) * lam_max < s.per_day / 86400.0 * _rate_factor(spec, s, t)
    return t[keep]


def materialize(spec: WorkloadSpec, cfg: FabricConfig, seed: int = 0, rep: int = 0) -> dict[str, JobTable]:
    """Draw every stream's arrivals and each job's service uniform, grouped per tenant."""
    known = {t.id for t in cfg.tenants}
    for s in spec.streams:
        if s.tenant not in known:
            raise WorkloadError(f"stream for unknown tenant {s.tenant!r} (tenants: {sorted(known)})")
    out: dict[str, JobTable] = {}
    for ti, tenant in enumerate(cfg.tenants):
        parts_t, parts_c, parts_k, keys = [], [], [], []
        for si, s in enumerate(spec.streams):
            if s.tenant != tenant.id:
                continue
            t = stream_arrivals(spec, s, component_rng(seed, rep, ARRIVALS, si))
            k = (s.model, s.resolution, s.steps)
            if k not in keys:
                keys.append(k)
            parts_t.append(t)
            parts_c.append(np.full(len(t), PRIORITY_ORDER.index(s.priority), np.int8))
            parts_k.append(np.full(len(t), keys.index(k), np.int32))
        if not parts_t:
            out[tenant.id] = JobTable.empty(spec.duration_s)
            continue
        t = np.concatenate(parts_t)
        order = np.argsort(t, kind="stable")
        u = component_rng(seed, rep, SERVICE, ti).random(len(t))
        out[tenant.id] = JobTable(t[order], np.concatenate(parts_c)[order], np.concatenate(parts_k)[order],
                                  keys, u, spec.duration_s)
    return out


def load_trace(path: str | Path) -> pd.DataFrame:
    """Read and validate a trace file (CSV or Parquet)."""
    p, df = read_table(path, "trace", TraceError)
    missing = [c for c in TRACE_COLUMNS if c not in df.columns]
    if missing:
        raise TraceError(f"trace {p} lacks columns {missing} (needs {list(TRACE_COLUMNS)})")
    bad = sorted(set(df["class"].astype(str)) - set(PRIORITY_ORDER))
    if bad:
        raise TraceError(f"trace {p} has unknown classes {bad}")
    return df


def _seconds(ts: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(ts):
        x = ts.to_numpy(dtype=float)
    else:
        try:
            dt = pd.to_datetime(ts, utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise TraceError(f"trace timestamps are neither seconds nor ISO 8601: {exc}") from None
        x = (dt - dt.min()).dt.total_seconds().to_numpy()
    if np.isnan(x).any():
        raise TraceError("trace has missing timestamps")
    return x - x.min() if len(x) else x


def jobs_from_trace(df: pd.DataFrame, cfg: FabricConfig, seed: int = 0, rep: int = 0,
                    horizon_s: float | None = None) -> dict[str, JobTable]:
    """Per-tenant job tables replaying a trace; service draws come from the seed."""
    t_all = _seconds(df["timestamp"])
    unknown = sorted(set(df["tenant"].astype(str)) - {t.id for t in cfg.tenants})
    if unknown:
        raise TraceError(f"trace names tenants not in the config: {unknown}")
    horizon = float(horizon_s if horizon_s is not None else (t_all.max() if len(t_all) else 0.0))
    out: dict[str, JobTable] = {}
    tenants = df["tenant"].astype(str).to_numpy()
    for ti, tenant in enumerate(cfg.tenants):
        m = tenants == tenant.id
        sub = df.loc[m]
        t = t_all[m]
        order = np.argsort(t, kind="stable")
        triples = list(zip(sub["model"].astype(str), sub["resolution"].astype(int), sub["steps"].astype(int)))
        keys = sorted(set(triples))
        index = {k: i for i, k in enumerate(keys)}
        key = np.fromiter((index[k] for k in triples), np.int32, len(triples))
        cls = sub["class"].map(PRIORITY_ORDER.index).to_numpy(np.int8)
        u = component_rng(seed, rep, SERVICE, ti).random(len(t))
        out[tenant.id] = JobTable(t[order], cls[order], key[order], keys, u, horizon)
    return out


def write_trace(tables: Mapping[str, JobTable], path: str | Path, seeds: Sequence[int] | None = None) -> Path:
    """Write job tables as a trace file (the inverse of :func:`jobs_from_trace`)."""
    rows = []
    for tenant, jt in tables.items():
        rows.append(pd.DataFrame({
            "timestamp": jt.t, "tenant": tenant, "class": [PRIORITY_ORDER[c] for c in jt.cls],
            "resolution": [jt.keys[k][1] for k in jt.key], "steps": [jt.keys[k][2] for k in jt.key],
            "model": [jt.keys[k][0] for k in jt.key]}))
    df = pd.concat(rows, ignore_index=True).sort_values("timestamp", kind="stable")
    df["seed"] = list(seeds) if seeds is not None else np.arange(len(df))
    p = Path(path)
    if p.suffix in (".parquet", ".pq"):
        df.to_parquet(p, index=False)
    else:
        df.to_csv(p, index=False)
    return p
