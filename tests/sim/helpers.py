"""Configs and workloads shared by the simulator tests (the validation module's own)."""

from sim.validate import fixed_fleet, poisson

__all__ = ["fixed_fleet", "poisson"]
