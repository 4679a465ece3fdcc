"""Replay gates in a team's own CI: a pytest plugin with a ``replay`` fixture.

Enable it in a ``conftest.py`` (``pytest_plugins = ["scenarios.pytest_plugin"]``)
or on the command line (``pytest -p scenarios.pytest_plugin``), then::

    def test_monday_burst_holds(replay):
        replay.check("monday-morning-burst")                      # every SLO of the scenario

    def test_new_threshold_is_safe(replay):
        replay.gate("monday-morning-burst", candidate={"fleet.autoscaling.queue_depth_threshold": 20})

``check`` and ``gate`` fail the test with the verdict table (or the gate's
side-by-side diff) when an assertion breaks.  Options: ``--replay-mode``
(``sim``, the default, or ``live``), ``--replay-config`` (the fabric YAML
the scenarios run on; the shipped default otherwise), ``--replay-out``
(keep results and plots there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pytest

from comfyfab.config import FabricConfig, load_config

from .gate import GateReport, compare
from .loader import load_scenario
from .result import ReplayResult
from .schema import Scenario


class ReplayFailed(AssertionError):
    """A scenario's SLO assertions did not hold (the message is the verdict table)."""


class Replayer:
    """Runs scenarios for a test and turns broken SLOs into test failures."""

    def __init__(self, config: FabricConfig, mode: str = "sim", out: Path | None = None):
        self.config, self.mode, self.out = config, mode, out

    def run(self, scenario: str | Path | Scenario, config: FabricConfig | None = None,
            overrides: Mapping[str, Any] | None = None, mode: str | None = None, label: str = "") -> ReplayResult:
        s = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        cfg = config or self.config
        if overrides:
            cfg = cfg.with_overrides(overrides)
        eff = s.effective_config(cfg)
        if (mode or self.mode) == "live":
            from .live import run_live

            r = run_live(s, eff, label=label)
        else:
            from .sim_mode import run_sim

            r = run_sim(s, eff, label=label)
        if self.out is not None:
            r.save(self.out / s.name / "-".join(x for x in (label, r.mode) if x))
        return r

    def check(self, scenario: str | Path | Scenario, **kwargs: Any) -> ReplayResult:
        """Replay and fail the test unless every assertion holds."""
        r = self.run(scenario, **kwargs)
        if not r.passed:
            lines = [f"scenario {r.scenario.name} [{r.mode}] broke its SLOs:"]
            lines += [f"  {'PASS' if v.passed else 'FAIL'} {v.assertion}: "
                      f"{'-' if v.value is None else f'{v.value:.4g}'} {v.reason}" for v in r.verdicts]
            raise ReplayFailed("\n".join(lines))
        return r

    def gate(self, scenario: str | Path | Scenario, candidate: FabricConfig | Mapping[str, Any],
             baseline: FabricConfig | None = None, mode: str | None = None) -> GateReport:
        """Baseline vs candidate (a config or overrides of the baseline); fail unless the candidate passes."""
        base = baseline or self.config
        cand = candidate if isinstance(candidate, FabricConfig) else base.with_overrides(candidate)
        s = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        report = compare(self.run(s, base, mode=mode, label="baseline"),
                         self.run(s, cand, mode=mode, label="candidate"))
        if not report.passed:
            raise ReplayFailed(report.format())
        return report


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("comfyfab replay")
    group.addoption("--replay-mode", choices=["sim", "live"], default="sim",
                    help="where the replay fixture runs scenarios (default: sim)")
    group.addoption("--replay-config", default=None, help="fabric YAML the scenarios run on")
    group.addoption("--replay-out", default=None, help="keep replay results and plots under this folder")


@pytest.fixture
def replay(request: pytest.FixtureRequest) -> Replayer:
    """A :class:`Replayer` on the configured fabric."""
    opt = request.config.getoption
    path = opt("--replay-config")
    out = opt("--replay-out")
    return Replayer(load_config(path) if path else load_config(), mode=opt("--replay-mode"),
                    out=Path(out) if out else None)
