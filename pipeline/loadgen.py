"""The benchmark's load generator: HTTP clients that submit jobs to the router, in a process of their own.

Standard library only, so that the process starts in a tenth of a second
and its start-up, which is no part of the pipeline, stays out of what the
bench measures: it answers the moment its first request was sent (or due),
and its CPU from then on.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit


def cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc); None elsewhere."""
    if pid is None:
        return None
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def server_timing(header: str) -> dict[str, float]:
    """``Server-Timing: checks;dur=1.20, store;dur=4.31`` as ``{"checks": 1.2, "store": 4.31}`` (ms)."""
    out: dict[str, float] = {}
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if name and key == "dur":
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
    return out


def submit(url: str, keys: list[str], n: int, clients: int, jobs: list[dict], q: Any,
           rate: float | None = None) -> None:
    """``clients`` threads send ``n`` jobs: back to back, or job i due at i / ``rate`` s.

    Each thread keeps one connection open and sends bodies encoded before the
    clock starts, with :mod:`http.client`: the load generator shares the
    cores with what it measures, so it should cost as little as it can.
    Puts ``{"pid"}`` on ``q`` when ready, then the results: latencies,
    Server-Timing per answer, status codes, ``start`` (the epoch time the
    first request was sent or due) and ``cpu_s`` (this process's CPU from
    then on).
    """
    where = urlsplit(url)
    bodies = [json.dumps(job, separators=(",", ":")).encode() for job in jobs[:n]]
    lat: list[float] = []
    timings: list[dict[str, float]] = []  # each answer's Server-Timing (ms by name), beside its latency
    codes: dict[int, int] = {}
    lock = threading.Lock()
    it = iter(range(n))
    q.put({"pid": os.getpid()})
    # On a schedule, the first request is due once every thread has started; back to back, it goes now.
    t0 = time.perf_counter() + (0.2 if rate else 0.0)
    start_epoch = time.time() + (t0 - time.perf_counter())
    cpu0 = cpu_s(os.getpid())

    def post(conn: http.client.HTTPConnection, i: int) -> tuple[int, dict[str, float]]:
        headers = {"Authorization": f"Bearer {keys[i % len(keys)]}", "Content-Type": "application/json"}
        conn.request("POST", "/v1/jobs", body=bodies[i], headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, server_timing(resp.getheader("Server-Timing") or "")

    def post_again_if_dropped(conn: http.client.HTTPConnection, i: int) -> tuple[int, dict[str, float]]:
        try:
            return post(conn, i)
        except (http.client.RemoteDisconnected, ConnectionError):
            conn.close()  # the server closed an idle connection: the next request opens a new one
            return post(conn, i)

    def run() -> None:
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
        try:
            while True:
                with lock:
                    i = next(it, None)
                if i is None:
                    return
                if rate:
                    due = t0 + i / rate
                    time.sleep(max(0.0, due - time.perf_counter()))
                    begin = due  # latency from when the request was due
                else:
                    begin = time.perf_counter()
                status, timing = post_again_if_dropped(conn, i)
                dt = time.perf_counter() - begin
                with lock:
                    lat.append(dt)
                    timings.append(timing)
                    codes[status] = codes.get(status, 0) + 1
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1 = cpu_s(os.getpid())
    q.put({"latencies": lat, "timings": timings, "codes": codes, "wall": time.perf_counter() - t0,
           "start": start_epoch, "cpu_s": cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None})
