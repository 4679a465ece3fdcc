"""How the calibration benchmarks are started: as ``comfyfab bench NAME`` or as ``python -m``
(the GPU machine has no boto3), with a :class:`CalibrationError` as a message and exit 2 either way."""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

from .measure import CalibrationError

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
