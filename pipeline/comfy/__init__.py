"""A ComfyUI stand-in: ComfyUI's HTTP/websocket API executing the core
txt2img graph with torch + diffusers architectures (deterministic random
weights unless a local checkpoint is given), a client for it, and workflow
builders.  See :mod:`pipeline.comfy.server` and :mod:`pipeline.comfy.client`.
"""
