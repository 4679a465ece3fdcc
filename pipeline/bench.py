"""``comfyfab bench pipeline``: router latency and end-to-end throughput (a benchmark, not a test).

The whole stack runs with ``workers`` workers per tenant on the no-op
executor engine (full graph validation and HTTP round trips, no torch); the
embedded AWS and each tenant's ComfyUI stand-in are processes of their own,
as AWS and ComfyUI are beside the workers of a real pipeline, and with
``router_process`` (``--router-process``) so is the router.
``clients`` concurrent HTTP clients in a separate process (so they do not
share the server's interpreter) submit jobs.

Router -- the client-side latency of ``POST /v1/jobs`` (auth, validation, PHI
scan, conditional DynamoDB write, SQS send, ETA).  While the fleet drains, on
the same two cores, two ways: *closed loop* (each client sends its next request as soon as the last
one is answered: the router's capacity, and latency at saturation) and *open
loop* at a fixed offered rate (requests are due on a schedule and latency is
counted from when each was due, so a slow answer cannot hide the requests
queued behind it), at each of several offered rates, plotted against the
target (``runs/bench/router_latency.png``).

End to end -- jobs completed per second, from the first submission to the
last output written to S3 and its record marked succeeded, and the CPU time
each process spent per job (Linux), which says where the next gain lies.

Router alone -- last, the workers are stopped and the open-loop sweep runs
again: the router's own latency, with the embedded AWS and the stand-ins up,
as on the separate instances it runs on in the architecture modelled.  The
jobs it submits stay queued in SQS, so it comes after every other figure.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
from rich.console import Console

from comfyfab.cloud import BackendSpec
from comfyfab.config import PRIORITY_ORDER, FabricConfig
from comfyfab.policy import ScaleDecision

from .loadgen import cpu_s, submit
from .stack import Stack


def _jobs(n: int) -> list[dict]:
    from pipeline.comfy.workflows import txt2img

    wf = txt2img("a bench of lighthouses", seed=1, steps=2, width=64, height=64)
    return [{"jobId": str(uuid.uuid4()), "priority": PRIORITY_ORDER[i % 3], "resolution": [64, 64],
             "seed": i, "model": "tiny-sd:1", "workflow": wf} for i in range(n)]


def _cpus(pids: dict[str, Any]) -> dict[str, float | None]:
    """Each named process's CPU seconds so far (None where it cannot be read)."""
    return {k: cpu_s(p) for k, p in pids.items()}


def _spent(before: dict[str, float | None], after: dict[str, float | None]) -> dict[str, float | None]:
    """CPU seconds each process spent between two :func:`_cpus` snapshots (None where either is missing)."""
    return {k: after[k] - before[k] if None not in (before[k], after[k]) else None for k in before}


def _load(stack: Stack, n: int, clients: int, rate: float | None = None,
          on_ready: Callable[[], None] | None = None) -> dict:
    """Run the load generator (:func:`pipeline.loadgen.submit`) in a process of its own and return what it
    measured; ``on_ready`` is called once it has started, just before its first request."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    keys = [stack.api_keys[t.id] for t in stack.cfg.tenants]
    p = ctx.Process(target=submit, args=(stack.router_url, keys, n, clients, _jobs(n), q, rate))
    p.start()
    q.get()  # started: the requests follow at once
    if on_ready is not None:
        on_ready()
    out = q.get()
    p.join()
    return out


def _requests(stack: Stack) -> dict[str, int] | None:
    """The embedded AWS's request counts so far (None on other backends)."""
    embedded = getattr(stack, "_embedded", None)
    return embedded.requests() if embedded is not None else None


