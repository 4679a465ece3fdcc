"""``comfyfab sim run``, ``comfyfab sim sweep``, ``comfyfab plan`` and ``comfyfab bench sim``."""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from comfyfab.cli import CliError, Context

from .errors import SimError

SUMMARY_COLUMNS = ["tenant", "class", "jobs", "completed", "dlq", "latency_p50_s", "latency_p95_s",
                   "latency_p99_s", "wait_p95_s", "slo_attainment", "utilisation", "cold_starts",
                   "cost_per_1000_images"]


def _expected(fn: Callable[[argparse.Namespace, Context], int]) -> Callable[[argparse.Namespace, Context], int]:
    """Turn the simulator's own errors into CLI errors (a message, not a traceback)."""
    @functools.wraps(fn)
    def run(args: argparse.Namespace, ctx: Context) -> int:
        try:
            return fn(args, ctx)
        except SimError as exc:
            raise CliError(str(exc)) from None
        except KeyError as exc:
            raise CliError(f"unknown name {exc}") from None
    return run


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _mix(text: str) -> dict[str, float]:
    try:
        return {k.strip(): float(v) for k, v in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected class=share,..., got {text!r}") from None


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument("--no-heartbeats", action="store_true", help="workers do not extend visibility")
    p.add_argument("--no-autoscale", action="store_true", help="keep the warm pool only")
    p.add_argument("--no-spot", action="store_true", help="serve batch on on-demand workers only")
    p.add_argument("--distribution", default="uniform",
                   choices=["uniform", "exponential", "deterministic", "empirical"], help="service times")
    p.add_argument("--profile", type=Path, default=None, help="measured service-time profile (CSV/Parquet)")
    p.add_argument("--cold-starts", type=Path, default=None,
                   help="measured cold starts: a CSV with 'seconds', or 'comfyfab bench load --csv' rows "
                        "(the fastest reader's loads)")
    p.add_argument("--sample-s", type=float, default=60.0, help="queue-depth sampling interval")


def _workload_args(p: argparse.ArgumentParser, days: float) -> None:
    p.add_argument("--days", type=float, default=days, help=f"simulated days (default {days:g})")
    p.add_argument("--per-month", type=float, default=2_400_000, help="jobs a month over all tenants")
    p.add_argument("--mix", type=_mix, default=None, help="class shares, e.g. realtime=0.2,standard=0.5,batch=0.3")
    p.add_argument("--no-diurnal", action="store_true", help="flat Poisson instead of the office-hours profile")
    p.add_argument("--no-bursts", action="store_true", help="leave out the batch campaigns")
    p.add_argument("--trace", type=Path, default=None, help="replay a CSV/Parquet trace instead")


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    sim = sub.add_parser("sim", help="the capacity model: simulate the fleet")
    simsub = sim.add_subparsers(dest="sim_command", metavar="SIM")
    sim.set_defaults(func=lambda a, c: sim.print_help() or 2)

    p = simsub.add_parser("run", help="simulate the fabric on synthetic or traced traffic and print metrics")
    _workload_args(p, 30)
    _model_args(p)
    p.add_argument("--reps", type=int, default=1, help="independent replications (CIs when > 1)")
    p.add_argument("--warmup-s", type=float, default=0.0, help="ignore jobs arriving before this")
    p.add_argument("--out", type=Path, default=None, help="save jobs, depth, summary and config here")
    p.add_argument("--plots", action="store_true", help="with --out: also write PNG plots")
    p.set_defaults(func=_run)

    p = simsub.add_parser("validate", help="the model against Erlang C, Cobham, Little, DLQ theory and the seed")
    p.set_defaults(func=_validate)

    p = simsub.add_parser("sweep", help="simulate every combination of --vary values on the same traffic")
    _workload_args(p, 7)
    _model_args(p)
    p.add_argument("--vary", action="append", required=True, metavar="PATH=V1,V2",
                   help="a config path and its values, e.g. fleet.warm_realtime_workers=1,2,4 (repeatable)")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: one per CPU)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask cluster, e.g. tcp://host:8786 (default: a local process pool)")
    p.add_argument("--out", type=Path, default=None, help="write the sweep table as CSV")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("plan", help="cheapest fleet for one tenant meeting SLOs at a daily volume")
    p.add_argument("--slo", action="append", required=True, help="e.g. realtime.p95<=2s (repeatable)")
    p.add_argument("--per-day", type=float, required=True, help="jobs a day for the tenant")
    p.add_argument("--tenant", default=None, help="tenant id (default: the config's first)")
    p.add_argument("--gpus", default="A100,H100", help="GPU profiles to consider")
    p.add_argument("--warm", type=_ints, default=(1, 2, 4), help="warm-pool sizes (default 1,2,4)")
    p.add_argument("--max-workers", type=_ints, default=(4, 8, 16, 32), help="default 4,8,16,32")
    p.add_argument("--thresholds", type=_ints, default=(5, 10, 20), help="autoscaling depth thresholds")
    p.add_argument("--days", type=float, default=1.0, help="simulated days per candidate (default 1)")
    p.add_argument("--reps", type=int, default=2, help="replications per candidate (default 2)")
    p.add_argument("--mix", type=_mix, default=None, help="class shares")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=None)
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask cluster, e.g. tcp://host:8786 (default: a local process pool)")
    p.add_argument("--top", type=int, default=8, help="candidates to list (default 8)")
    p.add_argument("--margin", type=float, default=0.0,
                   help="headroom: each statistic must be <= limit * (1 - margin) (default 0)")
    p.set_defaults(func=_plan)

    b = bench.add_parser("sim", help="simulated jobs per wall-second, full model, the seed's month")
    b.add_argument("--jobs", type=int, default=2_400_000, help="jobs to simulate (default: the month, 2.4 M)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--plot", type=Path, default=None, metavar="PNG",
                   help="also save the simulated month's hourly throughput and one tenant's queues here")
    b.set_defaults(func=_bench)


