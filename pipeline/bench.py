"""``comfyfab bench pipeline``: router latency and end-to-end throughput (a benchmark, not a test).

The whole stack runs with ``workers`` workers per tenant on the no-op
executor engine (full graph validation and HTTP round trips, no torch).
``clients`` concurrent HTTP clients in a separate process (so they do not
share the server's interpreter) submit jobs.

Router -- the client-side latency of ``POST /v1/jobs`` (auth, validation, PHI
scan, conditional DynamoDB write, SQS send, ETA) while the fleet drains.

End to end -- jobs completed per second, from the first submission to the
last output written to S3 and its record marked succeeded.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from typing import Any

import numpy as np
from rich.console import Console

from comfyfab.cloud import BackendSpec
from comfyfab.config import PRIORITY_ORDER, FabricConfig
from comfyfab.policy import ScaleDecision

from .stack import Stack


def _client_proc(url: str, keys: list[str], n: int, clients: int, jobs: list[dict], q: Any) -> None:
    import threading

    import httpx

    lat: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    it = iter(range(n))

    def run(ci: int) -> None:
        with httpx.Client(timeout=60) as http:
            while True:
                with lock:
                    i = next(it, None)
                if i is None:
                    return
                job = jobs[i]
                headers = {"Authorization": f"Bearer {keys[i % len(keys)]}"}
                t0 = time.perf_counter()
                r = http.post(f"{url}/v1/jobs", json=job, headers=headers)
                dt = time.perf_counter() - t0
                with lock:
                    lat.append(dt)
                    codes[r.status_code] = codes.get(r.status_code, 0) + 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q.put({"latencies": lat, "codes": codes, "wall": time.perf_counter() - t0, "start": time.time()})


def _jobs(n: int) -> list[dict]:
    from pipeline.comfy.workflows import txt2img

    wf = txt2img("a bench of lighthouses", seed=1, steps=2, width=64, height=64)
    return [{"jobId": str(uuid.uuid4()), "priority": PRIORITY_ORDER[i % 3], "resolution": [64, 64],
             "seed": i, "model": "tiny-sd:1", "workflow": wf} for i in range(n)]


def _load(stack: Stack, n: int, clients: int) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    keys = [stack.api_keys[t.id] for t in stack.cfg.tenants]
    p = ctx.Process(target=_client_proc, args=(stack.router_url, keys, n, clients, _jobs(n), q))
    p.start()
    out = q.get()
    p.join()
    return out


def run_bench(cfg: FabricConfig, backend: BackendSpec, clients: int, requests: int, jobs: int, workers: int) -> int:
    console = Console()
    with Stack(cfg, backend=backend, engine="noop", cold_starts=False, autoscale=False, warm_workers=False,
               progress=lambda m: console.print(f"[dim]• {m}[/]")) as stack:
        for t in cfg.tenants:
            stack.fleet.apply(t.id, ScaleDecision(add=workers), warm=True)
        warm = _load(stack, min(48, jobs), clients)
        _wait_done(stack, warm["codes"].get(202, 0), console)

        console.print(f"[bold]router[/]: {requests} submissions from {clients} concurrent clients "
                      f"(separate process), {workers} workers per tenant draining")
        base = _count_done(stack)
        r = _load(stack, requests, clients)
        _wait_done(stack, base + r["codes"].get(202, 0), console)
        lat = np.array(r["latencies"]) * 1000
        console.print(f"  POST /v1/jobs latency p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, "
                      f"max {lat.max():.1f} ms; {len(lat) / r['wall']:.0f} req/s; status codes {r['codes']}")
        console.print("  (case study promise: 80 ms; target on this 2-core machine: p99 ≤ 40 ms)")

        console.print(f"[bold]end to end[/]: {jobs} jobs, {workers} workers per tenant, no-op executor")
        base = _count_done(stack)
        t0 = time.time()
        r2 = _load(stack, jobs, clients)
        t_end = _wait_done(stack, base + r2["codes"].get(202, 0), console)
        n = r2["codes"].get(202, 0)
        console.print(f"  {n} jobs accepted → stored in S3 → succeeded in {t_end - t0:.2f} s: "
                      f"[bold]{n / (t_end - t0):.1f} jobs/s[/] (target on this machine: ≥ 50 jobs/s)")
    return 0


def _count_done(stack: Stack) -> int:
    return sum(1 for e in stack.events if e[1] in ("succeeded", "failed"))


def _wait_done(stack: Stack, target: int, console: Console, timeout_s: float = 600) -> float:
    deadline = time.monotonic() + timeout_s
    while _count_done(stack) < target:
        if time.monotonic() > deadline:
            console.print(f"[red]timed out: {_count_done(stack)}/{target} done[/]")
            break
        time.sleep(0.01)
    return time.time()
