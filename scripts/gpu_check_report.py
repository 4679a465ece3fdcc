"""Print the GPU check's figures from the profiles' JSON files and judge them against issue 6's targets.

Usage: python scripts/gpu_check_report.py PROFILE_DIR
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

# issue 6, "Done when" (H100): p50 per image at batch 1, batched throughput, checkpoint load from local disk
TARGETS = {"p50_s": 0.85, "images_per_s": 1.8, "load_s": 5.0}


def main(folder: str) -> int:
    summaries = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    if not summaries:
        print(f"no profiles under {folder}: the calibration did not finish")
        return 1
    print(f"{'profile':<34} {'device':<24} {'p50 s':>8} {'p90 s':>8} {'img/s':>7} {'load s':>7} "
          f"{'TFLOP/img':>9} {'MFU':>6}")
    for s in summaries:
        name = f"{s['model']}-{s['resolution']}-{s['steps']}-b{s['batch']}" + ("-compiled" if s["compiled"] else "")
        mfu = f"{s['mfu']:.1%}" if s["mfu"] is not None else "n/a"
        print(f"{name:<34} {s['device'][:24]:<24} {s['p50_s']:>8.3f} {s['p90_s']:>8.3f} {s['images_per_s']:>7.2f} "
              f"{s['load_s']:>7.2f} {s['flops_per_image'] / 1e12:>9.1f} {mfu:>6}")
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
        print(f"checkpoint loads: {len(loads)}, {loads[0]:.2f}-{loads[-1]:.2f} s; the verdict takes their median")
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "profiles"))
