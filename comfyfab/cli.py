"""The ``comfyfab`` command line.

Each area registers its own subcommands: a module in ``COMMAND_MODULES``
exposes ``register(sub, bench)`` where ``sub`` is the top-level subparsers
object and ``bench`` the subparsers of ``comfyfab bench``.  A handler is
stored as ``func`` on its parser and receives the parsed args and a
:class:`Context`.

This is an entry point: it is the one place that reads the environment (for
the backend) and turns every expected error into a message and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from .cloud import BACKENDS, BackendError, BackendSpec
from .config import ConfigError, FabricConfig, load_config

COMMAND_MODULES = (
    "pipeline.cli",
    "sim.cli",
    "compliance.cli",
    "comfyfab.emulator_cli",
    "pipeline.calibrate.cli",
    "pipeline.calibrate.loadbench",
    "pipeline.calibrate.kernels",
    "pipeline.calibrate.attention",
    "pipeline.calibrate.compiletime",
    "scenarios.cli",
)


class CliError(Exception):
    """An expected failure: printed as one message, exit code ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


@dataclass
class Context:
    """What every handler gets besides its own args."""

    args: argparse.Namespace

    def config(self) -> FabricConfig:
        overrides = dict(parse_set(s) for s in (self.args.set or []))
        return load_config(self.args.config, overrides=overrides)

    def backend(self, kind: str | None = None) -> BackendSpec:
        kind = kind or self.args.backend
        return BackendSpec.from_env(kind, self.config().region, os.environ)


def parse_set(item: str) -> tuple[str, Any]:
    """One `--set path=value` override; the value is read as YAML (numbers, booleans, lists)."""
    if "=" not in item:
        raise CliError(f"--set expects path=value, got {item!r}")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comfyfab",
        description="Simulation and compliance test harness for an enterprise ComfyUI pipeline on AWS.")
    parser.add_argument("--config", type=Path, default=None,
                        help="fabric YAML (default: the shipped fabric.yaml)")
    parser.add_argument("--set", action="append", metavar="PATH=VALUE",
                        help="override one config value, e.g. --set fleet.autoscaling.max_workers=8")
    parser.add_argument("--backend", choices=BACKENDS, default="embedded",
                        help="where AWS calls go (default: embedded moto server)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench_p = sub.add_parser("bench", help="benchmarks that print figures (never pass/fail)")
    bench = bench_p.add_subparsers(dest="bench", metavar="BENCH")
    bench_p.set_defaults(func=lambda a, c: bench_p.print_help() or 2)
    cfg_p = sub.add_parser("config", help="print the effective fabric config as YAML")
    cfg_p.set_defaults(func=_show_config)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or (exc.name and name.startswith(exc.name + ".")):
                continue
            raise
        module.register(sub, bench)
    return parser


def _show_config(args: argparse.Namespace, ctx: Context) -> int:
    print(yaml.safe_dump(ctx.config().model_dump(mode="json"), sort_keys=False), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace, Context], int | None] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args, Context(args)) or 0)
    except (CliError, ConfigError, BackendError) as exc:
        print(f"comfyfab: {exc}", file=sys.stderr)
        return getattr(exc, "code", 2)
    except KeyboardInterrupt:
        print("comfyfab: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: a message, not a traceback
        if args.debug:
            raise
        print(f"comfyfab: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
