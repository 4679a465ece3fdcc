"""``comfyfab scan`` and ``comfyfab bench phi``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table

from comfyfab.cloud import BACKENDS, connect

from .collect import CollectionError
from .phi_bench import STRUCTURED, corpus, measure
from .report import print_summary, write_reports
from .scan import scan

EXIT_FAILED = 1


def register(sub, bench) -> None:
    p = sub.add_parser("scan", help="check a deployed fabric against SOC2, HIPAA and the architecture's controls",
                       description="Collect the account once, run every compliance check, print a summary and "
                                   "write JSON, Markdown, HTML and JUnit XML. Exit code 1 when a check fails.")
    # SUPPRESS: only override the top-level --backend when given here.
    p.add_argument("--backend", choices=BACKENDS, default=argparse.SUPPRESS,
                   help="where AWS calls go (default: the top-level --backend, embedded)")
    p.add_argument("--out", type=Path, default=Path("scan-report"), help="directory for the reports")
    p.add_argument("--provision", action="store_true",
                   help="provision the fabric first (the embedded account starts empty)")
    p.set_defaults(func=_scan)

    b = bench.add_parser("phi", help="recall and false-positive rate of the PHI gate on a synthetic corpus")
    b.add_argument("--per-entity", type=int, default=500, help="positive samples per entity")
    b.add_argument("--benign", type=int, default=5000, help="benign look-alike samples")
    b.add_argument("--seed", type=int, default=7)
    b.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    b.set_defaults(func=_bench_phi)


def _scan(args: argparse.Namespace, ctx) -> int:
    from comfyfab.cli import CliError

    cfg = ctx.config()
    cloud, server = connect(ctx.backend(getattr(args, "backend", None)))
    console = Console()
    try:
        if args.provision:
            from pipeline.provision import provision

            console.print(f"provisioning {cfg.name} on {cloud.describe()} ...")
            provision(cloud, cfg)
        try:
            report = scan(cloud, cfg)
        except (CollectionError, ClientError, BotoCoreError) as exc:
            raise CliError(f"scan could not read the account at {cloud.describe()}: {exc}") from None
    finally:
        if server is not None:
            server.stop()
    print_summary(report, console)
    paths = write_reports(report, args.out, cfg)
    console.print("reports: " + ", ".join(str(p) for p in paths.values()))
    if server is not None and not args.provision and report.failed_checks:
        console.print("[yellow]the embedded account starts empty: add --provision to scan a provisioned fabric[/]")
    return EXIT_FAILED if report.failed_checks else 0


def _bench_phi(args: argparse.Namespace, ctx) -> int:
    m = measure(corpus(args.per_entity, args.benign, args.seed))
    t = Table(title=f"PHI gate on a synthetic corpus (seed {args.seed})")
    for col in ("entity", "kind", "samples", "recall"):
        t.add_column(col)
    for entity, recall in m.recall.items():
        t.add_row(entity, "structured" if entity in STRUCTURED else "contextual", str(m.positives[entity]),
                  f"{recall:.2%}")
    console = Console()
    console.print(t)
    console.print(f"structured-identifier recall: {m.structured_recall:.2%}  contextual recall: "
                  f"{m.contextual_recall:.2%}")
    console.print(f"false-positive rate: {m.false_positive_rate:.2%} ({m.false_positives}/{m.benign} benign prompts)"
                  + (f" by entity {m.false_positive_entities}" if m.false_positive_entities else ""))
    if m.scan_cost:
        c = m.scan_cost
        console.print(f"scan cost per txt2img job ({c.strings_per_job} strings, {c.jobs} jobs): median "
                      f"{c.median_ms:.2f} ms, p95 {c.p95_ms:.2f} ms; {c.median_cold_ms:.2f} ms with the cache empty")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"seed": args.seed, **m.as_dict()}, indent=2) + "\n")
    return 0