def _print_requests(before: dict[str, int], after: dict[str, int], jobs: int, cpu: dict[str, float | None],
                    client_ms: float, console: Console) -> None:
    """AWS requests per job by operation, what each request cost the emulator and the AWS clients, and
    the ceiling the design's requests put on this machine, given what one SDK call costs (``client_ms``)."""
    per = {k: (after.get(k, 0) - before.get(k, 0)) / max(jobs, 1) for k in after}
    per = {k: v for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.005}
    total = sum(per.values())
    if not total:
        return
    console.print(f"  AWS requests per job: [bold]{total:.2f}[/] ("
                  + ", ".join(f"{k} {v:.2f}" for k, v in per.items()) + ")")
    emulator = cpu.get("AWS emulator")
    clients = [v for k, v in cpu.items() if k in ("router", "workers", "pipeline (router, workers)")]
    emulator_ms = emulator / (total * jobs) * 1000 if emulator is not None else None
    costs = []
    if emulator_ms is not None:
        costs.append(f"the emulator {emulator_ms:.2f} ms")
    if clients and None not in clients:
        costs.append(f"the router and workers {sum(clients) / (total * jobs) * 1000:.2f} ms "
                     "(their AWS clients and everything else they do)")
    if costs:
        console.print(f"  CPU per AWS request: {'; '.join(costs)}")
    if emulator_ms is not None:
        # the ceiling this machine puts on the design: its requests alone, client and server, on every core
        floor_ms = REQUESTS_PER_JOB * (client_ms + emulator_ms)
        console.print(f"  an AWS SDK call alone costs {client_ms:.2f} ms of CPU here (against a server that "
                      f"answers at once); the design's {REQUESTS_PER_JOB} requests per job, client and emulator, "
                      f"cost at least {floor_ms:.1f} ms: at most [bold]{1000 * (os.cpu_count() or 1) / floor_ms:.0f}"
                      f" jobs/s[/] on {os.cpu_count()} cores before anything else runs")


# What a job needs from AWS by design: the router's conditional create and enqueue, the worker's
# receive, conditional start, upload, conditional finish and delete.
REQUESTS_PER_JOB = 7


