"""A small discrete-event core in SimPy's style, without processes.

One heap holds ``(time, priority, seq, kind, arg)`` tuples.  ``seq`` grows by
one per scheduled event, so events at the same time and priority run in the
order they were scheduled: a run is a pure function of its inputs.  A lower
``priority`` runs first at equal times (the fleet model uses this to finish
jobs before it admits arrivals, and both before it samples).

The fleet model (:mod:`sim.fleet`) keeps its hot path inline on
``loop.heap`` for speed -- one push and one pop per job -- and uses
:meth:`EventLoop.schedule` / :meth:`EventLoop.cancel` for everything rare.
:meth:`EventLoop.run` dispatches to handlers by ``kind`` and is what the
tests and small models use.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from itertools import count
from typing import Any, Callable, Mapping

from .errors import EventLoopError

Event = tuple[float, int, int, int, Any]
Handler = Callable[[float, Any], None]


class EventLoop:
    """The simulated clock and its agenda: a heap of pending events."""

    __slots__ = ("heap", "now", "_seq")

    def __init__(self, start: float = 0.0) -> None:
        self.heap: list[Event] = []
        self.now = float(start)
        self._seq = count()

    def schedule(self, time: float, kind: int, arg: Any = None, priority: int = 1) -> Event:
        """Put an event on the agenda; returns it so it can be cancelled."""
        if time < self.now:
            raise EventLoopError(f"cannot schedule at t={time} before now={self.now}")
        ev = (time, priority, next(self._seq), kind, arg)
        heappush(self.heap, ev)
        return ev

    def next_seq(self) -> int:
        """A fresh sequence number, for callers that push onto ``heap`` themselves."""
        return next(self._seq)

    def cancel(self, ev: Event) -> bool:
        """Remove a pending event (O(n); meant for rare events). False if it already ran."""
        try:
            self.heap.remove(ev)
        except ValueError:
            return False
        heapify(self.heap)
        return True

    def peek(self) -> float:
        """Time of the next event, or infinity when the agenda is empty."""
        return self.heap[0][0] if self.heap else float("inf")

    def step(self) -> Event:
        """Pop the next event and advance the clock to it."""
        if not self.heap:
            raise EventLoopError("no events left")
        ev = heappop(self.heap)
        self.now = ev[0]
        return ev

    def run(self, handlers: Mapping[int, Handler], until: float | None = None) -> float:
        """Run events until the agenda is empty or the next one is after ``until``."""
        if until is not None and until < self.now:
            raise EventLoopError(f"until={until} is before now={self.now}")
        heap = self.heap
        while heap:
            if until is not None and heap[0][0] > until:
                break
            t, _, _, kind, arg = heappop(heap)
            self.now = t
            try:
                handler = handlers[kind]
            except KeyError:
                raise EventLoopError(f"no handler for event kind {kind}") from None
            handler(t, arg)
        if until is not None:
            self.now = max(self.now, until)
        return self.now
