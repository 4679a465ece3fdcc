"""ComfyUI's prompt queue and executor, without HTTP.

:class:`PromptQueue` keeps pending prompts ordered by number, the one that
runs, and the history.  :class:`ExecutionService` validates and enqueues
prompts and runs them one at a time in a background thread, as ComfyUI's
``prompt_worker`` does: nodes execute depth-first from each output node,
loader outputs are cached across prompts (reported as ``execution_cached``),
and every step is published as ComfyUI's websocket events
(``execution_start``, ``execution_cached``, ``executing``, ``progress``,
``executed``, ``execution_success`` / ``execution_error`` /
``execution_interrupted``) through an event sink ``(event, data, sid)``.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import logging
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from .engines import Engine, Interrupted, NodeContext
from .nodes import PRIMITIVE_TYPES, node_specs
from .validate import check_prompt

log = logging.getLogger(__name__)

MAX_HISTORY = 10000
CACHED_CLASSES = frozenset({"CheckpointLoaderSimple"})

EventSink = Callable[[str, dict[str, Any], "str | None"], None]
Fault = Callable[[dict[str, Any]], "str | None"]


class PromptRejected(Exception):
    """A prompt failed validation; ``body`` is ComfyUI's 400 response body."""

    def __init__(self, body: dict[str, Any]):
        super().__init__(body["error"]["message"])
        self.body = body


class InjectedFault(RuntimeError):
    """The failure a test's fault hook asked for, raised inside a node."""


def _now_ms() -> int:
    return int(time.time() * 1000)


class PromptQueue:
    """Pending prompts by number, the running one, and the history."""

    def __init__(self, on_change: Callable[[], None]):
        self._on_change = on_change
        self._lock = threading.RLock()
        self._ready = threading.Condition(self._lock)
        self._pending: list[tuple] = []
        self._running: dict[int, tuple] = {}
        self._task_ids = itertools.count()
        self.history: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def put(self, item: tuple) -> None:
        with self._lock:
            heapq.heappush(self._pending, item)
            self._ready.notify()
        self._on_change()

    def get(self, timeout: float) -> tuple[tuple, int] | None:
        with self._ready:
            if not self._pending:
                self._ready.wait(timeout)
            if not self._pending:
                return None
            item = heapq.heappop(self._pending)
            task = next(self._task_ids)
            self._running[task] = item
        self._on_change()
        return item, task

    def done(self, task: int, entry: dict[str, Any]) -> None:
        with self._lock:
            item = self._running.pop(task)
            while len(self.history) >= MAX_HISTORY:
                self.history.popitem(last=False)
            self.history[item[1]] = {"prompt": list(item), **entry}
        self._on_change()

    def take_more(self, n: int, accept: Callable[[tuple], bool]) -> list[tuple[tuple, int]]:
        """Up to ``n`` more pending items that ``accept`` takes, in queue order, marked running."""
        out: list[tuple[tuple, int]] = []
        with self._lock:
            taken = [x for x in sorted(self._pending) if accept(x)][:max(0, n)]
            if not taken:
                return out
            gone = {id(x) for x in taken}
            self._pending = [x for x in self._pending if id(x) not in gone]
            heapq.heapify(self._pending)
            for item in taken:
                task = next(self._task_ids)
                self._running[task] = item
                out.append((item, task))
        self._on_change()
        return out

    def remaining(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._running)

    def snapshot(self) -> dict[str, list]:
        with self._lock:
            return {"queue_running": [list(x) for x in self._running.values()],
                    "queue_pending": [list(x) for x in sorted(self._pending)]}

    def delete_pending(self, prompt_ids: list[str] | None) -> None:
        with self._lock:
            keep = [] if prompt_ids is None else [x for x in self._pending if x[1] not in set(prompt_ids)]
            heapq.heapify(keep)
            self._pending = keep
        self._on_change()

    def get_history(self, prompt_id: str | None = None, max_items: int | None = None) -> dict[str, Any]:
        with self._lock:
            if prompt_id is not None:
                return {prompt_id: copy.deepcopy(self.history[prompt_id])} if prompt_id in self.history else {}
            items = list(self.history.items())
            if max_items is not None:
                items = items[-max_items:] if max_items > 0 else []
            return copy.deepcopy(dict(items))

    def delete_history(self, prompt_ids: list[str] | None) -> None:
        with self._lock:
            if prompt_ids is None:
                self.history.clear()
            for pid in prompt_ids or []:
                self.history.pop(pid, None)


