"""What a replay returns and saves: jobs, a timeline, counters, metrics and verdicts, with its config."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from comfyfab.config import FabricConfig

from .assertions import Verdict, judge_all
from .metrics import compute
from .schema import Scenario

TIMELINE_COLUMNS = ("t", "tenant", "depth_realtime", "depth_standard", "depth_batch", "workers", "busy")


@dataclass
class ReplayResult:
    """One scenario replayed once, in one mode, on one effective config."""

    scenario: Scenario
    mode: str                      # "sim" or "live"
    cfg: FabricConfig              # the effective config (scenario overrides applied)
    jobs: pd.DataFrame             # scenarios.metrics.JOB_COLUMNS
    timeline: pd.DataFrame         # TIMELINE_COLUMNS
    counters: dict[str, dict[str, float]]
    wall_s: float
    notes: list[str] = field(default_factory=list)
    label: str = ""
    # --mode both, simulator side: the runs over further draws of the measured dispatch times
    dispatch_draws: list["ReplayResult"] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.metrics = compute(self.jobs, self.cfg, self.counters)
        self.verdicts: list[Verdict] = judge_all(self.scenario.checks, self.metrics)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    def save(self, directory: str | Path, plots: bool = True) -> Path:
        """Write the effective config beside the results (the run's provenance), and the plots."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.yaml").write_text(yaml.safe_dump(self.cfg.model_dump(mode="json"), sort_keys=False))
        (d / "scenario.yaml").write_text(yaml.safe_dump(
            self.scenario.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=False))
        self.jobs.to_csv(d / "jobs.csv", index=False)
        self.timeline.to_csv(d / "timeline.csv", index=False)
        (d / "result.json").write_text(json.dumps({
            "scenario": self.scenario.name, "mode": self.mode, "label": self.label,
            "config_digest": self.cfg.digest(), "wall_s": round(self.wall_s, 3), "passed": self.passed,
            "notes": self.notes,
            "verdicts": [{"assertion": str(v.assertion), "value": _json_num(v.value), "passed": v.passed,
                          "reason": v.reason} for v in self.verdicts],
            "metrics": {k: _json_num(v) for k, v in sorted(self.metrics.items())}}, indent=2))
        if plots:
            from .plots import save_plots

            save_plots(self, d)
        return d


def _json_num(v: float | None) -> float | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v
