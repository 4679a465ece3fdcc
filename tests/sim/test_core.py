import pytest
from hypothesis import given, strategies as st

from sim.core import EventLoop
from sim.errors import EventLoopError


def test_events_run_in_time_then_priority_then_schedule_order():
    loop, log = EventLoop(), []
    for name, t, prio in [("c", 2.0, 1), ("a", 1.0, 1), ("b2", 2.0, 0), ("b1", 2.0, 0), ("d", 3.0, 1)]:
        loop.schedule(t, 0, name, priority=prio)
    loop.run({0: lambda t, name: log.append((name, t))})
    assert log == [("a", 1.0), ("b2", 2.0), ("b1", 2.0), ("c", 2.0), ("d", 3.0)]
    assert loop.now == 3.0


def test_handlers_schedule_more_and_run_stops_at_until():
    loop, log = EventLoop(), []

    def tick(t, n):
        log.append((n, t))
        loop.schedule(t + 1.5, 0, n + 1)

    loop.schedule(0.0, 0, 0)
    assert loop.run({0: tick}, until=5.0) == 5.0
    assert log == [(0, 0.0), (1, 1.5), (2, 3.0), (3, 4.5)]
    assert loop.peek() == 6.0


def test_cancel_and_misuse():
    loop = EventLoop()
    ev = loop.schedule(1.0, 0)
    loop.schedule(2.0, 0)
    assert loop.cancel(ev) and not loop.cancel(ev)
    assert loop.step()[0] == 2.0
    with pytest.raises(EventLoopError):
        loop.schedule(1.0, 0)
    with pytest.raises(EventLoopError):
        loop.step()
    loop.schedule(3.0, 7)
    with pytest.raises(EventLoopError, match="no handler"):
        loop.run({})


@given(st.lists(st.tuples(st.floats(0, 100), st.integers(0, 2)), max_size=60))
def test_pop_order_is_sorted_and_stable(events):
    loop, seen = EventLoop(), []
    for k, (t, p) in enumerate(events):
        loop.schedule(t, 0, (t, p, k), priority=p)
    loop.run({0: lambda t, a: seen.append(a)})
    assert seen == sorted(seen)