class ExecutionService:
    """Validates, queues and executes prompts one at a time on a thread."""

    def __init__(self, engine: Engine, output_dir: Path, checkpoints: Callable[[], list[str]],
                 sink: EventSink, fault: Fault | None = None, max_batch: int = 1):
        self.engine = engine
        self.max_batch = max(1, int(max_batch))  # > 1: same-shape queued prompts sample together
        self.batches: list[int] = []  # the size of every batch of more than one prompt run so far
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._checkpoints = checkpoints
        self._sink = sink
        self._fault = fault
        self.queue = PromptQueue(self._queue_changed)
        self._numbers = itertools.count()
        self._cache: dict[str, tuple] = {}
        self._catalog: tuple[tuple[str, ...], dict[str, Any]] | None = None
        self._last_remaining = 0
        self._status_lock = threading.Lock()
        self._interrupt = threading.Event()
        self._batch_keys: OrderedDict[str, str | None] = OrderedDict()  # prompt id -> batch key (bounded)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: tuple[str, str | None, str | None] | None = None  # (prompt_id, node_id, client_id)

    # -- catalog -------------------------------------------------------
    def object_info(self) -> dict[str, Any]:
        """The catalog for the checkpoints present now (rebuilt only when they change)."""
        from .nodes import object_info

        names = tuple(self._checkpoints())
        if self._catalog is None or self._catalog[0] != names:
            self._catalog = (names, object_info(list(names)))
        return self._catalog[1]

    # -- lifecycle -------------------------------------------------------
    def start(self) -> "ExecutionService":
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="comfy-prompt-worker", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._interrupt.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def interrupt(self) -> None:
        self._interrupt.set()

    # -- submission ------------------------------------------------------
    def submit(self, prompt: Any, client_id: str | None = None, extra_data: dict[str, Any] | None = None,
               number: float | None = None, front: bool = False,
               prompt_id: str | None = None) -> dict[str, Any]:
        """Validate and enqueue; ComfyUI's ``{prompt_id, number, node_errors}``."""
        result = check_prompt(prompt, self.object_info())
        if not result.ok:
            raise PromptRejected(result.body())
        extra = dict(extra_data or {})
        if client_id is not None:
            extra["client_id"] = client_id
        if number is None:
            number = next(self._numbers)
            number = -number if front else number
        prompt_id = prompt_id or str(uuid.uuid4())
        self.queue.put((number, prompt_id, copy.deepcopy(prompt), extra, result.outputs))
        return {"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors}

    # -- events ----------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue.remaining()}}

    def _queue_changed(self) -> None:
        with self._status_lock:  # called from the HTTP loop and the worker thread: keep counts in order
            remaining = self.queue.remaining()
            if remaining != self._last_remaining:  # taking a prompt off the queue leaves the count as it was
                self._last_remaining = remaining
                self._sink("status", {"status": {"exec_info": {"queue_remaining": remaining}}}, None)

    # -- execution -------------------------------------------------------
    def _worker(self) -> None:
        while not self._stop.is_set():
            got = self.queue.get(timeout=0.2)
            if got is None:
                continue
            item, task = got
            self._interrupt.clear()
            more = self._batchmates(item)
            if more:
                self._execute_batch([(item, task), *more])
                continue
            entry = self.execute(*item)
            self.queue.done(task, entry)

    def _batchmates(self, item: tuple) -> list[tuple[tuple, int]]:
        """Queued prompts to run with ``item``.  None while a fault hook is installed: the hook
        judges each prompt when it executes, and must not be consulted for the whole queue."""
        if self.max_batch < 2 or self._fault is not None or not hasattr(self.engine, "run_batch"):
            return []
        key = self._batch_key(item)
        if key is None:
            return []
        return self.queue.take_more(self.max_batch - 1, lambda other: self._batch_key(other) == key)

    def _batch_key(self, item: tuple) -> str | None:
        """The batch key of a queued prompt, worked out once per prompt rather than on every look
        at the queue (only the executor thread calls this)."""
        from .batching import batch_key

        prompt_id = item[1]
        if prompt_id in self._batch_keys:
            return self._batch_keys[prompt_id]
        key = self._batch_keys[prompt_id] = batch_key(item[2])
        if len(self._batch_keys) > MAX_HISTORY:
            self._batch_keys.popitem(last=False)
        return key

    def _execute_batch(self, pairs: list[tuple[tuple, int]]) -> None:
        """Sample and decode the prompts together, then run each one's graph with those results."""
        try:
            shared = self.engine.run_batch([item[2] for item, _ in pairs])
            self.batches.append(len(pairs))
        except Exception:  # each prompt then runs alone and reports its own error, as ComfyUI would
            log.warning("batch of %d prompts failed; running them one by one", len(pairs), exc_info=True)
            shared = [None] * len(pairs)
        for (item, task), results in zip(pairs, shared):
            self._interrupt.clear()
            self.queue.done(task, self.execute(*item, precomputed=results))

    def execute(self, number: float, prompt_id: str, prompt: dict[str, Any], extra: dict[str, Any],
                outputs: list[str], precomputed: dict[str, tuple] | None = None) -> dict[str, Any]:
        """Run one prompt; returns its history entry (outputs, status, meta).  ``precomputed``:
        results of some nodes already computed in a batch (they run instantly, with their events)."""
        sid = extra.get("client_id")
        messages: list[list] = []

        def emit(event: str, data: dict[str, Any], record: bool = False) -> None:
            if record:
                messages.append([event, data])
            self._sink(event, data, sid)

        self.current = (prompt_id, None, sid)
        emit("execution_start", {"prompt_id": prompt_id, "timestamp": _now_ms()}, record=True)
        order = _execution_order(prompt, outputs)
        specs = node_specs(self._checkpoints())
        values: dict[str, tuple] = {}
        cached = []
        for node_id in order:
            key = _signature(prompt, node_id)
            if prompt[node_id]["class_type"] in CACHED_CLASSES and key in self._cache:
                values[node_id] = self._cache[key]
                cached.append(node_id)
        emit("execution_cached", {"nodes": cached, "prompt_id": prompt_id, "timestamp": _now_ms()}, record=True)
        fault = self._fault(prompt) if self._fault is not None else None
        ui_outputs: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        executed: list[str] = list(cached)
        node_id = None
        try:
            for node_id in order:
                if node_id in values:
                    continue
                self.current = (prompt_id, node_id, sid)
                emit("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id})
                if fault is not None:
                    raise InjectedFault(fault)
                node = prompt[node_id]
                inputs = _resolve_inputs(node, specs[node["class_type"]], values)
                ctx = NodeContext(
                    prompt_id=prompt_id, node_id=node_id, prompt=prompt, extra_pnginfo=extra.get("extra_pnginfo"),
                    output_dir=self.output_dir, interrupted=self._interrupt.is_set,
                    progress=lambda v, m, n=node_id: emit(
                        "progress", {"value": v, "max": m, "prompt_id": prompt_id, "node": n}))
                if precomputed is not None and node_id in precomputed:
                    result, ui = precomputed[node_id], None
                    if node["class_type"] == "KSampler":
                        steps = int(node["inputs"].get("steps", 1))
                        ctx.progress(steps, steps)
                else:
                    result, ui = self.engine.run_node(node["class_type"], inputs, ctx)
                values[node_id] = result
                if node["class_type"] in CACHED_CLASSES:
                    self._cache[_signature(prompt, node_id)] = result
                executed.append(node_id)
                if ui is not None:
                    ui_outputs[node_id] = ui
                    meta[node_id] = {"node_id": node_id, "display_node": node_id, "parent_node": None,
                                     "real_node_id": node_id}
                    emit("executed", {"node": node_id, "display_node": node_id, "output": ui,
                                      "prompt_id": prompt_id})
        except Interrupted:
            emit("execution_interrupted", {"prompt_id": prompt_id, "node_id": node_id,
                                           "node_type": prompt[node_id]["class_type"], "executed": executed,
                                           "timestamp": _now_ms()}, record=True)
            return self._finish(prompt_id, emit, ui_outputs, meta, messages, "error")
        except Exception as exc:  # a node failure is reported like ComfyUI does, never swallowed
            emit("execution_error", {
                "prompt_id": prompt_id, "node_id": node_id, "node_type": prompt[node_id]["class_type"],
                "executed": executed, "exception_message": str(exc), "exception_type": _type_name(type(exc)),
                "traceback": traceback.format_tb(exc.__traceback__),
                "current_inputs": _describe(prompt[node_id].get("inputs", {})),
                "current_outputs": {k: _describe(v) for k, v in ui_outputs.items()},
                "timestamp": _now_ms()}, record=True)
            return self._finish(prompt_id, emit, ui_outputs, meta, messages, "error")
        emit("execution_success", {"prompt_id": prompt_id, "timestamp": _now_ms()}, record=True)
        return self._finish(prompt_id, emit, ui_outputs, meta, messages, "success")

    def _finish(self, prompt_id, emit, ui_outputs, meta, messages, status) -> dict[str, Any]:
        self.current = None
        emit("executing", {"node": None, "display_node": None, "prompt_id": prompt_id})
        return {"outputs": ui_outputs, "meta": meta,
                "status": {"status_str": status, "completed": status == "success", "messages": messages}}


def _type_name(cls: type) -> str:
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _describe(value: Any) -> Any:
    """A JSON-safe rendering of inputs/outputs for error reports."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _execution_order(prompt: dict[str, Any], outputs: list[str]) -> list[str]:
    """Depth-first, inputs before the node, outputs in ascending id order."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in seen:
            return
        seen.add(node_id)
        for value in prompt[node_id].get("inputs", {}).values():
            if isinstance(value, list) and len(value) == 2 and value[0] in prompt:
                visit(value[0])
        order.append(node_id)

    for out in sorted(outputs, key=lambda n: (0, f"{int(n):020d}") if n.isdigit() else (1, n)):
        visit(out)
    return order


def _signature(prompt: dict[str, Any], node_id: str) -> str:
    """A cache key: the node's class, literal inputs and upstream signatures."""
    node = prompt[node_id]
    parts = {}
    for name, value in sorted(node.get("inputs", {}).items()):
        if isinstance(value, list) and len(value) == 2 and value[0] in prompt:
            parts[name] = [_signature(prompt, value[0]), value[1]]
        else:
            parts[name] = value
    return json.dumps([node["class_type"], parts], sort_keys=True, default=str)


def _resolve_inputs(node: dict[str, Any], spec, values: dict[str, tuple]) -> dict[str, Any]:
    """Linked inputs from upstream results; literals coerced as ComfyUI does."""
    declared = {**spec.required, **spec.optional}
    out = {}
    for name, value in node.get("inputs", {}).items():
        if name not in declared:
            continue
        if isinstance(value, list) and len(value) == 2:
            out[name] = values[value[0]][value[1]]
            continue
        kind = declared[name][0]
        out[name] = PRIMITIVE_TYPES[kind](value) if isinstance(kind, str) and kind in PRIMITIVE_TYPES else value
    return out
