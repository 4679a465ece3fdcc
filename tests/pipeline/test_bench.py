"""``comfyfab bench pipeline`` (and pickup, standin, queues) at a tiny scale: each runs, prints its figures,
and refuses bad counts with a message; the pipeline bench plots its sweep.  (They are benchmarks: nothing
here judges a figure.)"""

from __future__ import annotations

import re

import pytest

import comfyfab.cli as comfy_cli
from pipeline.bench import cpu_ceiling, one_process_ceiling, plot_sweep, where_the_time_went
from pipeline.loadgen import server_timing


def test_bench_prints_every_figure_and_plots_the_rate_sweep(tmp_path, capsys):
    rc = comfy_cli.main(["bench", "pipeline", "--clients", "2", "--requests", "6", "--jobs", "6", "--workers", "1",
                         "--rates", "3,6", "--seconds-per-rate", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    text = " ".join(out.split())
    assert re.search(r"closed loop, 6 back-to-back submissions: "
                     r"POST /v1/jobs p50 [\d.]+ ms, p95 [\d.]+ ms, p99 [\d.]+ ms", text)
    for rate in ("3", "6"):  # alone, then while the fleet drains
        assert len(re.findall(rf"open loop, \d+ submissions due at {rate} req/s: .*?p99 [\d.]+ ms", text)) == 2
    assert "router p99 ≤ 40 ms" in text and ", alone: " in text and ", while the fleet drains: " in text
    # each open-loop rate says where its slowest requests spent their time, from the router's Server-Timing
    assert len(re.findall(r"the slowest \d+ of \d+, median ms \(all in brackets\): checks [\d.]+ \([\d.]+\), "
                          r"record write [\d.]+ \([\d.]+\), SQS send .*?outside the router -?[\d.]+", text)) == 4
    assert text.index("jobs/s") < text.index("router alone")  # nothing queued by it touches the other figures
    assert re.search(r"6 jobs accepted → stored in S3 → succeeded in [\d.]+ s: [\d.]+ jobs/s", text)
    assert "CPU per job (ms)" in text
    assert re.search(r"the busiest process, .+?, used [\d.]+ of one core \([\d.]+ ms per job\); .*? caps the "
                     r"run at \d+ jobs/s", text)
    assert re.search(r"all of it: [\d.]+ ms of CPU per job, [\d.]+ of \d+ cores busy; at this CPU per job \d+ "
                     r"cores allow at most \d+ jobs/s", text)
    # each job is one write and one send by the router, then two updates, an upload and a delete by its worker
    requests = re.search(r"AWS requests per job: [\d.]+ \((.*?)\) CPU per AWS request", text)
    assert requests, text
    for op in ("dynamodb PutItem 1.00", "sqs SendMessage 1.00", "dynamodb UpdateItem 2.00",
               "sqs DeleteMessage 1.00", "sqs ReceiveMessage 1.00"):
        assert op in requests.group(1)
    assert float(re.search(r"s3 PUT ([\d.]+)", requests.group(1)).group(1)) >= 1  # and the audit log's archive
    assert re.search(r"CPU per AWS request: the emulator [\d.]+ ms", text)
    assert re.search(r"an AWS SDK call alone costs [\d.]+ ms of CPU here .*? the design's 7 requests per job, "
                     r"client and emulator, cost at least [\d.]+ ms: at most \d+ jobs/s on \d+ cores", text)
    # then the jobs the router-alone phase left queued are drained and timed, all of them
    queued = re.search(r"the fleet drains that backlog: (\d+) queued jobs, 1 workers per tenant, done in [\d.]+ s: "
                       r"[\d.]+ jobs/s", text)
    assert queued and int(queued.group(1)) == 3 + 6  # the router-alone phase: 1 s at 3 req/s, then at 6
    assert text.index("router alone") < text.index("drains that backlog")
    assert (tmp_path / "router_latency.png").stat().st_size > 1000


def test_an_sdk_call_is_timed_on_the_calling_thread_alone():
    from pipeline.bench import client_call_cpu_ms

    ms = client_call_cpu_ms(calls=20)
    assert 0.01 < ms < 100  # a real call was made and timed (the figure itself is the benchmark's)


def test_repeated_end_to_end_runs_are_each_printed_and_summarised(tmp_path, capsys):
    rc = comfy_cli.main(["bench", "pipeline", "--clients", "2", "--requests", "3", "--jobs", "3", "--workers", "1",
                         "--rates", "3", "--seconds-per-rate", "1", "--repeat", "2", "--out", str(tmp_path)])
    text = " ".join(capsys.readouterr().out.split())
    assert rc == 0
    rates = [float(x) for x in re.findall(r"3 jobs accepted → stored in S3 → succeeded in [\d.]+ s: ([\d.]+) jobs/s",
                                          text)]
    assert len(rates) == 2 and "end to end (run 2 of 2)" in text
    summary = re.search(r"end to end over 2 runs: min ([\d.]+), median ([\d.]+), max ([\d.]+) jobs/s", text)
    assert summary
    low, mid, high = (float(x) for x in summary.groups())
    assert (low, high) == (round(min(rates), 1), round(max(rates), 1)) and low <= mid <= high


@pytest.mark.parametrize("bench,flag", [
    *(("pipeline", f) for f in ("--repeat", "--jobs", "--workers", "--clients", "--requests")),
    ("pickup", "--workers"), ("pickup", "--jobs-per-class"), ("standin", "--clients"), ("standin", "--jobs"),
    ("queues", "--calls")])
def test_counts_below_one_are_refused_with_a_message(bench, flag, capsys):
    assert comfy_cli.main(["bench", bench, flag, "0"]) == 2
    assert f"{flag} must be at least 1" in capsys.readouterr().err


def test_pickup_times_a_job_of_each_class_submitted_to_an_idle_pool(capsys):
    assert comfy_cli.main(["bench", "pickup", "--workers", "3", "--jobs-per-class", "1"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "1 jobs per class, one at a time, to acme-health's idle pool of 3 workers (long poll 1 s)" in text
    for cls in ("realtime", "standard", "batch"):
        assert re.search(rf"{cls} accepted → running: median \d+ ms, max \d+ ms \(\d+\)", text), text


def test_standin_prints_its_cpu_per_job_and_the_http_parser(capsys):
    assert comfy_cli.main(["bench", "standin", "--clients", "2", "--jobs", "7"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert re.search(r"7 jobs on the no-op engine from 2 clients, uvicorn parsing HTTP with (httptools|h11)", text)
    assert re.search(r"\d+ jobs/s; CPU per job: the stand-in [\d.]+ ms, its clients [\d.]+ ms", text), text


@pytest.mark.parametrize("bench,flag,bad", [
    *(("pipeline", "--rates", b) for b in ("0,10", "ten", "-5", "")),
    *(("queues", "--depths", b) for b in ("0", "ten", "-5", "", "10,2.5"))])
def test_bad_lists_get_a_message_and_exit_2(bench, flag, bad, capsys):
    try:
        rc = comfy_cli.main(["bench", bench, flag, bad])
    except SystemExit as exc:  # argparse's own exit for a bad value
        rc = exc.code
    assert rc == 2
    assert flag in capsys.readouterr().err


def test_queues_times_each_call_at_each_depth_and_deletes_its_queues(monkeypatch, capsys):
    from comfyfab import cloud as cloud_mod

    with cloud_mod.EmbeddedAws(mode="thread") as aws:  # a server the test can look into afterwards
        monkeypatch.setattr(cloud_mod, "connect", lambda spec: (aws.cloud(), None))
        assert comfy_cli.main(["bench", "queues", "--depths", "3,12", "--calls", "4"]) == 0
        left = aws.cloud().client("sqs").list_queues(QueueNamePrefix="comfyfab-bench-").get("QueueUrls", [])
    text = " ".join(capsys.readouterr().out.split())
    assert "4 calls of each kind per depth on embedded" in text
    for depth in (3, 12):
        assert re.search(rf"{depth} queued: ReceiveMessage [\d.]+ ms, DeleteMessage [\d.]+ ms, "
                         r"SendMessage [\d.]+ ms, GetQueueAttributes [\d.]+ ms", text), text
    assert re.search(r"from 3 to 12 queued: ReceiveMessage x[\d.]+, DeleteMessage x[\d.]+", text), text
    assert left == [], "the bench deletes the queues it made"


def test_the_sweep_plot_is_written(tmp_path):
    path = plot_sweep([(10.0, 12.0, 30.0), (20.0, 15.0, 90.0)], tmp_path / "p" / "router.png",
                      alone=[(10.0, 8.0, 20.0), (20.0, 9.0, 25.0)])
    assert path.exists() and path.stat().st_size > 1000


def test_server_timing_is_read_as_milliseconds_by_name_and_ignores_what_it_cannot_read():
    assert server_timing("checks;dur=1.20, store;dur=4.31, enqueue;dur=3, handler;dur=12.5") == {
        "checks": 1.2, "store": 4.31, "enqueue": 3.0, "handler": 12.5}
    assert server_timing('cache;desc="hit", db;dur=x, total;dur=7') == {"total": 7.0}
    assert server_timing("") == {}


def test_the_slowest_requests_are_compared_with_all_of_them_phase_by_phase():
    fast = {"checks": 1.0, "store": 3.0, "enqueue": 2.0, "handler": 8.0}
    slow = {"checks": 1.0, "store": 20.0, "enqueue": 2.0, "handler": 30.0}
    line = where_the_time_went([0.010] * 19 + [0.050], [fast] * 19 + [slow])
    assert line == ("the slowest 1 of 20, median ms (all in brackets): checks 1.0 (1.0), record write 20.0 (3.0), "
                    "SQS send 2.0 (2.0), rest of the router 7.0 (2.0), outside the router 20.0 (2.0)")
    assert where_the_time_went([0.01, 0.02], [{}, {}]) is None  # answers without the header (errors)


def test_the_cpu_ceiling_adds_every_process_and_says_which_it_could_not_read():
    line = cpu_ceiling({"router": 0.5, "workers": 1.5, "AWS emulator": 2.0}, jobs=100, wall_s=2.5, cores=2)
    assert line == ("all of it: 40.0 ms of CPU per job, 1.60 of 2 cores busy; at this CPU per job 2 cores allow "
                    "at most [bold]50 jobs/s[/]")
    short = cpu_ceiling({"router": 1.0, "AWS emulator": None}, jobs=50, wall_s=1.0, cores=2)
    assert short.startswith("all of it: 20.0 ms of CPU per job (without AWS emulator), 1.00 of 2 cores busy")


def test_the_busiest_process_sets_a_ceiling_of_its_own_whatever_the_cores():
    line = one_process_ceiling({"router": 0.5, "workers": 1.5, "AWS emulator": 2.0, "stand-in": None},
                               jobs=100, wall_s=2.5)
    assert line == ("the busiest process, AWS emulator, used 0.80 of one core (20.0 ms per job); one interpreter "
                    "runs on about one core, so it alone caps the run at [bold]50 jobs/s[/]")
    assert one_process_ceiling({"router": None}, jobs=10, wall_s=1.0) == "the busiest process: not measured"
