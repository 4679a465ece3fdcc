"""Run an ASGI app under uvicorn in a daemon thread on a loopback port (real HTTP, in-process)."""

from __future__ import annotations

import threading
import time

import httpx
import uvicorn

from .cloud import free_port


class ServerThread:
    """One uvicorn server in a background thread; ``url`` is set once it answers."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, name: str = "server",
                 health_path: str = "/healthz"):
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self.name = name
        self.health_path = health_path
        self.url = f"http://{host}:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 30.0) -> "ServerThread":
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._server.started:
                return self
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} failed to start on {self.url}")
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not start within {timeout_s:g}s on {self.url}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
