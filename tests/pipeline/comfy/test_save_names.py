"""SaveImage's file names: ComfyUI's ``<prefix>_<counter:05>_.png``, numbered past what is there."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.comfy import engines


def _touch(folder, stem, *counters):
    for c in counters:
        (folder / f"{stem}_{c:05}_.png").write_bytes(b"")


def test_numbering_continues_past_existing_files_and_other_stems(tmp_path):
    _touch(tmp_path, "cat", 1, 7)
    _touch(tmp_path, "cat_x", 40)              # another stem that merely starts the same
    assert engines._next_counter(tmp_path, "cat", 1) == 8
    assert engines._next_counter(tmp_path, "cat", 3) == 9      # a batch of three reserves 9-11
    assert engines._next_counter(tmp_path, "cat", 1) == 12
    assert engines._next_counter(tmp_path, "cat_x", 1) == 41


def test_a_name_taken_by_another_writer_is_noticed(tmp_path):
    assert engines._next_counter(tmp_path, "dog", 1) == 1
    _touch(tmp_path, "dog", 1, 2, 3, 4)        # someone else saved meanwhile
    assert engines._next_counter(tmp_path, "dog", 1) == 5


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=1, max_size=12), st.sets(st.integers(1, 40), max_size=6))
def test_names_handed_out_are_never_taken_and_never_repeat(tmp_path_factory, batches, existing):
    folder = tmp_path_factory.mktemp("out")
    _touch(folder, "img", *existing)
    seen = set(existing)
    for n in batches:
        first = engines._next_counter(folder, "img", n)
        new = set(range(first, first + n))
        assert not new & seen
        seen |= new
        _touch(folder, "img", *new)
