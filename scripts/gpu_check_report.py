"""Print the GPU check's figures from the profiles' JSON files and judge them against issue 6's targets.

Usage: python scripts/gpu_check_report.py PROFILE_DIR [LOADBENCH_CSV ...]

With ``comfyfab bench load`` rows (``--csv``), the load verdict is the median of the fastest
reader's loads (the reader the loader defaults to was chosen that way); without them, the
median of the profiles' own timed loads.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

# issue 6, "Done when" (H100): p50 per image at batch 1, batched throughput, checkpoint load from local disk
TARGETS = {"p50_s": 0.85, "images_per_s": 1.8, "load_s": 5.0}


def _bench_loads(paths: list[str]) -> tuple[str, list[float]] | None:
    """The fastest reader (by median) of ``comfyfab bench load`` rows, and its loads."""
    by_reader: dict[str, list[float]] = defaultdict(list)
    for path in paths:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                by_reader[row["reader"]].append(float(row["total_s"]))
    if not by_reader:
        return None
    print("cold loads by reader (comfyfab bench load), median s: " + ", ".join(
        f"{r} {statistics.median(v):.2f}" for r, v in sorted(by_reader.items(), key=lambda kv: statistics.median(kv[1]))))
    reader = min(by_reader, key=lambda r: statistics.median(by_reader[r]))
    return reader, sorted(by_reader[reader])


def main(folder: str, loadbench: list[str] | None = None) -> int:
    summaries = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    if not summaries:
        print(f"no profiles under {folder}: the calibration did not finish")
        return 1
    # 1st run s: the first warm-up run, which pays a compiled run's compile (what a cold worker waits)
    print(f"{'profile':<46} {'device':<24} {'p50 s':>8} {'p90 s':>8} {'img/s':>7} {'load s':>7} "
          f"{'TFLOP/img':>9} {'MFU':>6} {'1st run s':>9}")
    for s in summaries:
        kernel = s.get("attention_kernel", "auto")
        regional = "-regional" if s.get("compile_scope") == "regional" else ""
        compiled = f"-compiled{regional}" if s["compiled"] else ""
        name = (f"{s['model']}-{s['resolution']}-{s['steps']}-b{s['batch']}" + ("-fp8" if s.get("fp8_layers") else "")
                + ("" if kernel == "auto" else f"-{kernel}") + compiled)
        mfu = f"{s['mfu']:.1%}" if s["mfu"] is not None else "n/a"
        first_run = f"{s['warmup_s'][0]:.1f}" if s.get("warmup_s") else "-"
        print(f"{name:<46} {s['device'][:24]:<24} {s['p50_s']:>8.3f} {s['p90_s']:>8.3f} {s['images_per_s']:>7.2f} "
              f"{s['load_s']:>7.2f} {s['flops_per_image'] / 1e12:>9.1f} {mfu:>6} {first_run:>9}")
    first = summaries[0]
    print(f"torch {first['torch_version']}, {first['dtype']}, {first['attention']}, channels-last "
          f"{first['channels_last']}; MFU against {first['peak_source']}; page cache at load: {first['page_cache']}")
    single = [s for s in summaries if s["batch"] == 1]
    batched = [s for s in summaries if s["batch"] > 1]
    best_p50 = min(s["p50_s"] for s in single) if single else None
    best_rate = max(s["images_per_s"] for s in summaries)
    # every timed load of the run counts once (profiles of one calibrate process share their loads)
    loads = sorted({x for s in summaries for x in s.get("load_samples_s") or [s["load_s"]] if x is not None})
    load = statistics.median(loads) if loads else None
    if loads:
        print(f"checkpoint loads: {len(loads)}, {loads[0]:.2f}-{loads[-1]:.2f} s"
              + ("" if loadbench else "; the verdict takes their median"))
    bench = _bench_loads(loadbench) if loadbench else None
    if bench is not None:
        reader, times = bench
        load = statistics.median(times)
        print(f"load verdict: reader {reader}, {len(times)} loads, {times[0]:.2f}-{times[-1]:.2f} s, their median")
    checks = [("p50 per image at batch 1", best_p50, "<=", TARGETS["p50_s"]),
              ("images/s (best, batched or not)", best_rate, ">=", TARGETS["images_per_s"]),
              ("checkpoint load s (median)", load, "<=", TARGETS["load_s"])]
    if not batched:
        print("no batched profile: the batched throughput is the batch-1 rate")
    for label, value, op, target in checks:
        if value is None:
            print(f"{label}: not measured")
            continue
        ok = value <= target if op == "<=" else value >= target
        print(f"{label}: {value:.3f} (target {op} {target}) {'MET' if ok else 'NOT MET'}")
    others = sorted({s["device"] for s in summaries if "H100" not in s["device"]})
    if others:  # an H200 has the H100's compute but faster memory: its figures are evidence of another device
        print(f"note: measured on {', '.join(others)}, not an H100; the targets above are an H100's, so these "
              "verdicts do not settle them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "profiles", sys.argv[2:]))
