"""``comfyfab demo``, ``comfyfab up``, ``comfyfab provision`` and ``comfyfab bench pipeline|pickup|standin|queues``."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from comfyfab.cli import CliError, Context


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on an embedded AWS and submit a mix of jobs")
    p.add_argument("--tenants", type=int, default=2, help="how many of the config's tenants (default 2)")
    p.add_argument("--jobs", type=int, default=6, help="jobs per tenant (default 6)")
    p.add_argument("--engine", choices=["torch", "noop"], default="torch", help="executor engine")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="where downloaded PNGs go")
    p.set_defaults(func=_demo)

    p = sub.add_parser("up", help="keep the stack running on loopback for manual use (Ctrl-C drains and stops)")
    p.add_argument("--tenants", type=int, default=None)
    p.add_argument("--engine", choices=["torch", "noop"], default="torch")
    p.add_argument("--executor-url", default=None, help="a real ComfyUI to use for every tenant")
    p.add_argument("--port", type=int, default=8000, help="router port (default 8000)")
    p.set_defaults(func=_up)

    p = sub.add_parser("provision", help="provision the fabric on the chosen backend (idempotent)")
    p.set_defaults(func=_provision)

    b = bench.add_parser("pipeline", help="router latency under concurrent clients and end-to-end jobs/s")
    b.add_argument("--clients", type=int, default=16)
    b.add_argument("--requests", type=int, default=800, help="router requests in the latency phase")
    b.add_argument("--jobs", type=int, default=400, help="jobs in the end-to-end phase")
    b.add_argument("--workers", type=int, default=4, help="workers per tenant in the end-to-end phase")
    b.add_argument("--repeat", type=int, default=1, help="run the end-to-end phase this many times (default 1)")
    b.add_argument("--rates", type=_rates, default=None, metavar="R1,R2,...",
                   help="offered loads of the open-loop router phase, req/s (default 10,20,30,40,50)")
    b.add_argument("--seconds-per-rate", type=float, default=10.0, help="open-loop submissions last this long per rate")
    b.add_argument("--out", type=Path, default=Path("runs/bench"), help="where the latency plot goes")
    b.add_argument("--router-process", action="store_true",
                   help="run the router as its own process (default: in the workers' process)")
    b.set_defaults(func=_bench)

    b = bench.add_parser("pickup", help="how long a job submitted to an idle pool waits for a worker, per class")
    b.add_argument("--workers", type=int, default=4, help="the idle pool's size (one tenant)")
    b.add_argument("--jobs-per-class", type=int, default=8)
    b.set_defaults(func=_bench_pickup)

    b = bench.add_parser("standin", help="CPU per job of the ComfyUI stand-in and its client on the no-op engine")
    b.add_argument("--clients", type=int, default=4, help="concurrent clients, each with its kept websocket")
    b.add_argument("--jobs", type=int, default=800)
    b.set_defaults(func=_bench_standin)

    b = bench.add_parser("queues", help="what each of the pipeline's SQS calls costs as a FIFO queue deepens")
    b.add_argument("--depths", type=_depths, default=None, metavar="N1,N2,...",
                   help="queue depths to time the calls at (default 50,2000,8000)")
    b.add_argument("--calls", type=int, default=200, help="calls of each kind per depth")
    b.set_defaults(func=_bench_queues)


def _demo(args: argparse.Namespace, ctx: Context) -> int:
    from .demo import run_demo

    if args.jobs < 1 or args.tenants < 1:
        raise CliError("--jobs and --tenants must be at least 1")
    return run_demo(ctx.config(), ctx.backend(), tenants=args.tenants, jobs_per_tenant=args.jobs,
                    engine=args.engine, out=args.out)


def _up(args: argparse.Namespace, ctx: Context) -> int:
    from rich.console import Console

    from .stack import Stack

    console = Console()
    cfg = ctx.config().first_tenants(args.tenants)
    urls = {t.id: args.executor_url for t in cfg.tenants} if args.executor_url else None
    stack = Stack(cfg, backend=ctx.backend(), engine=args.engine, executor_urls=urls,
                  progress=lambda m: console.print(f"[dim]• {m}[/]"), router_port=args.port)
    stack.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    console.print(f"\n[bold]router[/] {stack.router_url}   (OpenAPI: {stack.router_url}/docs)")
    for tenant, key in stack.api_keys.items():
        console.print(f"  {tenant:16s} API key {key}")
    console.print("Ctrl-C drains the workers and stops.")
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    console.print("draining…")
    stack.stop()
    return 0


def _provision(args: argparse.Namespace, ctx: Context) -> int:
    from comfyfab.cloud import connect

    from .provision import provision

    spec = ctx.backend()
    if spec.kind == "embedded":
        raise CliError("the embedded backend lives only inside one process; use `comfyfab demo` or `comfyfab up`, "
                       "or --backend localstack|aws")
    cloud, _ = connect(spec)
    res = provision(cloud, ctx.config(), progress=print)
    for t, r in res.tenants.items():
        print(f"{t}: bucket {r.bucket}, key {r.key_id}, vpc {r.vpc_id}")
    return 0


def _bench(args: argparse.Namespace, ctx: Context) -> int:
    from .bench import RATES, run_bench

    _at_least_one(args, "clients", "requests", "jobs", "workers", "repeat")
    return run_bench(ctx.config(), ctx.backend(), clients=args.clients, requests=args.requests,
                     jobs=args.jobs, workers=args.workers, rates=args.rates or RATES,
                     router_process=args.router_process, seconds_per_rate=args.seconds_per_rate, out=args.out,
                     repeat=args.repeat)


def _bench_pickup(args: argparse.Namespace, ctx: Context) -> int:
    from .bench import run_pickup

    _at_least_one(args, "workers", "jobs_per_class")
    return run_pickup(ctx.config(), ctx.backend(), workers=args.workers, per_class=args.jobs_per_class)


def _bench_standin(args: argparse.Namespace, ctx: Context) -> int:
    from .bench import run_standin

    _at_least_one(args, "clients", "jobs")
    return run_standin(clients=args.clients, jobs=args.jobs)


def _bench_queues(args: argparse.Namespace, ctx: Context) -> int:
    from .bench import DEPTHS, run_queues

    _at_least_one(args, "calls")
    return run_queues(ctx.config(), ctx.backend(), depths=args.depths or DEPTHS, calls=args.calls)


def _at_least_one(args: argparse.Namespace, *names: str) -> None:
    """Refuse, with a message, any of these counts below one."""
    for name in names:
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)})")


def _depths(text: str) -> tuple[int, ...]:
    """``50,2000``: queue depths, whole numbers of at least one (the calls receive a message at each)."""
    try:
        depths = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of whole numbers: {text!r}") from None
    if any(d < 1 for d in depths):
        raise argparse.ArgumentTypeError(f"depths must be at least 1: {text!r}")
    return depths


def _rates(text: str) -> tuple[float, ...]:
    """``10,20,30``: positive offered loads in requests per second."""
    try:
        rates = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not rates or any(not (r > 0) or r == float("inf") for r in rates):
        raise argparse.ArgumentTypeError(f"rates must be positive numbers: {text!r}")
    return rates
