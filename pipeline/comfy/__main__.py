"""Run the ComfyUI stand-in as its own process: ``python -m pipeline.comfy``.

An entry point, so it parses arguments; it serves until interrupted.  The
default port is ComfyUI's (8188), so tools pointed at a local ComfyUI work.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from comfyfab.child import ready

from .engines import TorchOptions
from .models import (ATTENTION_BACKENDS, ModelError, add_compile_argument, add_fp8_argument, fp8_refusal,
                     read_calibration_prompts)
from .server import ComfyServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.comfy",
                                     description="ComfyUI stand-in: ComfyUI's HTTP/websocket API on diffusers models.")
    parser.add_argument("--listen", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8188, help="port (default 8188, ComfyUI's; 0 = any free port)")
    parser.add_argument("--engine", choices=("torch", "noop"), default="torch")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--models-dir", type=Path, default=None, help="folder of local .safetensors checkpoints")
    parser.add_argument("--output-dir", type=Path, default=Path("output"), help="where SaveImage writes")
    parser.add_argument("--cpu-threads", type=int, default=None, help="torch intra-op threads")
    add_compile_argument(parser, "each model's UNet and VAE decoder (the first job of a shape pays it)")
    add_fp8_argument(parser)
    parser.add_argument("--fp8-calibration-prompts", type=Path, default=None, metavar="FILE",
                        help="with --fp8 static: fix the input scales on these prompts, one per line (default: one "
                             "fixed prompt; a real checkpoint's scales are better fixed on the prompts it serves)")
    parser.add_argument("--attention", choices=ATTENTION_BACKENDS, default="auto",
                        help="the SDPA kernel to try first (default auto: torch's order; "
                             "comfyfab bench attention says which is fastest)")
    parser.add_argument("--max-batch", type=int, default=1,
                        help="sample up to N queued same-shape prompts together (default 1: one at a time)")
    parser.add_argument("--announce", action="store_true",
                        help="print the port as one JSON line and exit when stdin closes (comfyfab.child)")
    args = parser.parse_args(argv)
    try:
        prompts = read_calibration_prompts(args.fp8_calibration_prompts) if args.fp8_calibration_prompts else ()
        options = TorchOptions(device=args.device, cpu_threads=args.cpu_threads, compile=args.compile,
                               fp8=args.fp8, attention=args.attention, fp8_calibration_prompts=prompts)
    except (ValueError, ModelError) as exc:
        parser.error(str(exc))
    if options.fp8 and (refused := fp8_refusal(options.device)):
        parser.error(refused)  # at start, not on the first job's model load
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ComfyServer(engine=args.engine, models_dir=args.models_dir, output_dir=args.output_dir,
                     host=args.listen, port=args.port, options=options, max_batch=args.max_batch) as server:
        ready(server.port, args.announce, f"ComfyUI stand-in ({args.engine} engine, {args.device}) at {server.url}")
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
