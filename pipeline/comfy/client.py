"""A synchronous client of ComfyUI's HTTP + websocket API.

Works the same against the stand-in and a real ComfyUI: it queues an
API-format prompt, follows progress on ``/ws`` (falling back to polling
``/history`` when the socket is unavailable or silent), and downloads the
images through ``/view``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Callable
from urllib.parse import urlencode

import urllib3

TERMINAL_EVENTS = ("execution_success", "execution_error", "execution_interrupted")


class ComfyError(Exception):
    """Any failure talking to a ComfyUI server."""


class ComfyValidationError(ComfyError):
    """``POST /prompt`` answered 400: ``body`` is ComfyUI's error body."""

    def __init__(self, body: dict[str, Any]):
        error = body.get("error") or {}
        super().__init__(f"{error.get('type', 'invalid_prompt')}: {error.get('message', '')} {error.get('details', '')}".strip())
        self.body = body
        self.node_errors = body.get("node_errors") or {}


class ComfyExecutionError(ComfyError):
    """The prompt ran and failed; ``details`` is the ``execution_error`` data."""

    def __init__(self, message: str, prompt_id: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.prompt_id = prompt_id
        self.details = details or {}


class ComfyTimeout(ComfyError, TimeoutError):
    """The prompt did not finish within the allowed time."""


ProgressCallback = Callable[[int, int], None]


class ComfyClient:
    """One ComfyUI server, addressed by URL (``http://host:port``)."""

    def __init__(self, url: str, timeout: float = 30.0, client_id: str | None = None, poll_interval: float = 0.05):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.client_id = client_id or uuid.uuid4().hex
        self.poll_interval = poll_interval
        # urllib3 rather than httpx: the same kept-alive connections at about half the CPU per request
        # (0.3-0.45 ms against 0.75-0.85 ms on the stand-in's /queue and /prompt), and a worker makes two
        # per job.  No retries and no redirects, as before: a failure is the caller's to judge.
        self._http = urllib3.PoolManager(maxsize=16, retries=False, timeout=urllib3.Timeout(total=timeout))
        # One websocket kept open for run(), as ComfyUI's own front end does:
        # a handshake and a reader thread per prompt cost more than the prompt
        # on the noop engine.  A second thread using the same client at the
        # same time gets a socket of its own for that call.
        self._ws: Any = None
        self._ws_lock = threading.Lock()

    # -- plumbing ------------------------------------------------------
    def close(self) -> None:
        with self._ws_lock:
            if self._ws is not None:
                _close(self._ws)
                self._ws = None
        self._http.clear()

    def __enter__(self) -> "ComfyClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                 **params: Any) -> urllib3.BaseHTTPResponse:
        url = f"{self.url}{path}" + (f"?{urlencode(params)}" if params else "")
        try:
            if body is None:
                return self._http.request(method, url)
            return self._http.request(method, url, body=json.dumps(body).encode(),
                                      headers={"Content-Type": "application/json"})
        except urllib3.exceptions.HTTPError as exc:
            raise ComfyError(f"{method} {url} failed: {exc}") from exc

    def _get(self, path: str, **params: Any) -> urllib3.BaseHTTPResponse:
        response = self._request("GET", path, **params)
        if response.status != 200:
            raise ComfyError(f"GET {self.url}{path} answered {response.status}: {_text(response)[:200]}")
        return response

    # -- reads -----------------------------------------------------------
    def object_info(self, node_class: str | None = None) -> dict[str, Any]:
        return self._get(f"/object_info/{node_class}" if node_class else "/object_info").json()

    def system_stats(self) -> dict[str, Any]:
        return self._get("/system_stats").json()

    def queue(self) -> dict[str, Any]:
        return self._get("/queue").json()

    def history(self, prompt_id: str | None = None) -> dict[str, Any]:
        return self._get(f"/history/{prompt_id}" if prompt_id else "/history").json()

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        return self._get("/view", filename=filename, subfolder=subfolder, type=type).data

    @staticmethod
    def images(history_entry: dict[str, Any]) -> list[dict[str, Any]]:
        """Every image reference in a history entry, in output-node order."""
        out = []
        for node_id in sorted(history_entry.get("outputs", {}), key=lambda n: (len(n), n)):
            out.extend(history_entry["outputs"][node_id].get("images", []))
        return out

    # -- writes ----------------------------------------------------------
    def queue_prompt(self, prompt: dict[str, Any], client_id: str | None = None,
                     extra_data: dict[str, Any] | None = None, prompt_id: str | None = None) -> str:
        """Queue ``prompt``; its prompt_id.  Raises ComfyValidationError on 400."""
        body: dict[str, Any] = {"prompt": prompt, "client_id": client_id or self.client_id}
        if extra_data:
            body["extra_data"] = extra_data
        if prompt_id:
            body["prompt_id"] = prompt_id
        response = self._request("POST", "/prompt", body)
        if response.status == 400:
            raise ComfyValidationError(response.json())
        if response.status != 200:
            raise ComfyError(f"POST {self.url}/prompt answered {response.status}: {_text(response)[:200]}")
        return response.json()["prompt_id"]

    def interrupt(self) -> None:
        self._request("POST", "/interrupt")

    # -- waiting ---------------------------------------------------------
    def _connect(self):
        """A websocket for this client id, or None when it cannot be opened."""
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        ws_url = "ws" + self.url[len("http"):] + f"/ws?clientId={self.client_id}"
        try:
            # A bounded buffer: an idle kept socket stops reading (and the
            # server stops queueing status for it) instead of growing without
            # end.  Unread messages are drained before reuse and before close,
            # or the close handshake would wait behind them.  No per-message
            # compression: the messages are small JSON and the executor sits
            # next to the worker, so deflating them only spends CPU on both ends.
            connection = connect(ws_url, open_timeout=self.timeout, max_size=None, max_queue=1024,
                                 compression=None)
        except (OSError, TimeoutError, WebSocketException):
            return None
        return connection.__enter__()

    def wait(self, prompt_id: str, timeout: float = 120.0, on_progress: ProgressCallback | None = None,
             prompt: dict[str, Any] | None = None, _socket: Any = None) -> dict[str, Any]:
        """Block until ``prompt_id`` has finished; its history entry.

        Progress comes from the websocket (``on_progress(value, max)``); the
        history is polled whenever the socket is silent or unavailable.  Given
        the ``prompt``, a run the socket followed from its start is answered
        from the socket alone (see :class:`_Followed`), as ComfyUI's own front
        end does, without a ``/history`` round trip.
        Raises ComfyExecutionError if the prompt failed, ComfyTimeout.
        """
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + timeout
        ws = _socket if _socket is not None else self._connect()
        # A socket opened before the prompt was queued has all its events:
        # read them first.  One opened now may have missed them: ask /history.
        follow_first = _socket is not None
        seen = _Followed(prompt_id, prompt if follow_first else None)
        try:
            while True:
                if ws is not None and follow_first:
                    follow_first = False
                    try:
                        if self._follow(ws, seen, deadline, on_progress):
                            return self._checked(prompt_id, seen.entry())
                    except ConnectionClosed:
                        ws = None
                entry = self.history(prompt_id).get(prompt_id)
                if entry is not None:
                    return self._checked(prompt_id, entry)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ComfyTimeout(f"prompt {prompt_id} did not finish within {timeout} s")
                if ws is None:
                    time.sleep(min(self.poll_interval, remaining))
                    continue
                try:
                    if self._follow(ws, seen, deadline, on_progress):
                        return self._checked(prompt_id, seen.entry())
                except ConnectionClosed:
                    ws = None
        finally:
            if ws is not None and _socket is None:
                _close(ws)

    def _follow(self, ws: Any, seen: "_Followed", deadline: float, on_progress: ProgressCallback | None) -> bool:
        """Read socket messages until ours ends or the socket is silent a while.

        True when the socket told the whole outcome (``seen.entry()``); False
        when the caller must read ``/history``: silence, or an end the socket
        alone cannot vouch for (then the history entry is awaited first).
        """
        while True:
            wait_for = min(1.0, deadline - time.monotonic())
            if wait_for <= 0:
                return False
            try:
                raw = ws.recv(timeout=wait_for)
            except TimeoutError:
                return False
            if isinstance(raw, bytes):
                continue  # binary preview frames carry no state
            message = json.loads(raw)
            data = message.get("data") or {}
            if data.get("prompt_id") != seen.prompt_id:
                continue
            kind = message.get("type")
            if kind == "progress" and on_progress is not None:
                on_progress(int(data["value"]), int(data["max"]))
            seen.note(kind, data)
            if kind in TERMINAL_EVENTS or (kind == "executing" and data.get("node") is None):
                if seen.complete():
                    return True
                self._await_history(seen.prompt_id, deadline)
                return False

    def _await_history(self, prompt_id: str, deadline: float) -> None:
        while prompt_id not in self.history(prompt_id) and time.monotonic() < deadline:
            time.sleep(0.005)

    @staticmethod
    def _checked(prompt_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        status = entry.get("status") or {}
        if status.get("status_str") == "error":
            for event, data in status.get("messages", []):
                if event == "execution_error":
                    raise ComfyExecutionError(
                        f"{data.get('node_type')} (node {data.get('node_id')}): "
                        f"{data.get('exception_type')}: {data.get('exception_message')}", prompt_id, data)
                if event == "execution_interrupted":
                    raise ComfyExecutionError(f"interrupted at node {data.get('node_id')}", prompt_id, data)
            raise ComfyExecutionError("execution failed", prompt_id, status)
        return entry

    def run(self, prompt: dict[str, Any], timeout: float = 120.0,
            on_progress: ProgressCallback | None = None) -> list[tuple[str, bytes]]:
        """Queue ``prompt``, wait for it, and download its images."""
        if self._ws_lock.acquire(blocking=False):
            try:
                entry = self._run_on_kept_socket(prompt, timeout, on_progress)
            finally:
                self._ws_lock.release()
        else:
            ws = self._connect()
            try:
                entry = self.wait(self.queue_prompt(prompt), timeout, on_progress, prompt=prompt, _socket=ws)
            finally:
                if ws is not None:
                    _close(ws)
        return [(ref["filename"], self.view(ref["filename"], ref.get("subfolder", ""), ref.get("type", "output")))
                for ref in self.images(entry)]

    def _run_on_kept_socket(self, prompt: dict[str, Any], timeout: float,
                            on_progress: ProgressCallback | None) -> dict[str, Any]:
        if self._ws is not None and not _drain(self._ws):
            self._ws = None
        if self._ws is None:
            self._ws = self._connect()
        prompt_id = self.queue_prompt(prompt)
        try:
            return self.wait(prompt_id, timeout, on_progress, prompt=prompt, _socket=self._ws)
        finally:
            if self._ws is not None and self._ws.protocol.state.name == "CLOSED":
                self._ws = None


class _Followed:
    """What a socket that saw a prompt from its start says about the run.

    ComfyUI sends ``executed`` (with the node's UI output, the images) for
    each output node, then ``execution_success``; or ``execution_error`` /
    ``execution_interrupted`` with the details ``/history`` would repeat.  A
    success is complete only if no sink of the graph (a node no other node
    reads: where output nodes sit) was served from cache without an
    ``executed`` message, as ComfyUI versions before cached UI outputs were
    replayed do; then the caller reads ``/history`` instead.
    """

    def __init__(self, prompt_id: str, prompt: dict[str, Any] | None):
        self.prompt_id = prompt_id
        self.sinks: set[str] | None = None
        if isinstance(prompt, dict):
            fed = {v[0] for node in prompt.values() if isinstance(node, dict)
                   for v in (node.get("inputs") or {}).values()
                   if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)}
            self.sinks = set(prompt) - fed
        self.outputs: dict[str, Any] = {}
        self.cached: set[str] = set()
        self.end: tuple[str, dict[str, Any]] | None = None

    def note(self, kind: str | None, data: dict[str, Any]) -> None:
        if kind == "executed" and data.get("node") is not None and data.get("output") is not None:
            self.outputs[str(data["node"])] = data["output"]
        elif kind == "execution_cached":
            self.cached.update(str(n) for n in data.get("nodes") or ())
        elif kind in TERMINAL_EVENTS and self.end is None:
            self.end = (kind, data)

    def complete(self) -> bool:
        if self.sinks is None or self.end is None:
            return False
        if self.end[0] != "execution_success":
            return True  # the failure's details came with the event
        return bool(self.outputs) and not (self.sinks & self.cached) - set(self.outputs)

    def entry(self) -> dict[str, Any]:
        """A history entry of the run, as ``/history/{prompt_id}`` would hold it."""
        kind, data = self.end  # type: ignore[misc]
        ok = kind == "execution_success"
        return {"outputs": self.outputs if ok else {},
                "status": {"status_str": "success" if ok else "error", "completed": ok,
                           "messages": [[kind, data]]}}


def _drain(ws: Any) -> bool:
    """Discard buffered messages; False if the socket turned out closed."""
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            ws.recv(timeout=0)
    except TimeoutError:
        return True
    except ConnectionClosed:
        ws.close()
        return False


def _close(ws: Any) -> None:
    if _drain(ws):
        ws.close()


def _text(response: urllib3.BaseHTTPResponse) -> str:
    return response.data.decode(errors="replace")
