"""The ComfyUI stand-in: ComfyUI's HTTP and websocket API over FastAPI.

Routes, bodies and status codes follow ComfyUI's ``server.py`` so that a
worker talks to this server exactly as to a real ComfyUI (by URL):
``POST /prompt``, ``GET /prompt``, ``GET|POST /queue``, ``POST /interrupt``,
``GET|POST /history``, ``GET /history/{prompt_id}``, ``GET /view``,
``GET /object_info[/{class}]``, ``GET /system_stats``, ``GET /ws?clientId=``.
State and execution live in :mod:`pipeline.comfy.executor`; this module only
parses requests and shapes replies.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.metadata
import os
import platform
import sys
import tempfile
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response

from comfyfab.serve import ServerThread

from .engines import TorchOptions, make_engine
from .executor import ExecutionService, PromptRejected
from .archs import checkpoint_names

COMFY_VERSION = "0.3.0-comfyfab"
_INLINE_VIEW_BYTES = 8 << 20  # /view answers files up to this size from memory


class WebsocketHub:
    """Routes executor events to websocket clients, from any thread.

    An event with a ``sid`` goes to that client's sockets; without one it
    goes to every socket (ComfyUI's ``send_sync`` semantics).
    """

    STATUS_BACKLOG = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = {}

    def add(self, sid: str, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        with self._lock:
            self._sockets.setdefault(sid, []).append((loop, queue))

    def remove(self, sid: str, queue: asyncio.Queue) -> None:
        with self._lock:
            kept = [(lp, q) for lp, q in self._sockets.get(sid, []) if q is not queue]
            if kept:
                self._sockets[sid] = kept
            else:
                self._sockets.pop(sid, None)

    def publish(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        message = {"type": event, "data": data}
        with self._lock:
            targets = [t for s, ts in self._sockets.items() if sid is None or s == sid for t in ts]
        for loop, queue in targets:
            if event == "status" and queue.qsize() > self.STATUS_BACKLOG:
                continue  # a client that is not reading needs only the latest status, later
            try:
                loop.call_soon_threadsafe(queue.put_nowait, message)
            except RuntimeError:
                # The socket's event loop has closed: the client is gone and
                # its handler's finally-block is removing it.
                continue


def _error_body(kind: str, message: str, details: str = "") -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "details": details, "extra_info": {}}, "node_errors": {}}


def create_app(engine: str = "torch", models_dir: str | Path | None = None, output_dir: str | Path | None = None,
               fault: Callable[[dict], str | None] | None = None, options: TorchOptions = TorchOptions(),
               max_batch: int = 1) -> FastAPI:
    """A FastAPI app speaking ComfyUI's API.

    ``engine`` is ``"torch"`` (real execution) or ``"noop"`` (same flow,
    seeded placeholder PNGs).  ``models_dir`` holds local ``.safetensors``
    checkpoints; ``output_dir`` receives SaveImage files (a fresh temporary
    folder when None).  ``fault(prompt) -> message | None`` is a test seam:
    a message makes that prompt fail as a node exception would.
    ``options`` say how the torch engine runs (device, threads, ``torch.compile``, FP8,
    attention kernel: :class:`~.engines.TorchOptions`); ``max_batch`` > 1
    samples up to that many queued same-shape prompts together (:mod:`.batching`).
    """
    models_path = Path(models_dir) if models_dir is not None else None
    out_path = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="comfy-output-"))
    hub = WebsocketHub()
    service = ExecutionService(make_engine(engine, models_path, options), out_path,
                               lambda: checkpoint_names(models_path), hub.publish, fault, max_batch=max_batch)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        service.start()
        try:
            yield
        finally:
            await asyncio.to_thread(service.stop)

    app = FastAPI(title="ComfyUI stand-in (comfyfab)", lifespan=lifespan)
    app.state.service = service
    app.state.hub = hub
    app.state.engine = engine
    app.state.device = options.device

    @app.post("/prompt")
    async def post_prompt(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError as exc:
            return JSONResponse(_error_body("invalid_prompt", "Invalid JSON body", str(exc)), status_code=400)
        if not isinstance(body, dict) or "prompt" not in body:
            return JSONResponse(_error_body("no_prompt", "No prompt provided", "No prompt provided"), status_code=400)
        number = body.get("number")
        try:
            accepted = service.submit(
                body["prompt"], client_id=body.get("client_id"), extra_data=body.get("extra_data"),
                number=float(number) if number is not None else None, front=bool(body.get("front")),
                prompt_id=str(body["prompt_id"]) if body.get("prompt_id") else None)
        except PromptRejected as rejected:
            return JSONResponse(rejected.body, status_code=400)
        except (TypeError, ValueError) as exc:
            return JSONResponse(_error_body("invalid_prompt", "Invalid prompt request", str(exc)), status_code=400)
        return JSONResponse(accepted)

    @app.get("/prompt")
    async def get_prompt() -> dict[str, Any]:
        return service.status()

    @app.get("/queue")
    async def get_queue() -> dict[str, Any]:
        return service.queue.snapshot()

    @app.post("/queue")
    async def post_queue(request: Request) -> Response:
        return await _clear_or_delete(request, service.queue.delete_pending)

    @app.post("/interrupt")
    async def post_interrupt() -> Response:
        service.interrupt()
        return Response(status_code=200)

    @app.get("/history")
    async def get_history(max_items: int | None = None) -> dict[str, Any]:
        return service.queue.get_history(max_items=max_items)

    @app.get("/history/{prompt_id}")
    async def get_history_item(prompt_id: str) -> dict[str, Any]:
        return service.queue.get_history(prompt_id)

    @app.post("/history")
    async def post_history(request: Request) -> Response:
        return await _clear_or_delete(request, service.queue.delete_history)

    @app.get("/object_info")
    async def get_object_info() -> dict[str, Any]:
        return copy.deepcopy(service.object_info())

    @app.get("/object_info/{node_class}")
    async def get_object_info_node(node_class: str) -> dict[str, Any]:
        info = service.object_info()
        return {node_class: copy.deepcopy(info[node_class])} if node_class in info else {}

    @app.get("/embeddings")
    async def get_embeddings() -> list[str]:
        return []

    @app.get("/view")
    async def view(filename: str = "", subfolder: str = "", type: str = "output") -> Response:
        if not filename or filename.startswith("/") or ".." in filename:
            return Response(status_code=400)
        if type != "output":
            return Response(status_code=400)
        root = service.output_dir.resolve()
        folder = (root / subfolder).resolve()
        if folder != root and root not in folder.parents:
            return Response(status_code=403)
        path = folder / filename
        if not path.is_file():
            return Response(status_code=404)
        if path.stat().st_size > _INLINE_VIEW_BYTES:
            return FileResponse(path, media_type="image/png", filename=filename,
                                content_disposition_type="inline")
        # An image of a few hundred kB is read at once: FileResponse would hop to a
        # worker thread three times (stat, open, read) for it.
        quoted = quote(filename)
        disposition = f'inline; filename="{filename}"' if quoted == filename else f"inline; filename*=utf-8''{quoted}"
        return Response(path.read_bytes(), media_type="image/png", headers={"content-disposition": disposition})

    @app.get("/system_stats")
    async def system_stats() -> dict[str, Any]:
        return _system_stats(engine, options.device)

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        sid = ws.query_params.get("clientId") or os.urandom(16).hex()
        queue: asyncio.Queue = asyncio.Queue()
        # Registered before the handshake completes: a client that connects
        # and then queues a prompt must not miss its first events.
        hub.add(sid, asyncio.get_running_loop(), queue)
        try:
            await ws.accept()
            await ws.send_json({"type": "status", "data": {"status": service.status(), "sid": sid}})
            current = service.current
            if current is not None and current[2] == sid and current[1] is not None:
                await ws.send_json({"type": "executing", "data": {"node": current[1], "prompt_id": current[0]}})
            sender = asyncio.create_task(_pump(ws, queue))
            receiver = asyncio.create_task(_drain(ws))
            done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in done:
                if task.exception() is not None and not isinstance(task.exception(), WebSocketDisconnect):
                    raise task.exception()
        except WebSocketDisconnect:
            pass  # the client closed the socket: nothing left to send
        finally:
            hub.remove(sid, queue)

    return app


async def _clear_or_delete(request: Request, delete: Any) -> Response:
    """ComfyUI's ``{"clear": true}`` / ``{"delete": [ids]}`` body for POST /queue and POST /history."""
    body = await _json_object(request)
    if body is None:
        return JSONResponse(_error_body("invalid_request", "Expected a JSON object body"), status_code=400)
    if body.get("clear"):
        delete(None)
    if "delete" in body:
        delete([str(x) for x in body["delete"]])
    return Response(status_code=200)


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _pump(ws: WebSocket, queue: asyncio.Queue) -> None:
    while True:
        await ws.send_json(await queue.get())


async def _drain(ws: WebSocket) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


def _system_stats(engine: str, device: str) -> dict[str, Any]:
    page = os.sysconf("SC_PAGE_SIZE")
    ram_total = os.sysconf("SC_PHYS_PAGES") * page
    ram_free = os.sysconf("SC_AVPHYS_PAGES") * page
    kind, _, index = device.partition(":")
    entry = {"name": device, "type": kind, "index": int(index or 0),
             "vram_total": ram_total, "vram_free": ram_free, "torch_vram_total": 0, "torch_vram_free": 0}
    if engine == "noop" and "torch" not in sys.modules:
        # a health check must not pull torch (seconds) into a no-op server
        return _stats_body(engine, ram_total, ram_free, importlib.metadata.version("torch"), entry)
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info(dev)
        entry.update(name=f"{device} {torch.cuda.get_device_name(dev)}", vram_total=total, vram_free=free,
                     torch_vram_total=torch.cuda.memory_reserved(dev),
                     torch_vram_free=torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev))
    return _stats_body(engine, ram_total, ram_free, torch.__version__, entry)


