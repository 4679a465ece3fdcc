"""Loopback servers run as child processes: the embedded AWS, the ComfyUI stand-ins.

A server in its own process does its CPU work beside the pipeline's rather
than under the same interpreter lock, which is how the real system runs
(ComfyUI is its own process; AWS is elsewhere).  The protocol is small:

* the parent starts ``python -m <module> ... --port 0 --announce``;
* the child binds, prints one JSON line ``{"port": N}`` and serves;
* the child exits when its standard input closes, so it never outlives the
  process that started it, however that process ends;
* the child runs in a session of its own, so signals meant for the parent
  (a Ctrl-C at its terminal) do not stop it before the parent is done with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

ROOT = str(Path(__file__).resolve().parent.parent)  # the folder holding comfyfab/, pipeline/, ...


class ChildServerError(RuntimeError):
    """The child did not start; the message carries the end of its stderr."""


class ChildServer:
    def __init__(self, module: str, args: list[str], name: str, start_timeout_s: float = 60.0):
        self.module, self.args, self.name = module, list(args), name
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen | None = None
        self._stderr: Any = None
        self.port: int | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> int:
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._stderr = tempfile.TemporaryFile()
        # A session of its own: a Ctrl-C at the terminal reaches the parent alone, which drains its workers
        # against the servers still up and then stops them (uWSGI, for one, would quit at once on SIGINT).
        self._proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args, "--port", "0", "--announce"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
                                      start_new_session=True)
        line: list[bytes] = []
        proc = self._proc
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout_s)
        try:
            self.port = int(json.loads(line[0])["port"])
        except (IndexError, ValueError, KeyError, TypeError):
            tail = self.stderr_tail()
            self.stop()
            raise ChildServerError(f"{self.name} did not start within {self.start_timeout_s:g} s"
                                   + (f":\n{tail}" if tail else "")) from None
        return self.port

    def stderr_tail(self, n: int = 2000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()[-n:].decode(errors="replace")

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()  # the child exits when its stdin closes
                proc.wait(timeout=timeout_s)
            except Exception:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.port = None


def ready(port: int, announce_port: bool, banner: str, on_exit: Callable[[], None] | None = None) -> None:
    """Child side, once serving: freeze the startup heap and whatever survives later full
    collections (:func:`comfyfab.serve.keep_heap_frozen`), then announce the port or print ``banner``."""
    from .serve import freeze_startup_heap

    freeze_startup_heap(keep_frozen=True)
    if announce_port:
        announce(port, on_exit)
    else:
        print(banner, flush=True)


def announce(port: int, on_exit: Callable[[], None] | None = None) -> None:
    """Child side: say the port, stop using stdout, exit when the parent's pipe closes
    (after ``on_exit``, e.g. flushing buffered audit events)."""
    print(json.dumps({"port": port}), flush=True)
    sys.stdout = sys.stderr  # nobody reads stdout after the port line

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            try:
                if on_exit is not None:
                    on_exit()
            finally:
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
