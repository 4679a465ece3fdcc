"""Scenario replays: realistic traffic and faults, run on the simulator and the live pipeline.

A :class:`~scenarios.schema.Scenario` (YAML, validated by pydantic) names
traffic, faults, config overrides and SLO assertions.  :mod:`scenarios.sim_mode`
runs it on the simulator, :mod:`scenarios.live` on the in-process pipeline
(time-compressed); both turn their outcome into the same job table, from which
:mod:`scenarios.metrics` computes named metrics and :mod:`scenarios.assertions`
judges them.  :mod:`scenarios.gate` compares a baseline and a candidate config
on one scenario; :mod:`scenarios.cli` is ``comfyfab replay``;
:mod:`scenarios.pytest_plugin` puts the same gate into a team's CI.
"""

from .errors import AssertionSpecError, ReplayError, ScenarioError, ScenarioFileError

__all__ = ["AssertionSpecError", "ReplayError", "ScenarioError", "ScenarioFileError"]
