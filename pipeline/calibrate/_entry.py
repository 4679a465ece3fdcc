"""How the calibration benchmarks are started: as ``comfyfab bench NAME`` or as ``python -m``
(the GPU machine has no boto3), with a :class:`CalibrationError` as a message and exit 2 either way."""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

from .measure import CalibrationError, CalibrationSpec, shipped_arch

Run = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]


def register_bench(bench: argparse._SubParsersAction, name: str, help: str, add_arguments: Arguments,
                   run: Run) -> None:
    p = bench.add_parser(name, help=help)
    add_arguments(p)

    def handler(args: argparse.Namespace, ctx) -> int:
        from comfyfab.cli import CliError

        try:
            return run(args)
        except CalibrationError as exc:
            raise CliError(str(exc)) from None

    p.set_defaults(func=handler)


def bench_spec(args: argparse.Namespace, **fields) -> CalibrationSpec:
    """The spec of a one-batch benchmark's ``--model``/``--device``/``--resolution``/``--batch``/
    ``--dtype`` (``fields`` add the rest); a clear error for an unknown model or a batch below 1."""
    arch = shipped_arch(args.model)
    if args.batch < 1:
        raise CalibrationError(f"--batch must be at least 1, got {args.batch}")
    return CalibrationSpec(model=args.model, device=args.device, resolution=args.resolution or arch.default_resolution,
                           dtype=args.dtype, **fields)


def standalone(prog: str, description: str, add_arguments: Arguments, run: Run,
               argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except CalibrationError as exc:
        print(f"error: {exc}")
        return 2


def entry_points(name: str, help: str, module: str, doc: str, add_arguments: Arguments,
                 run: Run) -> tuple[Callable[..., None], Callable[..., int]]:
    """A benchmark module's ``register(sub, bench)`` (for ``comfyfab bench NAME``) and
    ``main(argv)`` (for ``python -m MODULE``, described by the first line of ``doc``)."""

    def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
        register_bench(bench, name, help, add_arguments, run)

    def main(argv: Sequence[str] | None = None) -> int:
        return standalone(f"python -m {module}", doc.splitlines()[0], add_arguments, run, argv)

    return register, main
