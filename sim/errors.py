"""Every error the simulator raises on purpose, one class per cause."""

from __future__ import annotations


class SimError(Exception):
    """Base of all simulator errors."""


class EventLoopError(SimError):
    """Misuse of the event core: scheduling in the past, running backwards."""


class WorkloadError(SimError):
    """A workload spec or trace that cannot produce arrivals."""


class TraceError(WorkloadError):
    """A trace file that is missing, unreadable or lacks required columns."""


class ProfileError(SimError):
    """A service-time profile file that is missing or malformed."""


class SloSpecError(SimError):
    """An SLO expression such as ``realtime.p95<=2s`` that does not parse."""


class PlanError(SimError):
    """No fleet in the search space meets the requested SLOs."""


class SchedulerError(SimError):
    """A sweep scheduler that is not understood or cannot be reached."""
