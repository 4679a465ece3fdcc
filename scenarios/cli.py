"""``comfyfab replay SCENARIO``: run a scenario, judge its SLOs, gate a candidate config against a baseline.

Exit codes: 0 every assertion held (for a gate: the candidate's); 1 one or
more failed; 2 a usage or scenario-file error (one message, no traceback).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from comfyfab.cli import CliError, Context, parse_set
from comfyfab.config import ConfigError, FabricConfig, load_config

from .errors import ScenarioError
from .gate import agreement, compare, format_agreement, format_model_check
from .loader import library, load_scenario
from .result import ReplayResult
from .schema import Scenario

DISPATCH_DRAWS = 25  # --mode both: simulator runs over independent draws of the measured overheads


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay a scenario (sim, live or both), check its SLOs, gate a candidate")
    p.add_argument("scenario", nargs="?", help="a scenario YAML or a library name (see --list)")
    p.add_argument("--mode", choices=["sim", "live", "both"], default="sim",
                   help="simulator, live pipeline (embedded, time-compressed), or both on the same arrivals")
    p.add_argument("--baseline", type=Path, default=None, help="fabric YAML of the current configuration")
    p.add_argument("--candidate", type=Path, default=None, help="fabric YAML of the proposed configuration")
    p.add_argument("--candidate-set", action="append", metavar="PATH=VALUE", default=[],
                   help="a candidate that is the baseline with this override (repeatable)")
    p.add_argument("--out", type=Path, default=None, help="results folder (default runs/replay/SCENARIO)")
    p.add_argument("--time-scale", type=float, default=None, help="override the scenario's live time scale")
    p.add_argument("--window-h", type=float, default=None, help="override how much of it runs live (hours)")
    p.add_argument("--live-runs", type=int, default=1, metavar="N",
                   help="--mode both: replay the same arrivals live N times; the agreement compares the "
                        "simulator with their median and shows how far live runs differ from each other")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--list", action="store_true", help="list the shipped scenarios")
    p.set_defaults(func=_replay)


def _load_cfg(path: Path | None, ctx: Context) -> FabricConfig:
    if path is None:
        return ctx.config()
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _scenario(args: argparse.Namespace) -> Scenario:
    try:
        s = load_scenario(args.scenario)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    window_h = args.window_h
    if window_h is None and args.mode == "both" and s.live is not None and s.live.agreement_window_h:
        window_h = s.live.agreement_window_h  # sim vs live: a sample large enough for p95s
    if args.time_scale is not None or window_h is not None:
        from .schema import LiveSpec

        live = s.live or LiveSpec()
        upd = {k: v for k, v in (("time_scale", args.time_scale), ("window_h", window_h)) if v is not None}
        s = s.model_copy(update={"live": live.model_copy(update=upd)})
    return s


def _run(s: Scenario, cfg: FabricConfig, mode: str, label: str) -> ReplayResult:
    eff = s.effective_config(cfg)
    if mode == "sim":
        from .sim_mode import run_sim

        return run_sim(s, eff, label=label)
    from .live import run_live

    return run_live(s, eff, label=label)


def _sim_against_live(s: Scenario, cfg: FabricConfig, label: str, over) -> ReplayResult:
    """The simulator on exactly the arrivals the live replay submits, with the live pipeline's
    measured per-job overheads; further draws of those overheads alone (same arrivals and
    services), so that the agreement compares their median, not one draw's luck."""
    from .sim_mode import run_sim

    eff = s.effective_config(cfg)
    window = s.live.window_h if s.live else None
    first = run_sim(s, eff, label=label, window_h=window, overheads=over)
    first.dispatch_draws = [run_sim(s, eff, label=label, window_h=window, overheads=over, dispatch_draw=k)
                            for k in range(1, DISPATCH_DRAWS)]
    return first


def _model_check(s: Scenario, cfg: FabricConfig, label: str, lives: list[ReplayResult]) -> list[list[ReplayResult]]:
    """Per live run, the simulator on the same arrivals fed *that run's own* overheads (its submit,
    receive, turnaround and completion times), in ``DISPATCH_DRAWS`` draws.

    Not a prediction -- the overheads come from the run compared -- but it separates the model's own
    error from the drift of this machine between the probe and the live runs: if the simulator
    matches each run given that run's overheads, what is left between the prediction and the runs
    is how far the overheads moved, not how the queues, the workers and the autoscaler are modelled."""
    from .overheads import measured_overheads
    from .sim_mode import run_sim

    window = s.live.window_h if s.live else None
    plain = run_sim(s, s.effective_config(cfg), label=label, window_h=window)  # same draws, no overheads
    checks = []
    for live in lives:
        over = measured_overheads(live.jobs, plain.jobs, live.scenario.live.time_scale if live.scenario.live else 1.0)
        first = _sim_against_live(s, cfg, label, over)
        checks.append([first, *first.dispatch_draws])
    return checks


