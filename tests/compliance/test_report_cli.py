"""Report formats and the ``comfyfab scan`` / ``comfyfab bench phi`` commands."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from comfyfab.cli import Context, build_parser, main
from comfyfab.cloud import BackendSpec
from compliance import cli as compliance_cli
from compliance.checks import Status
from compliance.collect import CollectionError
from compliance.inventory import Bucket, Inventory, User
from compliance.report import to_html, to_junit, to_markdown, write_reports
from compliance.scan import evaluate


@pytest.fixture(scope="module")
def empty_report(fabric_config):
    return evaluate(Inventory(account_id="123456789012", region="us-east-1", backend="aws"), fabric_config,
                    meta={"fabric": "comfyfab", "backend": "test"})


def test_every_format_is_written_and_readable(empty_report, fabric_config, tmp_path):
    paths = write_reports(empty_report, tmp_path, fabric_config)
    data = json.loads(paths["json"].read_text())
    assert data["checks"] == {c: s.value for c, s in empty_report.check_status.items()}
    assert set(data["summary"]["failed_controls"]) == set(empty_report.failed_controls)
    suite = ET.parse(paths["junit"]).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(empty_report.check_status)
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    skipped = {c.get("name") for c in cases if c.find("skipped") is not None}
    assert failed == set(empty_report.failed_checks) and skipped == set(empty_report.unverified_checks)
    assert int(suite.get("failures")) == len(failed)
    assert "| soc2 | CC6.1 |" in paths["markdown"].read_text()
    assert paths["html"].read_text().startswith("<!doctype html>")
    assert "tenants:" in paths["config"].read_text()


def test_html_markdown_and_junit_escape_what_the_account_says(fabric_config):
    hostile = "<script>alert(1)</script>|x"
    tenant = fabric_config.tenants[0].id
    inv = Inventory(account_id="123456789012", region="us-east-1", backend="aws",
                    users=(User(name=hostile, active_keys=("AKIAFAKE",)),),
                    buckets=(Bucket(name=fabric_config.bucket_name(tenant), tenant=tenant, versioning=hostile),))
    report = evaluate(inv, fabric_config)
    assert hostile in json.dumps(report.as_dict())
    page = to_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<script>alert(1)</script>\\|x" in to_markdown(report)
    ET.fromstring(to_junit(report).split("\n", 1)[1])  # still well-formed XML


def test_scan_command_is_registered_with_its_options():
    args = build_parser().parse_args(["scan", "--backend", "localstack", "--out", "x", "--provision"])
    assert (args.backend, str(args.out), args.provision) == ("localstack", "x", True)
    assert build_parser().parse_args(["--backend", "aws", "scan"]).backend == "aws"


SPEC = BackendSpec(kind="localstack", endpoint_url="http://127.0.0.1:9")   # never called: scan is stubbed


@pytest.fixture
def offline_scan(monkeypatch, fabric_config):
    """The command's wiring without AWS: scan() judges an empty inventory (scan itself is tested on a fabric)."""
    calls = []

    def fake_scan(cloud, cfg):
        calls.append((cloud.spec, cfg.name))
        inv = Inventory(account_id="123456789012", region=cfg.region, backend=cloud.spec.kind)
        return evaluate(inv, cfg, meta={"fabric": cfg.name, "backend": cloud.describe()})
    monkeypatch.setattr(compliance_cli, "scan", fake_scan)
    monkeypatch.setattr(Context, "backend", lambda self, kind=None: SPEC)
    return calls


def test_scan_exits_non_zero_on_a_failing_control_and_writes_reports(offline_scan, tmp_path, capsys):
    args = build_parser().parse_args(["scan", "--out", str(tmp_path)])
    assert compliance_cli._scan(args, Context(args)) == compliance_cli.EXIT_FAILED
    data = json.loads((tmp_path / "scan.json").read_text())
    assert "soc2:CC6.1" in data["summary"]["failed_controls"]
    assert data["checks"]["config_tls_minimum"] == Status.PASS.value
    assert "CC6.1" in capsys.readouterr().out
    assert offline_scan == [(SPEC, "comfyfab")]


def test_scan_exits_zero_when_nothing_fails(offline_scan, monkeypatch, tmp_path):
    import compliance.scan as scan_mod

    monkeypatch.setattr(scan_mod.ScanReport, "failed_checks", property(lambda self: []))
    args = build_parser().parse_args(["scan", "--out", str(tmp_path)])
    assert compliance_cli._scan(args, Context(args)) == 0


def test_scan_provision_flag_provisions_the_same_cloud_and_config_first(offline_scan, monkeypatch, tmp_path):
    import pipeline.provision

    seen = []
    monkeypatch.setattr(pipeline.provision, "provision", lambda c, cfg, *a, **k: seen.append((c.spec, cfg.name)))
    args = build_parser().parse_args(["--set", "name=otherfab", "scan", "--provision", "--out", str(tmp_path)])
    compliance_cli._scan(args, Context(args))
    assert seen == [(SPEC, "otherfab")] and offline_scan == [(SPEC, "otherfab")]


@pytest.mark.parametrize("error", [
    CollectionError("s3:GetBucketPolicy b: AccessDenied"),
    ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListBuckets"),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:9/ AccessDenied"),
])
def test_unreadable_account_is_a_clean_cli_error(monkeypatch, tmp_path, error):
    from comfyfab.cli import CliError

    def broken(cloud, cfg):
        raise error
    monkeypatch.setattr(compliance_cli, "scan", broken)
    monkeypatch.setattr(Context, "backend", lambda self, kind=None: SPEC)
    args = build_parser().parse_args(["scan", "--out", str(tmp_path)])
    with pytest.raises(CliError, match="AccessDenied"):
        compliance_cli._scan(args, Context(args))


def test_bench_phi_prints_and_saves_figures(tmp_path, capsys):
    out = tmp_path / "phi.json"
    assert main(["bench", "phi", "--per-entity", "20", "--benign", "100", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert set(figures) >= {"recall", "structured_recall", "false_positive_rate"}
    assert "false-positive rate" in capsys.readouterr().out