def client_call_cpu_ms(calls: int = 200) -> float:
    """CPU milliseconds one AWS SDK call costs this process, measured against a loopback server
    that answers at once (``{}``), so only the client's work counts: botocore building, signing,
    sending and parsing a ``ReceiveMessage``, through the same client factory as the pipeline's."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from comfyfab.cloud import Cloud

    class Null(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        wbufsize = 1 << 16  # headers and body leave in one segment

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Null)
    threading.Thread(target=server.serve_forever, daemon=True, name="null-aws").start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        sqs = Cloud(BackendSpec(kind="embedded", region="us-east-1", endpoint_url=url)).client("sqs")
        queue = f"{url}/000000000000/null.fifo"

        def receive() -> None:
            sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1,
                                MessageSystemAttributeNames=["ApproximateReceiveCount"])

        for _ in range(20):  # connections, caches
            receive()
        t0 = time.thread_time()  # this thread only: the server's threads do not count
        for _ in range(calls):
            receive()
        return (time.thread_time() - t0) / calls * 1000
    finally:
        server.shutdown()
        server.server_close()


PHASES = (("checks", "checks"), ("store", "record write"), ("enqueue", "SQS send"))


def where_the_time_went(lat_s: list[float], timings: list[dict[str, float]], share: float = 0.05) -> str | None:
    """The median of each router phase (its Server-Timing) over the slowest ``share`` of the requests,
    against all of them: whether the slow ones waited in an AWS call, in the checks, in the router
    outside them (threads, event loop) or outside the router (network, the client).  None without
    timings."""
    def split(t: float, m: dict[str, float]) -> dict[str, float]:
        own = {label: m.get(key, 0.0) for key, label in PHASES}
        return {**own, "rest of the router": m["handler"] - sum(own.values()),
                "outside the router": t * 1000 - m["handler"]}

    rows = [split(t, m) for t, m in sorted(zip(lat_s, timings), key=lambda r: r[0]) if "handler" in m]
    if not rows:
        return None
    slow = rows[-max(1, int(round(len(rows) * share))):]
    shown = ", ".join(f"{label} {np.median([r[label] for r in slow]):.1f} "
                      f"({np.median([r[label] for r in rows]):.1f})" for label in rows[0])
    return f"the slowest {len(slow)} of {len(rows)}, median ms (all in brackets): {shown}"


def _pct(lat_s: list[float]) -> str:
    ms = np.array(lat_s) * 1000
    # p95 beside p99: of a few dozen requests, p99 is nearly the slowest one, so one pause decides it
    return (f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, "
            f"p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms")


ROUTER_P99_TARGET_MS = 40.0   # this 2-core machine (issue target)
CASE_STUDY_P99_MS = 80.0      # what the case study promises
RATES = (10.0, 20.0, 30.0, 40.0, 50.0)


def plot_sweep(sweep: list[tuple[float, float, float]], path: Path,
               alone: list[tuple[float, float, float]] | None = None) -> Path:
    """Router latency p50/p99 against the offered load (while the fleet drains, and ``alone`` when
    given), with the target and the case study's promise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for points, how, style in ((sweep, "fleet draining", "o-"), (alone or [], "router alone", "s--")):
        if not points:
            continue
        rates, p50, p99 = (list(x) for x in zip(*points))
        ax.plot(rates, p99, style, color="tab:blue", label=f"p99, {how}")
        ax.plot(rates, p50, style, color="tab:orange", label=f"p50, {how}")
    ax.axhline(ROUTER_P99_TARGET_MS, color="tab:red", ls="--", lw=1, label=f"target p99 {ROUTER_P99_TARGET_MS:g} ms")
    ax.axhline(CASE_STUDY_P99_MS, color="grey", ls=":", lw=1, label=f"case study p99 {CASE_STUDY_P99_MS:g} ms")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("offered load, POST /v1/jobs per second (open loop)")
    ax.set_ylabel("latency from when due, ms")
    ax.set_title("comfyfab router latency against offered load")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_bench(cfg: FabricConfig, backend: BackendSpec, clients: int, requests: int, jobs: int, workers: int,
              rates: tuple[float, ...] = RATES, router_process: bool = False, seconds_per_rate: float = 10.0,
              out: Path | None = Path("runs/bench"), repeat: int = 1) -> int:
    console = Console()
    with Stack(cfg, backend=backend, engine="noop", cold_starts=False, autoscale=False, warm_workers=False,
               executor_processes=True, router_process=router_process,
               progress=lambda m: console.print(f"[dim]• {m}[/]")) as stack:
        done = _Done(stack)
        for t in cfg.tenants:
            stack.fleet.apply(t.id, ScaleDecision(add=workers), warm=True)
        warm = _load(stack, min(48, jobs), clients)  # warm-up: connections, caches
        done.wait(warm["codes"].get(202, 0), console)
        base = done()

        console.print(f"[bold]router while the fleet drains[/]: {clients} concurrent clients (separate process), "
                      f"{workers} workers per tenant")
        r = _load(stack, requests, clients)
        done.wait(base + r["codes"].get(202, 0), console)
        base = done()
        console.print(f"  closed loop, {requests} back-to-back submissions: POST /v1/jobs {_pct(r['latencies'])}; "
                      f"[bold]{len(r['latencies']) / r['wall']:.0f} req/s[/] (the router's capacity); "
                      f"status codes {r['codes']}")
        sweep = _sweep(stack, clients, rates, seconds_per_rate, console, done)
        _held(sweep, "while the fleet drains", console)

        pids = {"router": stack.router_pid, "workers": os.getpid()} if router_process else \
            {"pipeline (router, workers)": os.getpid()}
        pids["AWS emulator"] = getattr(getattr(stack, "_embedded", None), "pid", None)
        pids.update({f"stand-in {i + 1}": getattr(e, "pid", None) for i, e in enumerate(stack._executors)})
        # what one SDK call costs is the machine's, not a run's: measured once, and only where it is printed
        client_ms = client_call_cpu_ms() if pids["AWS emulator"] is not None else 0.0
        runs = []
        for i in range(repeat):
            console.print(f"[bold]end to end[/]{f' (run {i + 1} of {repeat})' if repeat > 1 else ''}: {jobs} jobs, "
                          f"{workers} workers per tenant, no-op executor")
            runs.append(_end_to_end(stack, jobs, clients, pids, done, client_ms, console))
        if repeat > 1:
            console.print(f"  end to end over {repeat} runs: min {min(runs):.1f}, median "
                          f"{float(np.median(runs)):.1f}, max {max(runs):.1f} jobs/s (this machine's speed drifts: "
                          "compare configurations by alternating runs)")

        # last, so that the jobs it leaves queued touch no other figure
        _stop_fleet(stack)
        console.print(f"[bold]router alone[/]: {clients} concurrent clients (separate process), the workers "
                      "stopped (the jobs wait in SQS)")
        alone = _sweep(stack, clients, rates, seconds_per_rate, console)
        _held(alone, "alone", console)

        # what those queued jobs cost the fleet to drain: the same work as end to end less the router's
        queued = sum(stack.queues.depth(t.id, c) for t in cfg.tenants for c in PRIORITY_ORDER)
        base = done()
        fleet_pids = {k: v for k, v in pids.items() if k != "router"}
        cpu0 = _cpus(fleet_pids)
        t0 = time.time()
        for t in cfg.tenants:
            stack.fleet.apply(t.id, ScaleDecision(add=workers), warm=True)
        t_end = done.wait(base + queued, console)
        spent = _spent(cpu0, _cpus(fleet_pids))
        console.print(f"[bold]the fleet drains that backlog[/]: {queued} queued jobs, {workers} workers per "
                      f"tenant, done in {t_end - t0:.2f} s: [bold]{queued / max(t_end - t0, 1e-9):.1f} jobs/s[/]")
        shown = [f"{k} {v / max(queued, 1) * 1000:.1f}" for k, v in spent.items() if v is not None]
        if shown:
            console.print(f"  CPU per job (ms): {', '.join(shown)}")
        if out is not None and sweep:
            console.print(f"  plot: {plot_sweep(sweep, out / 'router_latency.png', alone=alone)}")
    return 0