def _stats_body(engine: str, ram_total: int, ram_free: int, torch_version: str, entry: dict) -> dict[str, Any]:
    return {
        "system": {"os": os.name, "ram_total": ram_total, "ram_free": ram_free, "comfyui_version": COMFY_VERSION,
                   "python_version": sys.version, "pytorch_version": torch_version, "embedded_python": False,
                   "argv": ["comfyfab-standin", f"--engine={engine}"], "platform": platform.platform()},
        "devices": [entry],
    }


class ComfyServer:
    """The stand-in served by uvicorn on a loopback port in a daemon thread.

    >>> with ComfyServer(engine="noop") as server:   # doctest: +SKIP
    ...     ComfyClient(server.url).object_info()
    """

    def __init__(self, engine: str = "torch", models_dir: str | Path | None = None,
                 output_dir: str | Path | None = None, fault: Callable[[dict], str | None] | None = None,
                 host: str = "127.0.0.1", port: int = 0, options: TorchOptions = TorchOptions(),
                 max_batch: int = 1):
        self.app = create_app(engine=engine, models_dir=models_dir, output_dir=output_dir, fault=fault,
                              options=options, max_batch=max_batch)
        # lifespan on: the prompt queue's worker thread starts and stops with the app.
        self._http = ServerThread(self.app, host=host, port=port, lifespan="on", ws="websockets-sansio")
        self._http.name = f"comfy-standin-{self._http.port}"
        self.host, self.port = host, self._http.port

    @property
    def url(self) -> str:
        return self._http.url

    @property
    def output_dir(self) -> Path:
        return self.app.state.service.output_dir

    def start(self, timeout: float = 30.0) -> "ComfyServer":
        self._http.start(timeout)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._http.stop(timeout)

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
