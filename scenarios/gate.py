"""The replay gate: a baseline and a candidate config side by side, every SLO judged, one exit code.

The candidate passes the gate when every assertion of the scenario holds for
it.  The diff also shows how each metric moved, and flags a move in the bad
direction of more than ``tolerance`` (relative) as ``worse`` -- informative,
not failing, because a scenario's assertions are its contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .assertions import HIGHER_IS_BETTER
from .result import ReplayResult

STANDARD_METRICS = ("realtime.p50", "realtime.p95", "standard.p95", "batch.p95", "all.wait_p95", "jobs",
                    "completed", "dlq", "lost", "peak_workers", "cold_starts", "interruptions", "redeliveries",
                    "cost_usd", "cutover_s")


@dataclass(frozen=True)
class DiffRow:
    """One metric of the diff: both values, the change and, for an asserted metric, both verdicts."""

    metric: str
    baseline: float | None
    candidate: float | None
    assertion: str = ""
    baseline_ok: bool | None = None
    candidate_ok: bool | None = None

    @property
    def change(self) -> float | None:
        b, c = self.baseline, self.candidate
        if b is None or c is None or _nan(b) or _nan(c):
            return None
        return (c - b) / abs(b) if b else (0.0 if c == b else math.inf)

    def worse(self, tolerance: float) -> bool:
        ch = self.change
        if ch is None:
            return False
        higher_better = self.metric.split(":")[-1].split(".")[-1] in HIGHER_IS_BETTER
        return (-ch if higher_better else ch) > tolerance


@dataclass
class GateReport:
    """The side-by-side diff of two replays of one scenario in one mode."""

    baseline: ReplayResult
    candidate: ReplayResult
    rows: list[DiffRow]
    tolerance: float = 0.10

    @property
    def passed(self) -> bool:
        return self.candidate.passed

    def format(self) -> str:
        head = (f"{self.candidate.scenario.name} [{self.candidate.mode}]: "
                f"baseline {self.baseline.label or self.baseline.cfg.digest()} vs "
                f"candidate {self.candidate.label or self.candidate.cfg.digest()}")
        lines = [head, f"{'metric':<30} {'baseline':>12} {'candidate':>12} {'change':>9}  {'assertion':<26} "
                       f"{'base':<5} {'cand':<5}"]
        for r in self.rows:
            ch = r.change
            chs = "" if ch is None else ("+inf" if math.isinf(ch) else f"{ch:+.1%}")
            mark = lambda ok: "" if ok is None else ("PASS" if ok else "FAIL")  # noqa: E731
            flag = "  worse" if r.worse(self.tolerance) else ""
            lines.append(f"{r.metric:<30} {_fmt(r.baseline):>12} {_fmt(r.candidate):>12} {chs:>9}  "
                         f"{r.assertion:<26} {mark(r.baseline_ok):<5} {mark(r.candidate_ok):<5}{flag}")
        verdict = "PASS" if self.passed else "FAIL"
        failed = [str(v.assertion) for v in self.candidate.verdicts if not v.passed]
        lines.append(f"gate: {verdict}" + (f" (candidate breaks: {'; '.join(failed)})" if failed else ""))
        return "\n".join(lines)


def compare(baseline: ReplayResult, candidate: ReplayResult, tolerance: float = 0.10) -> GateReport:
    """Diff every asserted metric, then the standard ones, of two replays of the same scenario and mode."""
    if baseline.scenario.name != candidate.scenario.name or baseline.mode != candidate.mode:
        raise ValueError("compare needs two replays of the same scenario in the same mode")
    rows: list[DiffRow] = []
    seen: set[str] = set()
    for vb, vc in zip(baseline.verdicts, candidate.verdicts):
        key = vb.assertion.key
        rows.append(DiffRow(key, vb.value, vc.value, str(vb.assertion), vb.passed, vc.passed))
        seen.add(key)
    for key in STANDARD_METRICS:
        if key not in seen:
            rows.append(DiffRow(key, baseline.metrics.get(key), candidate.metrics.get(key)))
    return GateReport(baseline, candidate, rows, tolerance)


@dataclass(frozen=True)
class AgreementRow:
    """One statistic from the simulator and from the live pipeline on the same arrivals.

    ``sim`` is the median over the simulator's draws of the measured dispatch times (one when it
    has none).  ``live`` is the statistic of the one live run, or the median over several live
    runs of the same arrivals (``live_runs`` holds each run's).  ``live_lo``/``live_hi`` bound,
    for one run, the statistic's bootstrap 90 % interval (how far one live run of this size can be
    from its own expectation) and, for several, the lowest and highest run."""

    metric: str
    sim: float
    live: float
    live_lo: float = math.nan
    live_hi: float = math.nan
    live_runs: tuple[float, ...] = ()

    @property
    def live_spread(self) -> float:
        """How far apart the live runs are: (highest - lowest) / their median; nan for one run."""
        if len(self.live_runs) < 2 or not self.live:
            return math.nan
        return (max(self.live_runs) - min(self.live_runs)) / abs(self.live)

    @property
    def abs_diff(self) -> float:
        return self.live - self.sim

    @property
    def rel_diff(self) -> float:
        return (self.live - self.sim) / abs(self.sim) if self.sim else (0.0 if self.live == self.sim else math.inf)

    @property
    def sim_in_live_interval(self) -> bool | None:
        if math.isnan(self.live_lo) or math.isnan(self.live_hi):
            return None
        return self.live_lo <= self.sim <= self.live_hi


_STAT = {"wait_p50": ("start", 0.5), "wait_p95": ("start", 0.95), "p50": ("end", 0.5), "p95": ("end", 0.95)}


def _live_interval(live: ReplayResult, cls: str, stat: str, boot: int, seed: int = 0) -> tuple[float, float]:
    """Bootstrap 90 % interval of one live statistic (jobs resampled with replacement)."""
    jobs = getattr(live, "jobs", None)
    if stat not in _STAT or jobs is None or not len(jobs):
        return math.nan, math.nan
    ok = jobs[jobs["status"] == "ok"]
    if cls != "all":
        ok = ok[ok["class"] == cls]
    col, q = _STAT[stat]
    x = (ok[col] - ok["arrival"]).to_numpy(dtype=float)
    if len(x) < 5:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    stats = np.quantile(x[rng.integers(0, len(x), size=(boot, len(x)))], q, axis=1)
    lo, hi = np.quantile(stats, [0.05, 0.95])
    return float(lo), float(hi)


def agreement(sim: ReplayResult | list[ReplayResult], live: ReplayResult | list[ReplayResult],
              classes: tuple[str, ...] = ("realtime", "standard", "batch", "all"),
              stats: tuple[str, ...] = ("wait_p50", "wait_p95", "p50", "p95"), boot: int = 2000) -> list[AgreementRow]:
    """Sim vs live on the same arrival sequence, per class and statistic.  ``sim`` may be several
    runs (draws of the dispatch times) and ``live`` several live runs: each side's median is
    compared."""
    sims = sim if isinstance(sim, list) else [sim]
    lives = live if isinstance(live, list) else [live]

    def of(runs: list[ReplayResult], k: str) -> list[float]:
        values = [x.metrics.get(k) for x in runs]
        return [float(v) for v in values if v is not None and not _nan(v)]

    rows = []
    for c in classes:
        for s in stats:
            k = f"{c}.{s}"
            values, seen = of(sims, k), of(lives, k)
            if not values or len(seen) != len(lives):
                continue
            if len(lives) == 1:
                lo, hi = _live_interval(lives[0], c, s, boot) if boot else (math.nan, math.nan)
            else:
                lo, hi = min(seen), max(seen)
            rows.append(AgreementRow(k, float(np.median(values)), float(np.median(seen)), lo, hi, tuple(seen)))
    return rows


def format_agreement(rows: list[AgreementRow], sim: ReplayResult, live: ReplayResult, draws: int = 1) -> str:
    runs = max((len(r.live_runs) for r in rows), default=1)
    lines = [f"{sim.scenario.name}: simulator vs live pipeline on the same {live.metrics.get('jobs', 0):.0f} arrivals "
             f"(live time scale {live.scenario.live.time_scale if live.scenario.live else 1:g}x"
             f"{f'; sim = median of {draws} draws of the measured dispatch times' if draws > 1 else ''}"
             f"{f'; live = median of {runs} runs' if runs > 1 else ''})",
             f"{'metric':<30} {'sim':>9} {'live':>9} {'live-sim':>9} {'rel':>8}  "
             f"{'live 90% interval' if runs < 2 else 'live runs low-high':>19}"]
    for r in rows:
        rel = "n/a" if math.isinf(r.rel_diff) else f"{r.rel_diff:+.1%}"
        inside = r.sim_in_live_interval
        band = "" if inside is None else f"{r.live_lo:>8.3f}-{r.live_hi:<8.3f} {'sim in' if inside else 'sim out'}"
        lines.append(f"{r.metric:<30} {r.sim:>9.3f} {r.live:>9.3f} {r.abs_diff:>+9.3f} {rel:>8}  {band}")
    waits = [r for r in rows if ".wait_" in r.metric]
    defined = [r for r in waits if r.sim >= 0.05]
    if waits:
        worst = max((abs(r.rel_diff) for r in defined), default=float("nan"))
        within = sum(abs(r.rel_diff) <= 0.10 for r in defined)
        lines.append(f"waits: {len(defined)} of {len(waits)} have a simulated value >= 50 ms; {within} of them within "
                     f"10 %, worst relative gap {worst:.0%}; largest absolute gap "
                     f"{max(abs(r.abs_diff) for r in waits):.3f} s")
        judged = [r for r in rows if r.sim_in_live_interval is not None]
        if judged and runs < 2:
            lines.append(f"the simulated value lies inside the live run's bootstrap 90 % interval for "
                         f"{sum(bool(r.sim_in_live_interval) for r in judged)} of {len(judged)} statistics "
                         f"(a gap inside it is within what one live run of this size varies by)")
        elif judged:
            spread = [r.live_spread for r in defined if not math.isnan(r.live_spread)]
            lines.append(f"live vs live, {runs} runs of the same arrivals: the waits' statistics spread by up to "
                         f"{max(spread, default=math.nan):.0%} of their median between runs (median spread "
                         f"{float(np.median(spread)) if spread else math.nan:.0%}); the simulated value lies between "
                         f"the lowest and the highest live run for {sum(bool(r.sim_in_live_interval) for r in judged)}"
                         f" of {len(judged)} statistics")
    return "\n".join(lines)


def format_model_check(per_run: list[list[AgreementRow]], draws: int) -> str:
    """The simulator fed each live run's own overheads against that run (see ``scenarios.cli._model_check``):
    the waits' relative gap per run."""
    if not per_run or not per_run[0]:
        return ""
    metrics = [r.metric for r in per_run[0] if ".wait_" in r.metric]
    gaps = {m: [next((r.rel_diff for r in rows if r.metric == m), math.nan) for rows in per_run] for m in metrics}
    lines = [f"model check: the simulator fed each live run's own overheads, against that run (median of {draws} "
             "draws; not a prediction, since the overheads come from the run compared: this is the model's error "
             "without the machine's drift between the probe and the live runs)",
             f"{'metric':<30} " + " ".join(f"{f'run {k}':>9}" for k in range(1, len(per_run) + 1))]
    for m in metrics:
        lines.append(f"{m:<30} " + " ".join("      n/a" if math.isnan(g) or math.isinf(g) else f"{g:>+9.1%}"
                                             for g in gaps[m]))
    # as in the agreement: a relative gap is judged only where the simulated wait is at least 50 ms
    sims = {m: [next((r.sim for r in rows if r.metric == m), math.nan) for rows in per_run] for m in metrics}
    every = [abs(g) for m in metrics for g, v in zip(gaps[m], sims[m])
             if not (math.isnan(g) or math.isinf(g)) and v >= 0.05]
    if every:
        lines.append(f"model check: {sum(g <= 0.10 for g in every)} of {len(every)} run-statistics (simulated wait "
                     f">= 50 ms) within 10 %, median gap {float(np.median(every)):.1%}, worst {max(every):.1%}")
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    if v is None or _nan(v):
        return "-"
    if float(v).is_integer() and abs(v) < 1e9:
        return f"{int(v)}"
    return f"{v:.3f}"


def _nan(x: object) -> bool:
    return isinstance(x, float) and math.isnan(x)
