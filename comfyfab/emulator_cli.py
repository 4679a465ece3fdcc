"""``comfyfab emulator up|down|status``: the command line over :class:`comfyfab.emulator.LocalEmulators`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .cloud import BackendSpec
from .emulator import DEFAULT_LOCK_FILE, DEFAULT_STATE_DIR, LOCALSTACK_VERSION, LocalEmulators


def _emulators(args: argparse.Namespace, ctx: Any) -> LocalEmulators:
    return LocalEmulators(args.state_dir, lock_file=args.lock_file, gateway_port=args.port,
                          dynamodb_port=args.dynamodb_port, region=ctx.config().region, python=args.python,
                          log=lambda msg: print(f"comfyfab: {msg}", file=sys.stderr))


def _exports(spec: BackendSpec) -> str:
    pairs = [("AWS_ENDPOINT_URL", spec.endpoint_url)] + [
        (f"AWS_ENDPOINT_URL_{svc.upper()}", url) for svc, url in sorted(spec.service_endpoints.items())]
    return "\n".join(f"export {k}={v}" for k, v in pairs)


def _cmd_up(args: argparse.Namespace, ctx: Any) -> int:
    emu = _emulators(args, ctx)
    spec = emu.up()
    took = ", ".join(f"{k} {v:.1f} s" for k, v in emu.timings.items())
    print(f"comfyfab: LocalStack {LOCALSTACK_VERSION} at {spec.endpoint_url}, DynamoDB Local at "
          f"{spec.service_endpoints['dynamodb']}; logs in {emu.logs}" + (f" ({took})" if took else ""), file=sys.stderr)
    print(_exports(spec))  # eval "$(comfyfab emulator up)" points the shell's AWS tools at them
    return 0


def _cmd_down(args: argparse.Namespace, ctx: Any) -> int:
    stopped = _emulators(args, ctx).down()
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _cmd_status(args: argparse.Namespace, ctx: Any) -> int:
    st = _emulators(args, ctx).status()
    if not st.processes:
        print(f"not running (state folder {st.state_dir})")
        return 3
    for p in st.processes:
        rss = p.rss_bytes()
        mem = f", {rss / 2**20:.0f} MiB resident" if rss else ""
        print(f"{p.name}: {'running' if st.alive[p.name] else 'DEAD'} pid {p.pid} at {p.url}{mem}; log {p.log}")
    if st.health:
        up = sorted(s for s, v in st.health.get("services", {}).items() if v in ("available", "running"))
        print(f"localstack {st.health.get('version')}: {', '.join(up)}")
    return 0 if st.running else 3


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["localstack"], default="localstack",
                   help="which local emulators (only localstack: LocalStack + DynamoDB Local)")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                   help=f"venv, npm package, logs and pid file (default: {DEFAULT_STATE_DIR})")
    p.add_argument("--lock-file", type=Path, default=DEFAULT_LOCK_FILE, help="LocalStack's pinned requirements")
    p.add_argument("--port", type=int, default=4566, help="LocalStack gateway port on 127.0.0.1 (0: a free one)")
    p.add_argument("--dynamodb-port", type=int, default=8000, help="DynamoDB Local port (0: a free one)")
    p.add_argument("--python", default=None, help="a Python 3.13 interpreter (default: found on PATH or pyenv)")


def register(sub: Any, bench: Any) -> None:
    emu = sub.add_parser("emulator", help="start/stop LocalStack and DynamoDB Local on this machine (no Docker)")
    cmds = emu.add_subparsers(dest="emulator_command", metavar="ACTION")
    emu.set_defaults(func=lambda a, c: emu.print_help() or 2)
    for name, handler, text in (
            ("up", _cmd_up, "install once, start, wait for health; prints AWS_ENDPOINT_URL exports"),
            ("down", _cmd_down, "stop the emulators started from this state folder"),
            ("status", _cmd_status, "processes, memory and LocalStack health (exit 3 when not running)")):
        p = cmds.add_parser(name, help=text)
        _add_common(p)
        p.set_defaults(func=handler)
