"""Scenario files: the library validates into the fabric; bad files fail with a message naming the field."""
from __future__ import annotations

import pytest
import yaml
from hypothesis import given, strategies as st

from scenarios.assertions import parse_assertion
from scenarios.errors import AssertionSpecError, ScenarioFileError
from scenarios.loader import library, load_scenario, parse_scenario
from scenarios.schema import BlueGreen, Scenario
from sim.workload import OFFICE_HOURS, WorkloadSpec

SHIPPED = ["blue-green-peak", "monday-morning-burst", "poison-pill-workflow", "regional-failover",
           "spot-storm-batch", "steady-40k", "tenant-onboarding"]


def minimal(**extra):
    return {"name": "tiny", "duration_h": 1, "traffic": {"per_day": 1000}, **extra}


def test_the_library_ships_the_seven_scenarios():
    assert sorted(library()) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_each_library_scenario_validates_into_the_default_fabric(name, fabric_config):
    s = load_scenario(name)
    cfg = s.effective_config(fabric_config)
    assert s.checks, "every shipped scenario asserts something"
    if s.tenants:
        assert [t.id for t in cfg.tenants] == list(s.tenants)
    w = s.workload(cfg)
    assert isinstance(w, WorkloadSpec) and w.expected_jobs() > 100


def test_overrides_validate_into_the_fabric_config(fabric_config):
    s = parse_scenario(minimal(config={"fleet.autoscaling.max_workers": 8, "tenants.initech-legal.max_workers": 3}),
                       "t.yaml")
    cfg = s.effective_config(fabric_config)
    assert cfg.fleet.autoscaling.max_workers == 8 and cfg.tenant_max_workers("initech-legal") == 3
    with pytest.raises(ScenarioFileError, match="unknown config path 'fleet.autoscaling.nope'"):
        parse_scenario(minimal(config={"fleet.autoscaling.nope": 1}), "t.yaml").effective_config(fabric_config)
    with pytest.raises(ScenarioFileError, match="max_workers"):
        parse_scenario(minimal(config={"fleet.autoscaling.max_workers": 0}), "t.yaml").effective_config(fabric_config)


def test_tenant_subset_and_unknown_tenants(fabric_config):
    s = parse_scenario(minimal(tenants=["globex-retail"]), "t.yaml")
    assert [t.id for t in s.effective_config(fabric_config).tenants] == ["globex-retail"]
    with pytest.raises(ScenarioFileError, match="not in the config"):
        parse_scenario(minimal(tenants=["nobody-here"]), "t.yaml").effective_config(fabric_config)
    bad_fault = minimal(tenants=["globex-retail"], faults=[{"kind": "worker_crash", "at_h": 0, "tenant": "acme-health"}])
    with pytest.raises(ScenarioFileError, match="acme-health"):
        parse_scenario(bad_fault, "t.yaml").effective_config(fabric_config)


@pytest.mark.parametrize("data, field", [
    (minimal(traffic={}), "traffic"),
    (minimal(traffic={"per_day": 10, "trace": "x.csv"}), "traffic"),
    (minimal(traffic={"per_day": 10, "mix": {"realtime": 0.5}}), "traffic.mix"),
    (minimal(traffic={"per_day": 10, "diurnal": [1, 2, 3]}), "traffic.diurnal"),
    (minimal(faults=[{"kind": "meteor", "at_h": 1}]), "faults.0"),
    (minimal(faults=[{"kind": "spot_storm", "at_h": 1}]), "faults.0.spot_storm.duration_h"),
    (minimal(**{"assert": ["realtime.p95 <= fast"]}), "assert"),
    (minimal(**{"assert": ["realtime.p42 <= 2s"]}), "assert"),
    (minimal(duration_h=0), "duration_h"),
    (minimal(name="Not A Slug"), "name"),
    (minimal(surprise=1), "surprise"),
])
def test_bad_scenarios_name_the_field(data, field):
    with pytest.raises(ScenarioFileError) as err:
        parse_scenario(data, "bad.yaml")
    assert "bad.yaml is not a valid scenario" in str(err.value) and f"  {field}" in str(err.value)