def _end_to_end(stack: Stack, jobs: int, clients: int, pids: dict[str, Any], done: "_Done", client_ms: float,
                console: Console) -> float:
    """Submit ``jobs`` jobs and wait until every one has succeeded or failed; print jobs/s, CPU per job
    per process and AWS requests per job; return the jobs/s."""
    _settle(stack)
    base = done()
    req0 = _requests(stack)
    cpu0: dict[str, float | None] = {}
    # The clock starts at the first submission: the load generator's own start-up is no part of the pipeline.
    r2 = _load(stack, jobs, clients, on_ready=lambda: cpu0.update(_cpus(pids)))
    t0 = r2["start"]
    t_end = done.wait(base + r2["codes"].get(202, 0), console)
    n = r2["codes"].get(202, 0)
    rate = n / (t_end - t0)
    console.print(f"  {n} jobs accepted → stored in S3 → succeeded in {t_end - t0:.2f} s: "
                  f"[bold]{rate:.1f} jobs/s[/] (target on this machine: ≥ 50 jobs/s)")
    _settle(stack)
    cpu = _spent(cpu0, _cpus(pids))
    req1 = _requests(stack)
    cpu["HTTP clients"] = r2.get("cpu_s")
    shown = [f"{k} {v / max(n, 1) * 1000:.1f}" for k, v in cpu.items() if v is not None]
    if shown:
        console.print(f"  CPU per job (ms): {', '.join(shown)}; {os.cpu_count()} cores")
        console.print(f"    {cpu_ceiling(cpu, n, t_end - t0, os.cpu_count() or 1)}")
        console.print(f"    {one_process_ceiling(cpu, n, t_end - t0)}")
    if req0 is not None and req1 is not None:
        _print_requests(req0, req1, n, cpu, client_ms, console)
    dropped = sum(w.stats.duplicates_dropped for w in stack.fleet.workers())
    console.print(f"  duplicate deliveries dropped by the workers (the job had already run): {dropped}")
    return rate


