"""The capacity model: a fast discrete-event twin of the fleet.

Entry points: :func:`sim.run.simulate` / :func:`sim.run.replicate` (one or
many replications), :func:`sim.metrics.summary` and
:func:`sim.metrics.across` (metrics as DataFrames), :func:`sim.sweep.sweep`
(many configs on a process pool or a Dask cluster), :func:`sim.plan.plan` (cheapest fleet
meeting SLOs), :mod:`sim.validate` (the checks against queueing theory) and
:mod:`sim.plots`.  See ``sim/README.md``.
"""
