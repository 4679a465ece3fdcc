"""``comfyfab bench load``: cold-start checkpoint loads under several reader settings.

A worker's cold start is mostly reading its checkpoint onto the GPU.  How fast
that goes depends on the disk (one stream or many, page cache or O_DIRECT), on
pinning host memory, and on what happens after the bytes arrive (building the
modules, casting, fusing).  This benchmark loads one checkpoint with each
reader in turn (interleaved, so a drift of the machine spreads over all of
them), the page cache dropped before each load when it may (root), and prints
the median of each step per reader, so the slow step is named, not guessed.

Also runnable without boto3 (the GPU machine): ``python -m pipeline.calibrate.loadbench``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pipeline.comfy.fastload import ReadOptions

from ._entry import entry_points
from .measure import CalibrationError, CalibrationSpec, DTYPES, prepare_checkpoint, time_load

__all__ = ["DEFAULT_READERS", "bench_loads", "main", "register"]

# the loader's default first, then the readers it was chosen against
DEFAULT_READERS = f"{ReadOptions().name},8x32,8x32d,4x16d,library"
STEPS = ("pin_s", "read_s", "split_s", "build_s", "assign_s", "cast_s", "layout_s", "fuse_s")


def _parse(readers: Sequence[str]) -> dict:
    try:
        return {text: ReadOptions.parse(text) for text in readers}
    except ValueError as exc:
        raise CalibrationError(f"--readers: {exc}") from None


def bench_loads(spec: CalibrationSpec, path: Path, readers: Sequence[str], loads: int = 2,
                drop_caches: bool = False, progress: Callable[[int, int], None] | None = None):
    """One row per load: the reader, the round, total seconds, each step's seconds, the page cache state."""
    import pandas as pd

    options = _parse(readers)
    rows = []
    total = loads * len(options)
    for round_ in range(loads):
        for text, opts in options.items():
            timing = time_load(spec, path, loads=1, drop_caches=drop_caches, reader=opts)
            steps = timing.phases[0]
            rows.append({"reader": text, "round": round_, "total_s": timing.seconds[0],
                         **{k: steps.get(k, np.nan) for k in STEPS}, "opened": steps.get("reader", ""),
                         "page_cache": timing.page_cache})
            del timing
            if progress:
                progress(len(rows), total)
    return pd.DataFrame(rows)


def summarise(frame, nbytes: int):
    """Median per reader, fastest first, with the read rate in GB/s."""
    table = frame.groupby("reader", sort=False).median(numeric_only=True).drop(columns="round")
    table["min_s"] = frame.groupby("reader", sort=False)["total_s"].min()
    table["max_s"] = frame.groupby("reader", sort=False)["total_s"].max()
    table["read_GB/s"] = nbytes / 1e9 / table["read_s"]
    return table.sort_values("total_s")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--model", default="tiny", help="a shipped architecture whose random-weight checkpoint is "
                                                  "written once and loaded (default tiny)")
    p.add_argument("--checkpoint", type=Path, default=None, help="load this comfyfab checkpoint file instead")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--readers", default=DEFAULT_READERS,
                   help=f"comma-separated: THREADSxMB with d for O_DIRECT, or library (default {DEFAULT_READERS})")
    p.add_argument("--loads", type=int, default=2, help="loads per reader (default 2)")
    p.add_argument("--drop-caches", action="store_true", help="drop the page cache before each load (root)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where the random-weight checkpoint is written")
    p.add_argument("--csv", type=Path, default=None, help="also write every load's row here")


def run_from_args(args: argparse.Namespace) -> int:
    from rich.console import Console

    if args.loads < 1:
        raise CalibrationError(f"--loads must be at least 1, got {args.loads}")
    readers = [r.strip() for r in args.readers.split(",") if r.strip()]
    if not readers:
        raise CalibrationError("--readers names no reader")
    _parse(readers)  # a bad reader fails before the checkpoint is written
    spec = CalibrationSpec(model=args.model, device=args.device, dtype=args.dtype)
    console = Console(width=160)
    with tempfile.TemporaryDirectory(prefix="comfyfab-loadbench-") as tmp:
        cache = args.cache_dir or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        if args.checkpoint is None:
            console.print(f"checkpoint: the random-weight {args.model} (written once under {cache})")
        path = prepare_checkpoint(spec, cache, args.checkpoint)
        nbytes = path.stat().st_size
        with console.status("loading") as status:
            frame = bench_loads(spec, path, readers, args.loads, args.drop_caches,
                                lambda done, total: status.update(f"load {done}/{total}"))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.csv, index=False)
    table = summarise(frame, nbytes)
    console.print(f"{path.name}: {nbytes / 1e9:.3g} GB on {args.device}, {args.loads} load(s) per reader, "
                  f"page cache {frame['page_cache'].iloc[0]}; median seconds per step:")
    console.print(table.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-"))
    opened = frame.drop_duplicates("reader").set_index("reader")["opened"]
    for reader, how in opened.items():
        if how and reader != "library" and ("O_DIRECT" in how) != reader.endswith("d"):
            console.print(f"[yellow]note:[/] {reader} read as {how} (the filesystem refused O_DIRECT)")
    return 0


register, main = entry_points(
    "load", "cold-start checkpoint loads under several reader settings, step by step",
    "pipeline.calibrate.loadbench", __doc__, add_arguments, run_from_args)


if __name__ == "__main__":
    raise SystemExit(main())