def cpu_ceiling(cpu_s: dict[str, float | None], jobs: int, wall_s: float, cores: int) -> str:
    """What the processes' CPU says about the run: CPU per job in all, how many cores were busy, and the
    jobs/s this CPU per job allows with every core busy.  Missing figures (None) leave the total short,
    and the line says so."""
    known = [v for v in cpu_s.values() if v is not None]
    total_ms = sum(known) / max(jobs, 1) * 1000
    busy = sum(known) / max(wall_s, 1e-9)
    short = "" if len(known) == len(cpu_s) else f" (without {', '.join(k for k, v in cpu_s.items() if v is None)})"
    return (f"all of it: {total_ms:.1f} ms of CPU per job{short}, {busy:.2f} of {cores} cores busy; at this CPU "
            f"per job {cores} cores allow at most [bold]{1000 * cores / max(total_ms, 1e-9):.0f} jobs/s[/]")


def one_process_ceiling(cpu_s: dict[str, float | None], jobs: int, wall_s: float) -> str:
    """The busiest process, and the jobs/s its CPU per job allows it alone: a Python process runs its
    Python code on one core at a time (the interpreter lock), so however many cores there are, a process
    that spends X ms per job caps the run at 1000 / X jobs/s."""
    known = {k: v for k, v in cpu_s.items() if v is not None}
    if not known or jobs <= 0:
        return "the busiest process: not measured"
    name, used = max(known.items(), key=lambda kv: kv[1])
    ms = used / jobs * 1000
    return (f"the busiest process, {name}, used {used / max(wall_s, 1e-9):.2f} of one core ({ms:.1f} ms per job); "
            f"one interpreter runs on about one core, so it alone caps the run at [bold]{1000 / max(ms, 1e-9):.0f} "
            f"jobs/s[/]")


def _settle(stack: Stack, timeout_s: float = 10.0) -> None:
    """Wait until no worker holds a job.  A job counts as done when its record says so, and its worker
    deletes the message just after: counting requests before that would give the delete to the next phase."""
    deadline = time.monotonic() + timeout_s
    while any(w.busy for w in stack.fleet.workers()) and time.monotonic() < deadline:
        time.sleep(0.005)


def _stop_fleet(stack: Stack, timeout_s: float = 15.0) -> None:
    """Stop every worker and wait until none is left polling (a stopped worker leaves its pool at once,
    but drains in the background: it may be in a long poll)."""
    stopping = stack.fleet.workers()
    for t in stack.cfg.tenants:
        stack.fleet.apply(t.id, ScaleDecision(stop=tuple(m.worker.name for m in stack.fleet.pools[t.id])))
    deadline = time.monotonic() + timeout_s
    while any(w.alive for w in stopping) and time.monotonic() < deadline:
        time.sleep(0.05)


def _sweep(stack: Stack, clients: int, rates: tuple[float, ...], seconds_per_rate: float, console: Console,
           done: "_Done | None" = None) -> list[tuple[float, float, float]]:
    """Open loop at each offered rate: (rate, p50 ms, p99 ms); with ``done``, each rate's jobs are
    drained before the next rate starts."""
    out = []
    for rate in rates:
        n_open = max(clients, int(rate * seconds_per_rate))
        base = done() if done is not None else 0
        r = _load(stack, n_open, clients, rate=rate)
        if done is not None:
            done.wait(base + r["codes"].get(202, 0), console)
        ms = np.array(r["latencies"]) * 1000
        out.append((rate, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))))
        console.print(f"  open loop, {n_open} submissions due at {rate:g} req/s: POST /v1/jobs "
                      f"[bold]{_pct(r['latencies'])}[/] (from when each was due); status codes {r['codes']}")
        went = where_the_time_went(r["latencies"], r.get("timings", []))
        if went:
            console.print(f"    {went}")
    return out


def _held(sweep: list[tuple[float, float, float]], how: str, console: Console) -> None:
    rates = [rate for rate, _, _ in sweep]
    held = [rate for rate, _, p99 in sweep if p99 <= ROUTER_P99_TARGET_MS]
    console.print(f"  router p99 ≤ {ROUTER_P99_TARGET_MS:g} ms (target on this 2-core machine; case study "
                  f"promise {CASE_STUDY_P99_MS:g} ms), {how}: "
                  + (f"[bold]up to {max(held):g} req/s offered[/]" if held == rates else
                     f"[bold]at {', '.join(f'{x:g}' for x in held)} req/s offered[/]" if held else
                     f"[bold]at none of {', '.join(f'{x:g}' for x in rates)} req/s[/]"))


