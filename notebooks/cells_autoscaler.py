"""Cells of ``autoscaler_tuning.ipynb``: threshold, step and max-workers sweeps; queue depth under a burst;
cold starts by kind.

Each entry of ``CELLS`` is ``(kind, source)``, as in ``cells_capacity``.  The
notebook uses the simulator's public API only: workloads, ``simulate`` and
its result tables, sweeps and ``sim.plots``.
"""

CELLS: list[tuple[str, str]] = [
    ("markdown", """\
# Autoscaler tuning

The autoscaler adds `step` workers every `interval_s` while a pool's visible
queue depth exceeds `queue_depth_threshold`, up to `max_workers`, and stops
idle workers above the warm pool after `idle_stop_s` (one `AutoscalePolicy`,
shared with the live fleet). This notebook sweeps the three knobs on one
tenant's traffic with a burst, and shows what each does to realtime p95,
batch latency and cost, then the queues and the fleet over time during the
burst, then what the length of a worker's cold start (network storage, local
disk, load plus compile) does to the same burst.

Set `SMALL = True` for a quick run (CI does); the figures are saved as PNG
under `FIG_DIR`."""),
    ("parameters", """\
SMALL = False       # True: few points, short runs (CI)
FIG_DIR = "runs/figures/autoscaler_tuning"  # runs/ is git-ignored
SEED = 0
PROCESSES = None    # local worker processes (None: one per CPU; 1: inline)
SCHEDULER = None    # or a Dask scheduler address, e.g. "tcp://host:8786\""""),
    ("code", """\
%matplotlib inline
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from comfyfab.config import load_config
from sim import plots
from sim.plan import tenant_only
from sim.run import SimOptions, simulate
from sim.state import FleetOptions
from sim.sweep import sweep
from sim.workload import OFFICE_HOURS, SEED_CLASS_MIX, BurstSpec, StreamSpec, WorkloadSpec

HOURS = 4 if SMALL else 24                      # simulated hours per point
REPS = 1 if SMALL else 3
PER_DAY = 40_000                                # the tenant's volume (the planner's example)
BURST = dict(start_h=1.0 if SMALL else 14.0, duration_h=0.5, multiplier=8.0)
THRESHOLDS = (2, 10, 40) if SMALL else (0, 2, 5, 10, 20, 40, 80)
STEPS = (1, 2, 8) if SMALL else (1, 2, 4, 8, 16)
MAX_WORKERS = (4, 8, 32) if SMALL else (4, 6, 8, 12, 16, 32)
fig_dir = Path(FIG_DIR)
fig_dir.mkdir(parents=True, exist_ok=True)

cfg = load_config()
TENANT = cfg.tenants[0].id
one = tenant_only(cfg, TENANT)
# a marketing campaign: every class of the tenant at BURST["multiplier"] times its rate for half an hour
workload = WorkloadSpec(
    duration_h=HOURS, diurnal=None if SMALL else OFFICE_HOURS,
    streams=tuple(StreamSpec(tenant=TENANT, priority=c, per_day=PER_DAY * share)
                  for c, share in SEED_CLASS_MIX.items()),
    bursts=(BurstSpec(tenant=TENANT, **BURST),))
run_on = dict(reps=REPS, seed=SEED, processes=PROCESSES, scheduler=SCHEDULER)
print(f"{TENANT}: {PER_DAY:,} jobs/day over {HOURS} h, burst x{BURST['multiplier']:g} at hour {BURST['start_h']:g}; "
      f"about {workload.expected_jobs():,.0f} jobs per run")"""),
    ("markdown", """\
## Threshold, step and maximum workers

Each knob is varied on its own around the config's defaults (threshold 10,
step 2, 32 workers); every point sees the same arrivals and service draws."""),
    ("code", """\
KNOBS = {"fleet.autoscaling.queue_depth_threshold": THRESHOLDS,
         "fleet.autoscaling.step": STEPS,
         f"tenants.{TENANT}.max_workers": MAX_WORKERS}
rows = []
for knob, values in KNOBS.items():
    t = sweep(one, workload, [{knob: v} for v in values], **run_on)
    t = t[t["tenant"] == TENANT]
    for v, g in t.groupby(knob):
        by = g.groupby("class")
        rows.append({"knob": knob.rsplit(".", 1)[-1], "value": v,
                     "realtime_p95_s": by["latency_p95_s"].mean()["realtime"],
                     "standard_p95_s": by["latency_p95_s"].mean()["standard"],
                     "batch_p95_s": by["latency_p95_s"].mean()["batch"],
                     "batch_mean_s": by["latency_mean_s"].mean()["batch"],
                     "cold_starts": by["cold_starts"].mean()["all"],
                     "monthly_cost_usd": by["total_monthly_cost_usd"].mean()["all"]})
knobs = pd.DataFrame(rows)
knobs.round(3)"""),
    ("code", """\
metrics = [("realtime_p95_s", "realtime p95, s"), ("batch_p95_s", "batch p95, s"),
           ("monthly_cost_usd", "monthly cost, $")]
fig = Figure(figsize=(12, 8))
axes = fig.subplots(len(metrics), len(KNOBS), squeeze=False)
for j, (knob, g) in enumerate(knobs.groupby("knob", sort=False)):
    for i, (col, label) in enumerate(metrics):
        ax = axes[i][j]
        ax.plot(g["value"], g[col], marker="o")
        ax.set_ylabel(label)
        if col == "realtime_p95_s":
            ax.axhline(one.queues.cls("realtime").slo_p95_s, color="red", ls="--", lw=0.8)
    axes[-1][j].set_xlabel(knob)
    axes[0][j].set_title(knob)
fig.tight_layout()
fig.savefig(fig_dir / "knob_sweeps.png", dpi=90)
fig"""),
    ("markdown", """\
## Queue depth over time under the burst

The same traffic with a low and a high threshold: the visible depth of each
class, and the workers on demand, on spot and busy (sampled every 10 s)."""),
    ("code", """\
low, high = THRESHOLDS[0], THRESHOLDS[-1]
fine = SimOptions(fleet=FleetOptions(sample_s=10))
runs = {th: simulate(one.with_overrides({"fleet.autoscaling.queue_depth_threshold": th}), workload, seed=SEED,
                     options=fine)
        for th in (low, high)}
fig = plots.depth_over_time(runs[low], TENANT)
fig.savefig(fig_dir / "burst_depth.png", dpi=90)
fig"""),
    ("code", """\
fig = Figure(figsize=(10, 4))
ax1, ax2 = fig.subplots(1, 2, sharex=True)
for th, res in runs.items():
    d = res.depth_frame()
    hours = d["t"] / 3600
    ax1.plot(hours, d["depth_realtime"] + d["depth_standard"], lw=0.9, label=f"threshold {th}")
    ax2.plot(hours, d["workers_on_demand"], lw=0.9, label=f"threshold {th}")
for ax in (ax1, ax2):
    ax.axvspan(BURST["start_h"], BURST["start_h"] + BURST["duration_h"], color="orange", alpha=0.15)
    ax.set_xlim(BURST["start_h"] - 0.25, BURST["start_h"] + BURST["duration_h"] + 0.75)
    ax.set_xlabel("hours")
    ax.legend()
ax1.set_title("realtime + standard depth")
ax2.set_title("on-demand workers")
fig.tight_layout()
fig.savefig(fig_dir / "burst_thresholds.png", dpi=90)
fig"""),
    ("markdown", """\
## What a cold start costs under the burst: network storage, local disk, a compiled worker

Every worker the autoscaler adds is useless until its cold start ends. Three measured or stated
cold starts, on the same burst with the config's autoscaler: the case study's 18-22 s (the
checkpoint from network storage; the config's default), the H100 machine's local-disk loads
(`profiles/h100-sdxl-bf16-loadbench.csv`, the default reader's 4.45-4.82 s), and a worker that
also compiles its models regionally before its first job (`--compile regional`: the load plus
64.6 s of compile, 68.7 s, `profiles/h100-sdxl-1024-20-b4-compiled-regional-coldstart.csv`).
The service times are the config's in all three, so only the cold start differs: a compiled
worker would also serve faster, which this comparison leaves out.

Read it with the autoscaler's rule in mind: it adds `step` workers every `interval_s` while the
depth stays above the threshold, and workers still starting do not lower the depth. A cold start
longer than the interval therefore buys more workers during a burst than the burst needs (more
cold starts, lower p95 once they arrive, more cost), and a short one fewer. The last bar is the
same compiled worker with `fleet.autoscaling.count_starting: true`: workers in their cold start
count against a scale-out (the live fleet and the simulator share the rule), which gives back
most of the extra cost for a p95 still well inside the SLO."""),
    ("code", """\
from IPython.display import display

import comfyfab

profiles = Path(comfyfab.__file__).resolve().parents[1] / "profiles"
compiled = profiles / "h100-sdxl-1024-20-b4-compiled-regional-coldstart.csv"
COLD = {"network 18-22 s (config)": (None, False),
        "local disk 4.6 s": (profiles / "h100-sdxl-bf16-loadbench.csv", False),
        "load + regional compile 68.7 s": (compiled, False),
        "the same, count_starting": (compiled, True)}
rows = []
for label, (path, count) in COLD.items():
    t = sweep(one, workload, [{"fleet.autoscaling.count_starting": count}],
              options=SimOptions(cold_start_path=str(path) if path else None), **run_on)
    by = t[t["tenant"] == TENANT].groupby("class")
    p95 = by["latency_p95_s"].mean()
    rows.append({"cold start": label, "realtime_p95_s": p95["realtime"], "standard_p95_s": p95["standard"],
                 "batch_p95_s": p95["batch"], "cold_starts": by["cold_starts"].mean()["all"],
                 "monthly_cost_usd": by["total_monthly_cost_usd"].mean()["all"]})
cold = pd.DataFrame(rows).set_index("cold start")
fig = Figure(figsize=(13, 3.6))
axes = fig.subplots(1, 4)
panels = {"realtime_p95_s": "realtime p95, s", "standard_p95_s": "standard p95, s",
          "batch_p95_s": "batch p95, s", "monthly_cost_usd": "monthly cost, $"}
for ax, (col, title) in zip(axes, panels.items()):
    ax.barh(range(len(cold)), cold[col], color=["C7", "C0", "C3", "C1"])
    ax.set_yticks(range(len(cold)), list(cold.index) if ax is axes[0] else [""] * len(cold))
    ax.set_title(title)
axes[0].axvline(one.queues.cls("realtime").slo_p95_s, color="red", ls="--", lw=0.8)
fig.suptitle(f"{TENANT} under the burst: cold start by kind (cold starts per run: "
             + ", ".join(f"{n:.0f}" for n in cold["cold_starts"]) + ")")
fig.tight_layout()
fig.savefig(fig_dir / "cold_start_kinds.png", dpi=90)
display(cold.round(3))
fig"""),
]
