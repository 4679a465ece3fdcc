"""The pytest plugin: a team's CI gets the same verdicts and gate as ``comfyfab replay``."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scenarios.pytest_plugin import ReplayFailed, Replayer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def replayer(fabric_config):
    return Replayer(fabric_config)


def test_check_returns_the_result_when_slos_hold(replayer):
    r = replayer.check("poison-pill-workflow")
    assert r.passed and r.metrics["dlq"] == 3


def test_check_fails_with_the_verdict_table(replayer):
    with pytest.raises(ReplayFailed) as err:
        replayer.check("monday-morning-burst", overrides={"fleet.autoscaling.max_workers": 8})
    assert "FAIL standard.p95 <= 30s" in str(err.value) and "PASS realtime.p95 <= 2s" in str(err.value)


def test_gate_fails_a_worse_candidate_and_passes_an_equal_one(replayer, tmp_path):
    with pytest.raises(ReplayFailed, match="gate: FAIL"):
        replayer.gate("monday-morning-burst", candidate={"fleet.autoscaling.max_workers": 8})
    keep = Replayer(replayer.config, out=tmp_path)
    report = keep.gate("steady-40k", candidate={"fleet.autoscaling.idle_stop_s": 240})
    assert report.passed
    assert (tmp_path / "steady-40k" / "candidate-sim" / "result.json").is_file()


def test_a_team_enables_the_fixture_with_dash_p(tmp_path):
    (tmp_path / "test_team.py").write_text(textwrap.dedent("""
        def test_burst_holds(replay):
            assert replay.check("steady-40k").passed

        def test_cap_is_caught(replay):
            replay.gate("monday-morning-burst", candidate={"fleet.autoscaling.max_workers": 8})
    """))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "scenarios.pytest_plugin", "-p",
                           "no:cacheprovider", str(tmp_path / "test_team.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout + proc.stderr
    assert "candidate breaks: standard.p95 <= 30s" in proc.stdout
