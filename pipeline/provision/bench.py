"""How long provisioning takes on the embedded backend (a benchmark, not a test).

    python -m pipeline.provision.bench --tenants 3 --repeats 3

Each repeat starts from an empty account: first run (creates everything),
second run (creates nothing, converges), then discovery.  moto builds its
EC2 backend on the first EC2 request after the server starts (seconds, once
per process); that is done before timing and reported on its own.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

from comfyfab.cloud import Cloud, EmbeddedAws
from comfyfab.config import FabricConfig, load_config

from .fabric import discover, provision

SERVICES = ("sts", "kms", "s3", "sqs", "dynamodb", "ec2", "iam", "logs", "sns", "cloudwatch")


@dataclass(frozen=True)
class Timing:
    """One repeat: seconds and API calls of the first run, the second run and discovery."""

    first_s: float
    first_calls: int
    second_s: float
    second_calls: int
    discover_s: float
    discover_calls: int


def _counter(cloud: Cloud) -> list[int]:
    count = [0]

    def bump(**_: object) -> None:
        count[0] += 1

    for s in SERVICES:
        cloud.client(s).meta.events.register("after-call", bump)
    return count


def _timed(fn, count: list[int]) -> tuple[float, int]:
    c0, t0 = count[0], time.perf_counter()
    fn()
    return time.perf_counter() - t0, count[0] - c0


def measure(cfg: FabricConfig, repeats: int = 3) -> tuple[float, list[Timing]]:
    """(moto EC2 warm-up seconds, one :class:`Timing` per repeat)."""
    out = []
    with EmbeddedAws(cfg.region) as aws:
        t0 = time.perf_counter()
        aws.cloud().client("ec2").describe_vpcs()
        warmup = time.perf_counter() - t0
        for _ in range(repeats):
            aws.reset()
            cloud = aws.cloud()
            cloud.client("ec2").describe_vpcs()
            count = _counter(cloud)
            first = _timed(lambda: provision(cloud, cfg), count)
            second = _timed(lambda: provision(cloud, cfg), count)
            disc = _timed(lambda: discover(cloud, cfg), count)
            out.append(Timing(first[0], first[1], second[0], second[1], disc[0], disc[1]))
    return warmup, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.provision.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="fabric YAML (default: the shipped fabric.yaml)")
    ap.add_argument("--tenants", type=int, default=None, help="use only the first N tenants of the config")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    if args.tenants is not None:
        data = cfg.model_dump(mode="json")
        data["tenants"] = data["tenants"][: args.tenants]
        cfg = FabricConfig.model_validate(data)
    warmup, runs = measure(cfg, args.repeats)
    print(f"embedded backend, {len(cfg.tenants)} tenant(s), {len(runs)} repeat(s); "
          f"moto EC2 warm-up (once per process, not counted) {warmup:.2f} s")
    for label, s_attr, c_attr in (("first run", "first_s", "first_calls"), ("second run", "second_s", "second_calls"),
                                  ("discover", "discover_s", "discover_calls")):
        secs = [getattr(r, s_attr) for r in runs]
        print(f"  {label:10s} median {statistics.median(secs):6.2f} s  (min {min(secs):.2f}, max {max(secs):.2f})  "
              f"{getattr(runs[0], c_attr)} API calls")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