# -- helpers -----------------------------------------------------------------
def _options(args: argparse.Namespace):
    from .fleet import FleetOptions
    from .run import SimOptions

    return SimOptions(fleet=FleetOptions(heartbeats=not args.no_heartbeats, autoscale=not args.no_autoscale,
                                         spot=not args.no_spot, sample_s=args.sample_s),
                      distribution=args.distribution, profile_path=str(args.profile) if args.profile else None,
                      cold_start_path=str(args.cold_starts) if args.cold_starts else None)


def _note_batched(cfg, args: argparse.Namespace) -> None:
    """Say so when a service profile was measured batched: capacity right, latency optimistic."""
    from .service import batched_profiles

    paths = [getattr(args, "profile", None), *(g.profile_file for g in cfg.gpus)]
    for path, batch in batched_profiles(paths).items():
        print(f"note: {path} was measured at batch {batch}: each job is served alone at its per-image share, "
              f"so capacity is batched serving's but latencies leave out the batch's wait and run "
              f"(up to {batch - 1} more shares a job)", file=sys.stderr)


def _workload(args: argparse.Namespace, cfg):
    from .workload import SEED_CLASS_MIX, WorkloadSpec, load_trace

    if args.trace:
        return load_trace(args.trace)
    if args.days <= 0:
        raise CliError("--days must be positive")
    return WorkloadSpec.seed_month(cfg, days=args.days, jobs=args.per_month, mix=args.mix or SEED_CLASS_MIX,
                                   diurnal=not args.no_diurnal, bursts=not args.no_bursts)


def _progress(total: int, label: str, enabled: bool = True):
    """A rich progress bar as a context manager yielding ``update(done, of=None)`` (``of`` resets the total)."""
    from contextlib import contextmanager

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    @contextmanager
    def bar():
        if not enabled:
            yield lambda done, of=None: None
            return
        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      transient=True) as prog:
            task = prog.add_task(label, total=total)
            yield lambda done, of=None: prog.update(task, completed=done, total=of or total)
    return bar()