class _Done:
    """Counts finished jobs from the stack's event list, reading each event once."""

    def __init__(self, stack: Stack):
        self.stack, self.pos, self.count = stack, 0, 0

    def __call__(self) -> int:
        events = self.stack.events
        end = len(events)
        self.count += sum(1 for e in events[self.pos:end] if e[1] in ("succeeded", "failed"))
        self.pos = end
        return self.count

    def unfinished(self) -> str:
        """Where the jobs that have not finished are: their records, and what the queues still hold."""
        stuck = [r for r in self.stack.store.scan_all() if r.status.value not in ("succeeded", "failed")]
        queues = self.stack.queues
        held = sum(queues.depth(t.id, c, in_flight=True) for t in self.stack.cfg.tenants for c in PRIORITY_ORDER)
        shown = ", ".join(f"{r.jobId} ({r.tenantId}, {r.priority}, {r.status.value}, attempts {r.attempts})"
                          for r in stuck[:5])
        return (f"{len(stuck)} records unfinished{': ' + shown if shown else ''}"
                f"{' …' if len(stuck) > 5 else ''}; {held} messages in the queues")

    def wait(self, target: int, console: Console, timeout_s: float = 600) -> float:
        """Wait until ``target`` jobs in all have finished; the wall time then."""
        deadline = time.monotonic() + timeout_s
        while self() < target:
            if time.monotonic() > deadline:
                console.print(f"[red]timed out: {self.count}/{target} done; {self.unfinished()}[/]")
                break
            time.sleep(0.01)
        return time.time()


def run_pickup(cfg: FabricConfig, backend: BackendSpec, workers: int = 4, per_class: int = 8,
               idle_s: tuple[float, float] = (1.0, 2.0), seed: int = 7) -> int:
    """``comfyfab bench pickup``: how long a job submitted to an idle pool waits for a worker.

    One tenant's pool of ``workers`` idles (every worker in its long poll); then, one at a time, a job of
    each class in turn is submitted, after an idle spell drawn from ``idle_s`` so that it meets the long
    polls at a random phase, and its record's ``startedAt - createdAt`` (accepted → running) is taken.
    Idle workers spread their long polls over the classes (:meth:`comfyfab.policy.PollPolicy.idle_class`):
    with fewer workers than classes, the classes without a waiting poll show the wait of the next one.
    """
    import random
    from datetime import datetime

    import httpx

    console = Console()
    tenant = cfg.tenants[0]
    waits: dict[str, list[float]] = {c: [] for c in PRIORITY_ORDER}
    rng = random.Random(seed)
    with Stack(cfg.first_tenants(1), backend=backend, engine="noop", cold_starts=False, autoscale=False,
               warm_workers=False, executor_processes=True,
               progress=lambda m: console.print(f"[dim]• {m}[/]")) as stack:
        stack.fleet.apply(tenant.id, ScaleDecision(add=workers), warm=True)
        console.print(f"[bold]pickup[/]: {per_class} jobs per class, one at a time, to {tenant.id}'s idle pool of "
                      f"{workers} workers (long poll {cfg.queues.long_poll_s} s)")
        with httpx.Client(base_url=stack.router_url, timeout=30,
                          headers={"Authorization": f"Bearer {stack.api_keys[tenant.id]}"}) as http:
            for job in _jobs(per_class * len(PRIORITY_ORDER)):  # the classes in turn
                time.sleep(rng.uniform(*idle_s))
                seen = len(stack.events)
                r = http.post("/v1/jobs", json=job)
                if r.status_code != 202:
                    raise RuntimeError(f"the router refused a bench job: {r.status_code} {r.text[:200]}")
                # the worker's "started" event says when to read the record (no polling of the job table,
                # which would load the emulator whose latency is part of what is measured)
                deadline = time.monotonic() + 30
                while not any(e[1] == "started" and e[2] == job["jobId"] for e in stack.events[seen:]):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"job {job['jobId']} was not picked up within 30 s")
                    time.sleep(0.005)
                rec = stack.store.get(job["jobId"])
                started, created = datetime.fromisoformat(rec.startedAt), datetime.fromisoformat(rec.createdAt)
                waits[job["priority"]].append((started - created).total_seconds() * 1000)
    for cls, v in waits.items():
        a = np.array(v)
        console.print(f"  {cls:9s} accepted → running: median [bold]{np.median(a):.0f} ms[/], max {a.max():.0f} ms "
                      f"({', '.join(f'{x:.0f}' for x in sorted(v))})")
    return 0