def test_files_that_are_not_scenarios(tmp_path):
    with pytest.raises(ScenarioFileError, match="no scenario file or library scenario named 'nope'"):
        load_scenario("nope")
    with pytest.raises(ScenarioFileError, match="not found"):
        load_scenario(tmp_path / "missing.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioFileError, match="not valid YAML"):
        load_scenario(p)
    p.write_text("- a list\n")
    with pytest.raises(ScenarioFileError, match="mapping at the top level"):
        load_scenario(p)


def test_a_file_round_trips_and_the_trace_path_is_relative_to_it(tmp_path, fabric_config):
    (tmp_path / "t.csv").write_text("timestamp,tenant,class,resolution,steps,model,seed\n"
                                    "0,acme-health,realtime,1024,20,sdxl,1\n5,acme-health,batch,1024,20,sdxl,2\n")
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(minimal(traffic={"trace": "t.csv"},
                                        faults=[{"kind": "blue_green", "at_h": 0.1, "version": "v2"}])))
    s = load_scenario(p)
    assert isinstance(s.faults[0], BlueGreen)
    df = s.workload(fabric_config)
    assert list(df["class"]) == ["realtime", "batch"]
    again = Scenario.model_validate({**s.model_dump(by_alias=True), "base_dir": s.base_dir})
    assert again == s


def test_start_hour_rotates_the_diurnal_profile():
    s = parse_scenario(minimal(traffic={"per_day": 10, "diurnal": "office", "start_hour": 9}), "t.yaml")
    assert s.traffic.profile()[0] == OFFICE_HOURS[9] and s.traffic.profile()[23] == OFFICE_HOURS[8]
    assert parse_scenario(minimal(), "t.yaml").traffic.profile() is None


@pytest.mark.parametrize("text, key, op, limit", [
    ("realtime.p95 <= 2s", "realtime.p95", "<=", 2.0),
    ("lost == 0", "lost", "==", 0.0),
    ("dlq<=5", "dlq", "<=", 5.0),
    ("batch.p95 <= 1h", "batch.p95", "<=", 3600.0),
    ("standard.wait_p95 < 250ms", "standard.wait_p95", "<", 0.25),
    ("acme-health:realtime.slo_attainment >= 95%", "acme-health:realtime.slo_attainment", ">=", 0.95),
    ("cutover_s <= 1.5min", "cutover_s", "<=", 90.0),
])
def test_assertions_parse(text, key, op, limit):
    a = parse_assertion(text)
    assert (a.key, a.op) == (key, op) and a.limit == pytest.approx(limit)


@pytest.mark.parametrize("text", ["p95 <= 2s", "realtime.p95 => 2", "realtime.p95 <= 2 parsecs", "lost", "nope.p95 <= 1"])
def test_bad_assertions(text):
    with pytest.raises(AssertionSpecError):
        parse_assertion(text)


@given(value=st.floats(-1e6, 1e6), limit=st.floats(-1e6, 1e6), op=st.sampled_from(["<=", "<", ">=", ">", "==", "!="]))
def test_a_verdict_is_the_comparison(value, limit, op):
    a = parse_assertion(f"lost {op} {abs(limit):f}")
    v = a.judge({"lost": value})
    expect = {"<=": value <= a.limit, "<": value < a.limit, ">=": value >= a.limit, ">": value > a.limit,
              "==": value == a.limit, "!=": value != a.limit}[op]
    assert v.passed is expect and v.value == value


def test_a_missing_or_undefined_metric_fails_with_a_reason():
    a = parse_assertion("realtime.p95 <= 2s")
    assert not a.judge({}).passed and "no metric" in a.judge({}).reason
    v = a.judge({"realtime.p95": float("nan")})
    assert not v.passed and "undefined" in v.reason
