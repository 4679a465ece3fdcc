"""``comfyfab replay``: verdicts, the gate's exit code, saved results, and clear errors."""
from __future__ import annotations

import json

import yaml

from comfyfab.cli import main
from comfyfab.config import load_config


def test_list_names_the_library(capsys):
    assert main(["replay", "--list"]) == 0
    out = capsys.readouterr().out
    assert "monday-morning-burst" in out and "steady-40k" in out


def test_default_passes_and_saves_config_results_and_plots(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["replay", "poison-pill-workflow", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "PASS  dlq == 3" in text and "PASS: poison-pill-workflow" in text
    run = out / "sim"
    for name in ("config.yaml", "scenario.yaml", "jobs.csv", "timeline.csv", "result.json", "latency.png",
                 "queue_depth.png", "workers.png"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "result.json").read_text())
    assert saved["passed"] and saved["metrics"]["dlq"] == 3
    assert yaml.safe_load((run / "config.yaml").read_text())["tenants"][0]["id"] == "acme-health"
    assert (run / "latency.png").read_bytes().startswith(b"\x89PNG")


def test_the_gate_fails_a_candidate_capped_at_8_workers(tmp_path, capsys):
    cand = tmp_path / "candidate.yaml"
    cfg = load_config().model_dump(mode="json")
    cfg["fleet"]["autoscaling"]["max_workers"] = 8
    cand.write_text(yaml.safe_dump(cfg))
    rc = main(["replay", "monday-morning-burst", "--candidate", str(cand), "--out", str(tmp_path / "g"), "--no-plots"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "gate: FAIL (candidate breaks: standard.p95 <= 30s)" in out
    line = next(x for x in out.splitlines() if x.startswith("standard.p95 "))
    assert "PASS  FAIL" in line
    assert (tmp_path / "g" / "report.txt").read_text().count("standard.p95") >= 1
    assert (tmp_path / "g" / "candidate-sim" / "config.yaml").is_file()


def test_the_gate_passes_an_equivalent_candidate(tmp_path, capsys):
    rc = main(["replay", "steady-40k", "--candidate-set", "fleet.autoscaling.idle_stop_s=240",
               "--out", str(tmp_path), "--no-plots"])
    assert rc == 0 and "gate: PASS" in capsys.readouterr().out


def test_bad_inputs_are_one_message_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "duration_h": 1, "traffic": {"per_day": 10},
                                   "assert": ["realtime.p95 <= soon"]}))
    cases = [
        (["replay", str(bad)], "bad.yaml is not a valid scenario"),
        (["replay", "no-such-scenario"], "no scenario file or library scenario named 'no-such-scenario'"),
        (["replay", "steady-40k", "--baseline", str(tmp_path / "nope.yaml"), "--candidate-set", "x=1"],
         "config file not found"),
        (["replay", "steady-40k", "--candidate-set", "fleet.autoscaling.bogus=1"], "unknown config path"),
        (["replay", "steady-40k", "--baseline", str(bad)], "--baseline needs --candidate"),
        (["replay"], "name a scenario"),
    ]
    for argv, message in cases:
        assert main(argv + ["--out", str(tmp_path / "o"), "--no-plots"]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)


def test_live_needs_a_live_section_or_explicit_pacing(tmp_path, capsys):
    assert main(["replay", "monday-morning-burst", "--mode", "live", "--out", str(tmp_path)]) == 2
    assert "has no live section" in capsys.readouterr().err


def test_a_live_replay_faster_than_the_stack_is_refused(tmp_path, capsys):
    rc = main(["replay", "monday-morning-burst", "--mode", "live", "--time-scale", "60", "--window-h", "0.5",
               "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "jobs per wall second" in err and "Traceback" not in err
