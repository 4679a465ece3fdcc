"""Calibration: measured service-time profiles of the ComfyUI stand-in for the simulator.

``comfyfab calibrate`` (or ``python -m pipeline.calibrate``) times the full
txt2img path, the checkpoint load and the FLOPs of one architecture on one
device and writes profiles that :mod:`sim.service` reads.  See
:mod:`pipeline.calibrate.measure` for what is timed and
:mod:`pipeline.calibrate.profile` for the files.
"""

from .measure import CalibrationError, CalibrationSpec, FlopCount, count_flops, count_flops_meta, time_runs, txt2img_once
from .profile import LognormalFit, ProfileSummary, fit_lognormal, read_summary
from .run import CalibrationResult, Peak, calibrate, resolve_peak

__all__ = ["CalibrationError", "CalibrationResult", "CalibrationSpec", "FlopCount", "LognormalFit", "Peak",
           "ProfileSummary", "calibrate", "count_flops", "count_flops_meta", "fit_lognormal", "read_summary", "resolve_peak",
           "time_runs", "txt2img_once"]