def _both(s: Scenario, cfg: FabricConfig, label: str, live_runs: int, out: Path, plots: bool
          ) -> tuple[ReplayResult, list[ReplayResult]]:
    """--mode both for one config: the live runs, with the overhead probe in slices before, between and
    after them (:class:`~scenarios.overheads.OverheadProbe`), then the simulator with what it measured."""
    from .overheads import OverheadProbe

    probe = OverheadProbe(s, s.effective_config(cfg), slices=live_runs + 1)
    probe.run_slice()
    lives = []
    for k in range(1, live_runs + 1):
        r = _run(s, cfg, "live", label)
        r.save(out / "-".join(x for x in (label, "live", str(k) if k > 1 else "") if x), plots=plots)
        _print_run(r)
        lives.append(r)
        probe.run_slice()
    over = probe.result()
    print(over.describe())
    sim = _sim_against_live(s, cfg, label, over)
    sim.save(out / "-".join(x for x in (label, "sim") if x), plots=plots)
    _print_run(sim)
    return sim, lives


def _print_run(r: ReplayResult) -> None:
    head = f"{r.scenario.name} [{r.mode}{', ' + r.label if r.label else ''}] config {r.cfg.digest()}: " \
           f"{r.metrics.get('jobs', 0):.0f} jobs in {r.wall_s:.1f} s wall"
    print(head)
    for v in r.verdicts:
        val = "-" if v.value is None else f"{v.value:.4g}"
        print(f"  {'PASS' if v.passed else 'FAIL'}  {str(v.assertion):<34} {val:>10}  {v.reason}")
    for n in r.notes:
        print(f"  note: {n}")


def _replay(args: argparse.Namespace, ctx: Context) -> int:
    if args.list:
        for name, path in library().items():
            s = load_scenario(path)
            print(f"{name:<24} {'live' if s.live else 'sim ':<5} {' '.join(s.description.split())[:90]}")
        return 0
    if not args.scenario:
        raise CliError("name a scenario (a YAML file or a library name; --list shows them)")
    s = _scenario(args)
    modes = ["sim", "live"] if args.mode == "both" else [args.mode]
    if "live" in modes and s.live is None:
        raise CliError(f"scenario {s.name} has no live section (it is meant for the simulator); "
                       "give --time-scale and --window-h to replay part of it live")
    if args.live_runs < 1 or (args.live_runs > 1 and args.mode != "both"):
        raise CliError("--live-runs takes a count of 1 or more, and more than 1 only with --mode both")
    gating = args.candidate is not None or bool(args.candidate_set)
    if args.baseline is not None and not gating:
        raise CliError("--baseline needs --candidate (or --candidate-set)")
    base_cfg = _load_cfg(args.baseline, ctx)
    configs = [("baseline" if gating else "", base_cfg)]
    if gating:
        cand = _load_cfg(args.candidate, ctx) if args.candidate is not None else base_cfg
        if args.candidate_set:
            try:
                cand = cand.with_overrides(dict(parse_set(x) for x in args.candidate_set))
            except ConfigError as exc:
                raise CliError(str(exc)) from None
        configs.append(("candidate", cand))
    out = args.out or Path("runs") / "replay" / s.name
    results: dict[tuple[str, str], ReplayResult] = {}
    repeats: dict[str, list[ReplayResult]] = {label: [] for label, _ in configs}  # live runs after the first
    try:
        for label, cfg in configs:
            if args.mode == "both":
                sim, lives = _both(s, cfg, label, args.live_runs, out, plots=not args.no_plots)
                results[(label, "sim")], results[(label, "live")], repeats[label] = sim, lives[0], lives[1:]
                continue
            r = _run(s, cfg, args.mode, label)
            results[(label, args.mode)] = r
            r.save(out / "-".join(x for x in (label, args.mode) if x), plots=not args.no_plots)
            _print_run(r)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    ok = True
    report = []
    for mode in modes:
        if gating:
            g = compare(results[("baseline", mode)], results[("candidate", mode)])
            report.append(g.format())
            ok &= g.passed
        else:
            ok &= results[("", mode)].passed
    if args.mode == "both":
        for label, _ in configs:
            sim, live = results[(label, "sim")], results[(label, "live")]
            draws = [sim, *sim.dispatch_draws]
            lives = [live, *repeats[label]]
            report.append(format_agreement(agreement(draws, lives), sim, live, draws=len(draws)))
            checks = _model_check(s, dict(configs)[label], label, lives)
            report.append(format_model_check([agreement(c, lv, boot=0) for c, lv in zip(checks, lives)],
                                             draws=DISPATCH_DRAWS))
    text = "\n\n".join(report)
    if text:
        print()
        print(text)
        (out / "report.txt").write_text(text + "\n")
    print(f"\n{'PASS' if ok else 'FAIL'}: {s.name}; results, plots and effective configs in {out}")
    return 0 if ok else 1


