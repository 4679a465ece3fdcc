"""comfyfab: simulation and compliance test harness for an enterprise ComfyUI pipeline on AWS."""

__version__ = "0.1.0"
