"""PNG plots of one replay: latency over time, queue depth, workers (from its saved frames only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from comfyfab.config import PRIORITY_ORDER


def latency_over_time(result) -> Figure:
    """End-to-end latency of each completed job against its arrival, per class, with each class's SLO."""
    df = result.jobs[result.jobs["status"] == "ok"]
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    for c in PRIORITY_ORDER:
        d = df[df["class"] == c].sort_values("arrival")
        if len(d):
            pts = ax.scatter(d["arrival"] / 60, d["end"] - d["arrival"], s=4, alpha=0.5, label=c)
            slo = result.cfg.queues.cls(c).slo_p95_s
            if slo and slo < 4 * max(1.0, float((d["end"] - d["arrival"]).max())):
                ax.axhline(slo, color=pts.get_facecolor()[0], ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("arrival, minutes from start")
    ax.set_ylabel("latency, s")
    ax.set_title(f"{result.scenario.name} ({result.mode}{', ' + result.label if result.label else ''})")
    ax.legend(loc="upper left")
    return fig


def queue_depth(result) -> Figure:
    """Visible depth per class, summed over tenants."""
    tl = result.timeline.groupby("t", sort=True).sum(numeric_only=True)
    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    for c in PRIORITY_ORDER:
        ax.plot(tl.index / 60, tl[f"depth_{c}"], lw=0.9, label=c)
    ax.set_xlabel("minutes from start")
    ax.set_ylabel("visible depth")
    ax.legend(loc="upper right")
    return fig


def workers(result) -> Figure:
    """Workers in the pools and busy workers, summed over tenants."""
    tl = result.timeline.groupby("t", sort=True).sum(numeric_only=True)
    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    ax.step(tl.index / 60, tl["workers"], where="post", lw=0.9, label="workers")
    ax.plot(tl.index / 60, tl["busy"], lw=0.7, alpha=0.8, label="busy")
    ax.set_ylim(0, max(1.0, float(np.nanmax(tl["workers"]) if len(tl) else 1.0)) * 1.15)
    ax.set_xlabel("minutes from start")
    ax.set_ylabel("workers")
    ax.legend(loc="upper right")
    return fig


def save_plots(result, directory: str | Path) -> list[Path]:
    d = Path(directory)
    out = []
    for name, make in (("latency.png", latency_over_time), ("queue_depth.png", queue_depth),
                       ("workers.png", workers)):
        fig = make(result)
        fig.tight_layout()
        fig.savefig(d / name, dpi=90)
        out.append(d / name)
    return out