def _table(df, columns: list[str]) -> str:
    cols = [c for c in columns if c in df.columns]
    return df[cols].to_string(index=False, float_format=_num)


def _num(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e15 or 1000 <= abs(x) < 1e15:
        return f"{x:,.0f}"
    return f"{x:.4g}"


# -- handlers ------------------------------------------------------------------
@_expected
def _run(args: argparse.Namespace, ctx: Context) -> int:
    from .metrics import across, fleet_totals, summary
    from .run import simulate

    if args.reps < 1:
        raise CliError("--reps must be at least 1")
    cfg = ctx.config()
    workload = _workload(args, cfg)
    opts = _options(args)
    _note_batched(cfg, args)
    results = [simulate(cfg, workload, seed=args.seed, rep=r, options=opts) for r in range(args.reps)]
    summaries = [summary(r, warmup_s=args.warmup_s) for r in results]
    table = summaries[0] if args.reps == 1 else across(summaries)
    print(_table(table, SUMMARY_COLUMNS))
    tot = [fleet_totals(r) for r in results]
    jobs = sum(r.jobs for r in results)
    wall = sum(r.wall_s for r in results)
    print(f"\n{jobs:,} jobs in {wall:.2f} s ({jobs / wall:,.0f} jobs/s); "
          f"cost ${sum(t['cost_usd'] for t in tot) / len(tot):,.2f}, "
          f"${sum(t['monthly_cost_usd'] for t in tot) / len(tot):,.0f}/month, "
          f"${sum(t['cost_per_1000_images'] for t in tot) / len(tot):.3f} per 1,000 images")
    if args.out:
        for r in results:
            d = r.save(args.out / f"rep{r.rep}")
            if args.plots:
                from . import plots

                plots.depth_over_time(r).savefig(d / "depth.png")
                plots.latency_cdf(r).savefig(d / "latency_cdf.png")
                plots.throughput_per_hour(r).savefig(d / "throughput.png")
        if args.reps > 1:
            table.to_csv(args.out / "summary_ci.csv", index=False)
        print(f"results in {args.out}")
    return 0


@_expected
def _validate(args: argparse.Namespace, ctx: Context) -> int:
    from .validate import all_checks

    table = all_checks()
    print(_table(table, ["name", "theory", "estimate", "ci_low", "ci_high", "reps", "rel_error", "theory_in_ci"]))
    return 0


def _parse_vary(items: list[str]) -> list[dict[str, Any]]:
    axes = []
    for item in items:
        if "=" not in item:
            raise CliError(f"--vary expects path=v1,v2, got {item!r}")
        path, values = item.split("=", 1)
        axes.append([(path.strip(), yaml.safe_load(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)]


@_expected
def _sweep(args: argparse.Namespace, ctx: Context) -> int:
    from .sweep import sweep

    cfg = ctx.config()
    variants = _parse_vary(args.vary)
    for v in variants:
        cfg.with_overrides(v)  # a bad path or value fails here, before any process starts
    if args.reps < 1:
        raise CliError("--reps must be at least 1")
    _note_batched(cfg, args)
    with _progress(len(variants) * args.reps, "sweep") as update:
        table = sweep(cfg, _workload(args, cfg), variants, reps=args.reps, seed=args.seed, options=_options(args),
                      processes=args.processes, progress=update, scheduler=args.scheduler)
    keys = list(variants[0])
    rows = table[table["class"] != "all"].groupby([*keys, "class"], sort=False, observed=True).agg(
        latency_p95_s=("latency_p95_s", "mean"), slo_attainment=("slo_attainment", "mean"),
        monthly_cost_usd=("total_monthly_cost_usd", "mean")).reset_index()
    print(_table(rows, list(rows.columns)))
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"sweep table in {args.out}")
    return 0


@_expected
def _plan(args: argparse.Namespace, ctx: Context) -> int:
    from .plan import PlanSpace, parse_slo, plan
    from .workload import SEED_CLASS_MIX

    if args.reps < 1:
        raise CliError("--reps must be at least 1")
    slos = [parse_slo(s) for s in args.slo]
    space = PlanSpace(gpus=tuple(g.strip() for g in args.gpus.split(",") if g.strip()), warm=args.warm,
                      max_workers=args.max_workers, thresholds=args.thresholds)
    cfg = ctx.config()
    with _progress(len(space.fleets()) * max(args.reps, 1), "candidates") as update:
        result = plan(cfg, slos, args.per_day, tenant=args.tenant, space=space, days=args.days, reps=args.reps,
                      seed=args.seed, mix=args.mix or SEED_CLASS_MIX, processes=args.processes,
                      margin=args.margin, progress=update, scheduler=args.scheduler)
    b = result.best
    print(f"cheapest fleet meeting {', '.join(map(str, slos))} at {args.per_day:,.0f} jobs/day:")
    print(f"  {b['gpu']}, warm pool {b['warm']}, up to {b['max_workers']} workers, "
          f"scale out at depth > {b['threshold']}")
    print(f"  ${result.monthly_cost_usd:,.0f}/month, ${result.cost_per_1000_images:.3f} per 1,000 images\n")
    print(_table(result.table.head(args.top), list(result.table.columns)))
    return 0


@_expected
def _bench(args: argparse.Namespace, ctx: Context) -> int:
    from .run import simulate
    from .workload import SEED_MONTH_JOBS, WorkloadSpec

    if args.jobs < 1:
        raise CliError("--jobs must be at least 1")
    cfg = ctx.config()
    days = 30.0 * args.jobs / SEED_MONTH_JOBS
    spec = WorkloadSpec.seed_month(cfg, days=days)
    t0, c0 = time.perf_counter(), time.process_time()
    with _progress(int(spec.expected_jobs()), "simulating", enabled=not args.no_progress) as update:
        result = simulate(cfg, spec, seed=args.seed, progress=lambda tenant, done: update(done))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    pools = [p for r in result.runs.values() for p in r.pools.values()]
    print(f"simulated {result.jobs:,} jobs ({days:g} days, {len(cfg.tenants)} tenants, 3 classes, "
          f"autoscaling on, spot on, {sum(p.cold_starts for p in pools)} cold starts) in {wall:.2f} s")
    print(f"{result.jobs / wall:,.0f} simulated jobs per wall-second "
          f"({result.jobs / cpu:,.0f} per CPU-second of this process; one core)")
    if args.plot:
        _bench_plot(result, args.plot)
        print(f"plot in {args.plot}")
    return 0


def _bench_plot(result, path: Path) -> None:
    """Hourly completions by class (all tenants) over the first tenant's queue depth and workers."""
    from matplotlib.figure import Figure

    from comfyfab.config import PRIORITY_ORDER

    from .metrics import hourly_throughput

    h = hourly_throughput(result).groupby(["hour", "class"], observed=True)["completed"].sum().unstack(fill_value=0)
    d = result.depth_frame()
    d = d[d["tenant"] == result.cfg.tenants[0].id]
    fig = Figure(figsize=(11, 7))
    top, mid, low = fig.subplots(3, 1, sharex=True)
    bottom = None
    for c in [c for c in PRIORITY_ORDER if c in h.columns]:
        top.bar(h.index, h[c], bottom=bottom, width=1.0, label=c)
        bottom = h[c].to_numpy() if bottom is None else bottom + h[c].to_numpy()
    top.set_ylabel("images / hour")
    top.legend(loc="upper right")
    top.set_title(f"comfyfab bench sim: {result.jobs:,} jobs, {len(result.runs)} tenants")
    hours = d["t"] / 3600
    for c in PRIORITY_ORDER:
        mid.plot(hours, d[f"depth_{c}"], lw=0.6, label=c)
    mid.set_ylabel(f"{result.cfg.tenants[0].id}\nvisible depth")
    mid.legend(loc="upper right")
    low.plot(hours, d["workers_on_demand"], lw=0.6, label="on-demand")
    low.plot(hours, d["workers_spot"], lw=0.6, label="spot")
    low.set_ylabel("workers")
    low.set_xlabel("hours")
    low.legend(loc="upper right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
