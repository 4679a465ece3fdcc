"""``comfyfab bench compile``: torch.compile's cost per block shape, and whether repeats share code."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import comfyfab.cli as comfy_cli
from pipeline.calibrate.compiletime import compile_blocks, totals
from pipeline.calibrate.measure import CalibrationSpec
from pipeline.comfy.archs import architectures
from pipeline.comfy.models import REGIONS, build_components


@pytest.fixture(autouse=True)
def fresh_dynamo():
    import torch._dynamo

    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_every_region_block_is_recorded_and_repeats_share_their_code():
    """tiny-xl (SDXL's layout, small): each region block of one UNet evaluation falls in one shape row;
    a second block of a shape compiles no graph of its own (the point of the regional compile).  The
    ``eager`` backend captures the same graphs without code generation."""
    unet, _, _ = build_components(architectures()["tiny-xl"], "meta")
    blocks = sum(type(m).__name__ in REGIONS for m in unet.modules())
    rows = compile_blocks(CalibrationSpec(model="tiny-xl", resolution=64), batch=1, backend="eager")
    assert sum(r.instances for r in rows) == blocks
    assert all(r.graphs >= 1 for r in rows)
    repeated = [r for r in rows if r.instances > 1]
    assert repeated and all(r.shared for r in repeated)
    transformer = next(r for r in rows if r.block == "BasicTransformerBlock")
    assert transformer.instances == 8 and transformer.shape.startswith("2x")  # CFG: 2 latents per image
    t = totals(rows)
    assert t["blocks"] == blocks and t["compile_s"] == pytest.approx(sum(r.compile_s for r in rows))


def test_cli_prints_the_rows_and_writes_the_csv(tmp_path, capsys):
    csv = tmp_path / "compile.csv"
    assert comfy_cli.main(["bench", "compile", "--model", "tiny", "--backend", "eager", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "regional compile of the UNet about" in out and "BasicTransformerBlock" in out
    frame = pd.read_csv(csv)
    assert {"block", "shape", "instances", "compile_s", "run_s", "graphs", "repeat_graphs"} <= set(frame.columns)
    assert (frame.model == "tiny").all()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("flags, message", [
    (["--fp8"], "--fp8 needs --device cuda"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--model", "sd3"], "not a shipped architecture"),
])
def test_bad_flags_are_clear_errors(capsys, flags, message):
    assert comfy_cli.main(["bench", "compile", "--backend", "eager", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