def run_standin(clients: int = 4, jobs: int = 800) -> int:
    """``comfyfab bench standin``: what one job costs the ComfyUI stand-in and its client, on the no-op engine.

    A stand-in runs as a process of its own, as in the pipeline; ``clients`` threads of this process each
    hold a :class:`~pipeline.comfy.client.ComfyClient` (one kept websocket, as a worker does) and run the
    bench's txt2img graph, ``jobs`` in all: ``POST /prompt``, the websocket's events, ``GET /view``.
    Prints jobs/s and the CPU per job of the stand-in process and of the clients' process.
    """
    import tempfile
    import threading

    from comfyfab.child import ChildServer
    from pipeline.comfy.client import ComfyClient
    from pipeline.comfy.workflows import txt2img

    console = Console()
    parser = "httptools" if _importable("httptools") else "h11"  # what uvicorn's http="auto" takes
    with tempfile.TemporaryDirectory(prefix="comfyfab-standin-bench-") as out:
        server = ChildServer("pipeline.comfy", ["--engine", "noop", "--output-dir", out, "--cpu-threads", "1"],
                             "the ComfyUI stand-in")
        port = server.start()
        try:
            pool = [ComfyClient(f"http://127.0.0.1:{port}") for _ in range(clients)]
            for c in pool:  # connections, the kept websocket, caches
                c.run(txt2img("warm-up", seed=0, steps=2, width=64, height=64))
            per = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]

            def go(c: ComfyClient, n: int, first: int) -> None:
                for i in range(first, first + n):
                    c.run(txt2img("a bench of lighthouses", seed=i, steps=2, width=64, height=64))

            threads = [threading.Thread(target=go, args=(c, n, sum(per[:i])))
                       for i, (c, n) in enumerate(zip(pool, per))]
            cpu0, mine0, t0 = cpu_s(server.pid), time.process_time(), time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall, cpu1, mine1 = time.monotonic() - t0, cpu_s(server.pid), time.process_time()
            for c in pool:
                c.close()
        finally:
            server.stop()
    console.print(f"[bold]stand-in[/]: {jobs} jobs on the no-op engine from {clients} clients, "
                  f"uvicorn parsing HTTP with {parser}")
    standin = f"{(cpu1 - cpu0) / jobs * 1000:.2f} ms" if None not in (cpu0, cpu1) else "not measured"
    console.print(f"  {jobs / wall:.0f} jobs/s; CPU per job: the stand-in [bold]{standin}[/], "
                  f"its clients {(mine1 - mine0) / jobs * 1000:.2f} ms")
    return 0


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


DEPTHS = (50, 2000, 8000)


def queue_costs(queues: Any, tenant_id: str, calls: int) -> dict[str, float]:
    """Wall milliseconds per call of the pipeline's four SQS calls, made through its own
    :class:`~pipeline.queues.JobQueues` on a queue kept at its depth: each round receives and deletes a
    message as a worker does and sends one in its place as the router does; then the router's depth
    question (one GetQueueAttributes) is asked ``calls`` times."""
    job = _jobs(1)[0]
    cls = job["priority"]
    took = {"ReceiveMessage": 0.0, "DeleteMessage": 0.0, "SendMessage": 0.0, "GetQueueAttributes": 0.0}
    for _ in range(calls):
        t0 = time.perf_counter()
        got = queues.receive(tenant_id, cls)
        t1 = time.perf_counter()
        if not got:
            raise RuntimeError(f"{queues.urls[(tenant_id, cls)]} answered a receive with no message "
                               "while holding its backlog")
        queues.delete(got[0])
        t2 = time.perf_counter()
        queues.send(tenant_id, cls, dict(job, jobId=str(uuid.uuid4())))
        t3 = time.perf_counter()
        took["ReceiveMessage"] += t1 - t0
        took["DeleteMessage"] += t2 - t1
        took["SendMessage"] += t3 - t2
    t0 = time.perf_counter()
    for _ in range(calls):
        queues.depth(tenant_id, cls)
    took["GetQueueAttributes"] = time.perf_counter() - t0
    return {k: v / calls * 1000 for k, v in took.items()}


