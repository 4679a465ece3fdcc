"""Run an ASGI app under uvicorn in a daemon thread on a loopback port (real HTTP, in-process)."""

from __future__ import annotations

import gc
import socket
import threading
import time
from typing import Any

import uvicorn


class ServerThread:
    """One uvicorn server in a background thread.

    The listening socket is bound at construction, so ``url`` is known (and
    the port held) before the app starts; port 0 picks a free one with no
    race.  The socket is created with ``IPPROTO_TCP`` because asyncio only
    sets TCP_NODELAY on accepted sockets whose protocol says TCP -- without
    it every small reply waits ~40 ms for a delayed ACK.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "server",
                 lifespan: str = "off", ws: str = "auto"):
        self.app = app
        self.host = host
        self.name = name
        self._lifespan, self._ws = lifespan, ws
        self._socket: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 30.0) -> "ServerThread":
        # loop="asyncio": with uvloop installed, "auto" picks it, and a uvloop server run in a
        # thread did not return from stop() (seen with uvicorn 0.3x, uvloop 0.23).
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan=self._lifespan,
                                ws=self._ws, loop="asyncio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} failed to start on {self.url}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name} did not start within {timeout_s:g}s on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
        self._server = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def freeze_startup_heap(keep_frozen: bool = False) -> int:
    """Exempt everything allocated so far from the garbage collector's full passes.

    A started stack holds ~600,000 long-lived objects (botocore service models,
    pydantic schemas, the PHI recognisers).  Python's oldest-generation
    collection walks all of them, pausing every thread of a loopback service
    for hundreds of milliseconds: the router's p99 at 25 req/s went from
    ~100 ms to ~450 ms.  Called once a server has started, like CPython's docs
    suggest for pre-fork servers; returns how many objects were frozen.

    ``keep_frozen`` also freezes what survives each later full collection
    (:func:`keep_heap_frozen`), for servers whose heap keeps growing after
    start.
    """
    gc.collect()
    gc.freeze()
    if keep_frozen:
        keep_heap_frozen()
    return gc.get_freeze_count()


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def keep_heap_frozen() -> None:
    """After every full collection, freeze what survived it (idempotent).

    The embedded AWS server's heap grows after it starts: moto imports each
    service on its first request, and every job adds queue messages, table
    items and log events.  Each time the heap has grown by a quarter, Python
    walks all of it, and every AWS call waits: in a replay of steady-40k the
    server paused for 134 and 145 ms, and exactly those two moments were the
    replay's two slowest receives (0.52 and 0.55 fabric s, where a receive
    usually takes 0.05).  With survivors frozen, a full collection walks only
    what was allocated since the previous one.

    The price: a cycle that was alive when frozen is never freed.  Servers
    that start over (the embedded server's reset) call :func:`compact_heap`.
    """
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)


def compact_heap() -> int:
    """Thaw, collect everything, freeze again: frees the frozen garbage, once, at a quiet moment."""
    gc.unfreeze()
    return freeze_startup_heap()
