"""Every error the scenario replays raise on purpose, one class per cause."""

from __future__ import annotations


class ScenarioError(Exception):
    """Base of all scenario errors (the CLI prints them as one message)."""


class ScenarioFileError(ScenarioError):
    """A scenario file that is missing, not YAML, or does not validate; the message names the field."""


class AssertionSpecError(ScenarioError, ValueError):
    """An SLO assertion such as ``realtime.p95 <= 2s`` that does not parse (a ValueError, so pydantic names the field)."""


class ReplayError(ScenarioError):
    """A replay that could not run to its end (live stack failure, timeout)."""