def run_queues(cfg: FabricConfig, backend: BackendSpec, depths: tuple[int, ...] = DEPTHS, calls: int = 200) -> int:
    """``comfyfab bench queues``: what each SQS call of the pipeline costs as a FIFO queue deepens.

    For each depth, a FIFO queue of the bench's own (SSE on, the realtime class's visibility timeout) is
    filled with that many job messages, in the config's message groups, and the four calls the pipeline
    makes are timed at that depth through its own queue client, client included.  On AWS this is the
    service's latency; on an emulator it says whether a replay that queues thousands of jobs slows down as
    they pile up.  The queues are deleted at the end, whatever happens.
    """
    import json

    from rich.progress import Progress

    from comfyfab.cloud import connect

    from .queues import JobQueues, message_group

    console = Console()
    one = cfg.first_tenants(1)
    tenant_id = one.tenants[0].id
    cloud, server = connect(backend)
    sqs = cloud.client("sqs")
    made: list[str] = []
    rows: list[tuple[int, dict[str, float]]] = []
    try:
        console.print(f"[bold]queues[/]: {calls} calls of each kind per depth on {cloud.describe()}"
                      + (f" ({server.describe()})" if server is not None else ""))
        body = json.dumps(_jobs(1)[0], separators=(",", ":"))  # a job's message, workflow and all
        with Progress(console=console, transient=True) as progress:
            for depth in depths:
                name = f"comfyfab-bench-{uuid.uuid4().hex[:8]}-{depth}.fifo"
                url = sqs.create_queue(QueueName=name, Attributes={
                    "FifoQueue": "true", "SqsManagedSseEnabled": "true",
                    "VisibilityTimeout": str(cfg.queues.cls("realtime").visibility_timeout_s)})["QueueUrl"]
                made.append(url)
                task = progress.add_task(f"filling a queue to {depth} messages", total=depth)
                for first in range(0, depth, 10):
                    ids = [str(uuid.uuid4()) for _ in range(min(10, depth - first))]
                    sqs.send_message_batch(QueueUrl=url, Entries=[
                        {"Id": str(i), "MessageBody": body, "MessageDeduplicationId": job_id,
                         "MessageGroupId": message_group(job_id, cfg.queues.message_groups)}
                        for i, job_id in enumerate(ids)])
                    progress.advance(task, len(ids))
                progress.update(task, description=f"timing {calls} calls of each kind at {depth} messages")
                # the pipeline's queue client, every class of the tenant pointed at the bench's queue
                queues = JobQueues(cloud, one, {(tenant_id, c): url for c in PRIORITY_ORDER}, {})
                rows.append((depth, queue_costs(queues, tenant_id, calls)))
                progress.remove_task(task)
                console.print(f"  {depth:>6} queued: " + ", ".join(f"{k} {v:.2f} ms" for k, v in rows[-1][1].items()))
    finally:
        for url in made:
            try:
                sqs.delete_queue(QueueUrl=url)
            except Exception as exc:  # a queue left behind is named in the output, never hidden
                console.print(f"[yellow]could not delete {url}: {exc}[/]")
        if server is not None:
            server.stop()
    if len(rows) > 1:
        (d0, first), (d1, last) = rows[0], rows[-1]
        console.print(f"  from {d0} to {d1} queued: " + ", ".join(
            f"{k} x{last[k] / first[k]:.2f}" for k in first) + " (1.00: the cost does not grow with the queue)")
    return 0
