"""Matplotlib helpers over results and sweep tables (never over model internals).

Each returns a :class:`matplotlib.figure.Figure` built without pyplot, so it
works headless and in notebooks alike (display it, or ``fig.savefig``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from comfyfab.config import PRIORITY_ORDER

from .metrics import hourly_throughput


def depth_over_time(result, tenant: str | None = None) -> Figure:
    """Queue depth per class (top) and workers on-demand / spot / busy (bottom)."""
    df = result.depth_frame()
    tenant = tenant or df["tenant"].iloc[0]
    d = df[df["tenant"] == tenant]
    fig = Figure(figsize=(9, 5))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    hours = d["t"] / 3600
    for c in PRIORITY_ORDER:
        ax1.plot(hours, d[f"depth_{c}"], label=c, lw=0.8)
    ax1.set_ylabel("visible depth")
    ax1.legend(loc="upper right")
    ax2.plot(hours, d["workers_on_demand"], label="on-demand", lw=0.8)
    ax2.plot(hours, d["workers_spot"], label="spot", lw=0.8)
    ax2.plot(hours, d["busy"], label="busy", lw=0.8)
    ax2.set_ylabel("workers")
    ax2.set_xlabel("hours")
    ax2.legend(loc="upper right")
    fig.suptitle(f"{tenant}: queues and fleet")
    return fig


def latency_cdf(result, tenant: str | None = None, log: bool = True) -> Figure:
    """Empirical CDF of end-to-end latency per class, with each class's SLO marked."""
    df = result.jobs_frame()
    if tenant:
        df = df[df["tenant"] == tenant]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for c in PRIORITY_ORDER:
        x = np.sort(df.loc[(df["class"] == c) & (df["status"] == "ok"), "latency"].to_numpy())
        if len(x):
            line, = ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=c)
            slo = result.cfg.queues.cls(c).slo_p95_s
            if slo:
                ax.axvline(slo, color=line.get_color(), ls=":", lw=0.8)
    ax.axhline(0.95, color="grey", lw=0.5)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("latency, s")
    ax.set_ylabel("share of jobs")
    ax.legend()
    return fig


def throughput_per_hour(result) -> Figure:
    """Completed jobs per clock hour, stacked by class."""
    h = hourly_throughput(result).groupby(["hour", "class"], observed=True)["completed"].sum().unstack(fill_value=0)
    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    bottom = np.zeros(len(h))
    for c in [c for c in PRIORITY_ORDER if c in h.columns]:
        ax.bar(h.index, h[c], bottom=bottom, width=1.0, label=c)
        bottom += h[c].to_numpy()
    ax.set_xlabel("hour")
    ax.set_ylabel("images / hour")
    ax.legend()
    return fig


def curve(table: pd.DataFrame, x: str, y: str, hue: str | None = None, target: float | None = None) -> Figure:
    """A metric against a swept parameter, one line per ``hue``, with CI bands when present."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    groups = table.groupby(hue, sort=True) if hue else [(y, table)]
    for name, g in groups:
        g = g.sort_values(x)
        ax.plot(g[x], g[y], marker="o", label=str(name))
        if f"{y}_ci_low" in g and g[f"{y}_ci_low"].notna().any():
            ax.fill_between(g[x], g[f"{y}_ci_low"], g[f"{y}_ci_high"], alpha=0.2)
    if target is not None:
        ax.axhline(target, color="red", ls="--", lw=0.8, label="target")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend()
    return fig
