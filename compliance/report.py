"""Writing a scan down: a rich summary for the terminal, JSON, Markdown and HTML for people, JUnit XML for CI.

Every writer reads only a :class:`~compliance.scan.ScanReport` (and the
effective config, saved beside the results so a scan can be reproduced).
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from comfyfab.config import FabricConfig

from .catalog import Catalog, load_catalog
from .checks import Status
from .scan import ScanReport

STYLE = {Status.PASS: "green", Status.FAIL: "bold red", Status.UNVERIFIED: "yellow"}
FILES = {"json": "scan.json", "markdown": "scan.md", "html": "scan.html", "junit": "junit.xml",
         "config": "config.yaml"}


def print_summary(report: ScanReport, console: Console | None = None) -> None:
    console = console or Console()
    t = Table(title=f"comfyfab scan - {report.meta.get('backend', '')}")
    for col in ("framework", "control", "title", "status", "failing checks"):
        t.add_column(col)
    for c in report.controls:
        t.add_row(c.framework, c.requirement, c.title, f"[{STYLE[c.status]}]{c.status.value}[/]",
                  ", ".join(c.failing))
    console.print(t)
    bad = [r for r in report.results if r.status is not Status.PASS]
    if bad:
        # One row per check; every resource and its evidence are in the JSON/Markdown/HTML reports.
        f = Table(title="checks not passing")
        for col in ("check", "status", "resources", "first finding"):
            f.add_column(col)
        for cid in sorted({r.check_id for r in bad}):
            mine = [r for r in bad if r.check_id == cid]
            status = report.check_status[cid]
            f.add_row(cid, f"[{STYLE[status]}]{status.value}[/]", str(len(mine)), mine[0].message)
        console.print(f)
    counts = {s: sum(1 for v in report.check_status.values() if v is s) for s in Status}
    console.print(f"checks: {counts[Status.PASS]} pass, {counts[Status.FAIL]} fail, "
                  f"{counts[Status.UNVERIFIED]} unverified; controls failing: {len(report.failed_controls)}")


def to_json(report: ScanReport) -> str:
    return json.dumps(report.as_dict(), indent=2, default=str) + "\n"


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: ScanReport, catalog: Catalog | None = None) -> str:
    catalog = catalog or load_catalog()
    m = report.meta
    lines = [f"# comfyfab compliance scan: {m.get('fabric', '')}", "",
             f"- backend: {m.get('backend', '')}", f"- account: {m.get('account', '')} ({m.get('region', '')})",
             f"- scanned at: {m.get('scanned_at', '')}", f"- config digest: {m.get('config_digest', '')}",
             f"- result: **{'PASS' if report.ok else 'FAIL'}** ({len(report.failed_checks)} failing checks, "
             f"{len(report.unverified_checks)} unverified)", "", "## Controls", "",
             "| framework | control | title | status | failing checks |", "|---|---|---|---|---|"]
    lines += [f"| {c.framework} | {c.requirement} | {_md_cell(c.title)} | {c.status.value} | {', '.join(c.failing)} |"
              for c in report.controls]
    lines += ["", "## Checks", "", "| check | severity | status | resources | remediation |", "|---|---|---|---|---|"]
    for cid, status in sorted(report.check_status.items()):
        meta = catalog.checks[cid].meta
        n = sum(1 for r in report.results if r.check_id == cid)
        fix = meta.remediation if status is not Status.PASS else ""
        lines.append(f"| {cid} | {meta.severity} | {status.value} | {n} | {_md_cell(fix)} |")
    lines += ["", "## Findings", "", "| check | resource | status | message | evidence |", "|---|---|---|---|---|"]
    lines += [f"| {r.check_id} | {_md_cell(r.resource)} | {r.status.value} | {_md_cell(r.message)} | "
              f"`{_md_cell(json.dumps(dict(r.evidence), default=str))}` |" for r in report.results]
    return "\n".join(lines) + "\n"


def to_html(report: ScanReport) -> str:
    e = html.escape
    colour = {Status.PASS: "#1a7f37", Status.FAIL: "#cf222e", Status.UNVERIFIED: "#9a6700"}

    def row(cells: list[str], status: Status) -> str:
        tds = "".join(f"<td>{c}</td>" for c in cells)
        return f'<tr style="color:{colour[status]}">{tds}</tr>'

    controls = "".join(row([e(c.framework), e(c.requirement), e(c.title), c.status.value, e(", ".join(c.failing))],
                           c.status) for c in report.controls)
    findings = "".join(row([e(r.check_id), e(r.resource), r.status.value, e(r.message),
                            f"<code>{e(json.dumps(dict(r.evidence), default=str))}</code>"], r.status)
                       for r in report.results)
    m = report.meta
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>comfyfab scan</title>"
            f"<style>body{{font-family:sans-serif}}td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}"
            f"table{{border-collapse:collapse}}</style></head><body>"
            f"<h1>comfyfab compliance scan: {e(str(m.get('fabric', '')))}</h1>"
            f"<p>{e(str(m.get('backend', '')))} - account {e(str(m.get('account', '')))} - "
            f"{e(str(m.get('scanned_at', '')))} - <b>{'PASS' if report.ok else 'FAIL'}</b></p>"
            f"<h2>Controls</h2><table><tr><th>framework</th><th>control</th><th>title</th><th>status</th>"
            f"<th>failing checks</th></tr>{controls}</table>"
            f"<h2>Findings</h2><table><tr><th>check</th><th>resource</th><th>status</th><th>message</th>"
            f"<th>evidence</th></tr>{findings}</table></body></html>\n")


def to_junit(report: ScanReport, catalog: Catalog | None = None) -> str:
    """One test case per check (failing resources as the failure text, UNVERIFIED as skipped)."""
    catalog = catalog or load_catalog()
    suites = ET.Element("testsuites", name="comfyfab-scan")
    suite = ET.SubElement(suites, "testsuite", name="comfyfab.compliance",
                          tests=str(len(report.check_status)), failures=str(len(report.failed_checks)),
                          skipped=str(len(report.unverified_checks)), errors="0")
    for cid, status in sorted(report.check_status.items()):
        meta = catalog.checks[cid].meta
        case = ET.SubElement(suite, "testcase", classname=f"compliance.{meta.service}", name=cid)
        mine = [r for r in report.results if r.check_id == cid and r.status is status]
        text = "\n".join(f"{r.resource}: {r.message}" for r in mine)
        if status is Status.FAIL:
            ET.SubElement(case, "failure", message=f"{meta.title}: {len(mine)} resource(s) fail",
                          type=meta.severity).text = text + f"\nremediation: {meta.remediation}"
        elif status is Status.UNVERIFIED:
            ET.SubElement(case, "skipped", message=text or "nothing to judge")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_reports(report: ScanReport, out_dir: Path, cfg: FabricConfig) -> dict[str, Path]:
    """Write every format (and the effective config) into ``out_dir``; returns the paths by format."""
    out_dir.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog()
    texts = {"json": to_json(report), "markdown": to_markdown(report, catalog), "html": to_html(report),
             "junit": to_junit(report, catalog),
             "config": yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)}
    paths = {}
    for kind, text in texts.items():
        p = out_dir / FILES[kind]
        p.write_text(text)
        paths[kind] = p
    return paths
