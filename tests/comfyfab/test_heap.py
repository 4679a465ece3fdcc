"""Server heaps: what survives a full collection is frozen; a reset frees what moto let go of.

Each check runs in a fresh interpreter, because it changes the garbage
collector's process-wide state.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_survivors_of_a_full_collection_are_frozen_so_the_next_walks_only_new_objects():
    out = run("""
        import gc
        from comfyfab.serve import freeze_startup_heap
        freeze_startup_heap(keep_frozen=True)
        start = gc.get_freeze_count()
        kept = [[i] for i in range(50_000)]
        gc.collect()
        assert gc.get_freeze_count() >= start + 50_000, (start, gc.get_freeze_count())
        assert len(gc.get_objects(2)) < 1_000, len(gc.get_objects(2))
        print("ok")
    """)
    assert out == "ok"


def test_without_keep_frozen_survivors_stay_in_the_oldest_generation():
    out = run("""
        import gc
        from comfyfab.serve import freeze_startup_heap
        freeze_startup_heap()
        start = gc.get_freeze_count()
        kept = [[i] for i in range(50_000)]
        gc.collect()
        assert gc.get_freeze_count() == start
        assert len(gc.get_objects(2)) >= 50_000
        print("ok")
    """)
    assert out == "ok"


def test_a_reset_of_the_embedded_server_frees_the_frozen_state_it_dropped():
    out = run("""
        import gc, weakref
        from comfyfab.moto_host import RESET_PATH, compacting_on_reset
        from comfyfab.serve import freeze_startup_heap

        class State:
            pass

        state = {"backend": State()}
        state["backend"].me = state["backend"]  # a cycle: only the collector frees it
        gone = weakref.ref(state["backend"])

        def app(environ, start_response):
            if environ["PATH_INFO"] == RESET_PATH:
                state.clear()
            return [b"{}"]

        freeze_startup_heap(keep_frozen=True)
        wrapped = compacting_on_reset(app)
        wrapped({"PATH_INFO": "/", "REQUEST_METHOD": "GET"}, None)
        state.clear()  # dropped outside a reset: stays frozen
        gc.collect()
        assert gone() is not None
        wrapped({"PATH_INFO": RESET_PATH, "REQUEST_METHOD": "POST"}, None)
        assert gone() is None
        print("ok")
    """)
    assert out == "ok"
