"""The notebooks: generated from their cell sources, committed clean, and run end to end with small parameters."""

from __future__ import annotations

import runpy
from pathlib import Path

import nbformat
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
build = runpy.run_path(str(ROOT / "notebooks" / "build.py"))
FIGURES = {"capacity_planning.ipynb": {"gpu_cost_latency.png", "fleet_size_slo.png", "planner_40k.png",
                                        "seed_vs_measured_h100.png", "h100_kernel_split.png"},
           "autoscaler_tuning.ipynb": {"knob_sweeps.png", "burst_depth.png", "burst_thresholds.png",
                                        "cold_start_kinds.png"}}


def test_committed_notebooks_match_their_cell_sources_and_have_no_outputs():
    assert build["stale"]() == []
    for name in FIGURES:
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code)
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and tagged[0] is code[0]  # one parameter cell, before any other code
        assert "SMALL = False" in tagged[0].source and "FIG_DIR" in tagged[0].source


def test_injection_follows_the_parameters_cell_and_refuses_unknown_names():
    nb = build["notebook"]("capacity_planning.ipynb")
    out = build["inject"](nb, {"SMALL": True, "FIG_DIR": "/x"})
    at = next(i for i, c in enumerate(out.cells) if "parameters" in c.metadata.get("tags", []))
    assert out.cells[at + 1].source == "SMALL = True\nFIG_DIR = '/x'"
    assert out.cells[at + 1].metadata["tags"] == ["injected-parameters"]
    assert len(out.cells) == len(nb.cells) + 1  # the original is untouched
    with pytest.raises(build["NotebookBuildError"], match="SMAL"):
        build["inject"](nb, {"SMAL": True})


def test_a_cell_list_without_one_parameters_cell_is_refused(tmp_path, monkeypatch):
    (tmp_path / "cells.py").write_text('CELLS = [("code", "x = 1")]\n')
    monkeypatch.setitem(build["SOURCES"], "bad.ipynb", "cells.py")
    monkeypatch.setitem(build["notebook"].__globals__, "HERE", tmp_path)
    with pytest.raises(build["NotebookBuildError"], match="exactly one parameters cell"):
        build["notebook"]("bad.ipynb")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_runs_small_and_saves_its_figures(name, tmp_path):
    figs = tmp_path / "figs"
    nb = build["execute"](name, {"SMALL": True, "FIG_DIR": str(figs), "PROCESSES": 1}, cwd=tmp_path,
                          timeout_s=240)
    assert {p.name for p in figs.iterdir()} == FIGURES[name]
    for png in figs.iterdir():
        with Image.open(png) as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 200
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(shown) == len(FIGURES[name])  # every figure is also displayed in the notebook
