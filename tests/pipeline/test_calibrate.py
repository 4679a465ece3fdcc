"""comfyfab calibrate on the tiny architecture, on the CPU: profiles, FLOPs, the simulator's use of them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import comfyfab.cli as comfy_cli
from comfyfab.config import FabricConfig, load_config
from pipeline.calibrate import (CalibrationError, CalibrationSpec, Peak, calibrate, count_flops, count_flops_meta,
                                fit_lognormal,
                                read_summary, resolve_peak)
from pipeline.comfy.models import load_bundle
from sim.run import simulate
from sim.errors import ProfileError
from sim.service import load_cold_start_profile, load_service_profile
from sim.validate import fixed_fleet
from sim.workload import StreamSpec, WorkloadSpec

CLI_MODULE = "pipeline.calibrate.cli"
FAST = ["--model", "tiny", "--device", "cpu", "--steps", "2", "--runs", "3", "--warmup", "1", "--threads", "1",
        "--quiet"]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cli(monkeypatch):
    """``comfyfab`` with the calibrate command registered (whether or not the lead has listed it yet)."""
    if CLI_MODULE not in comfy_cli.COMMAND_MODULES:
        monkeypatch.setattr(comfy_cli, "COMMAND_MODULES", (*comfy_cli.COMMAND_MODULES, CLI_MODULE))
    return comfy_cli.main


@pytest.fixture(scope="module")
def tiny_bundle():
    return load_bundle("tiny.safetensors", device="cpu")


CPU = Peak("cpu", None, "none")


def test_structure_is_deterministic(tmp_path):
    spec = CalibrationSpec(model="tiny", steps=2, batches=(1, 2), runs=3, warmup=0)
    first = calibrate(spec, tmp_path / "a", CPU)
    second = calibrate(spec, tmp_path / "b", CPU)
    assert [r.csv.name for r in first] == ["cpu-tiny-64-2-b1.csv", "cpu-tiny-64-2-b2.csv"]
    assert [r.csv.name for r in second] == [r.csv.name for r in first]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in (tmp_path / "b").iterdir())
    for a, b in zip(first, second):
        fa, fb = pd.read_csv(a.csv), pd.read_csv(b.csv)
        assert list(fa.columns) == list(fb.columns) == ["gpu", "model", "resolution", "steps", "seconds", "batch",
                                                        "batch_seconds", "run", "device", "dtype"]
        assert len(fa) == len(fb) == 3
        assert (fa["seconds"] > 0).all()
        np.testing.assert_allclose(fa["seconds"] * fa["batch"], fa["batch_seconds"], rtol=1e-6)
        assert a.flops == b.flops  # counted, not timed: identical
        ja, jb = read_summary(a.csv), read_summary(b.csv)
        assert ja.keys() == jb.keys()
        assert ja["p50_s"] <= ja["p90_s"]
        assert ja["dtype"] == "fp32" and ja["gpu"] == "cpu" and ja["mfu"] is None
        assert ja["load_s"] > 0 and ja["checkpoint_bytes"] > 0
        assert ja["torch_version"] == torch.__version__


def test_flops_positive_and_linear_in_steps(tiny_bundle):
    counts = {s: count_flops(tiny_bundle, CalibrationSpec(model="tiny", steps=s, runs=2)) for s in (1, 2, 4)}
    for c in counts.values():
        assert c.text > 0 and c.sampling > 0 and c.decode > 0
    # text encoding and decoding do not depend on steps; sampling is exactly one CFG pair per step
    assert len({c.text for c in counts.values()}) == 1 and len({c.decode for c in counts.values()}) == 1
    assert counts[2].sampling == 2 * counts[1].sampling and counts[4].sampling == 4 * counts[1].sampling
    assert counts[4].total > counts[2].total > counts[1].total


def test_flops_of_cfg_are_double_the_unguided(tiny_bundle):
    guided = count_flops(tiny_bundle, CalibrationSpec(model="tiny", steps=2, runs=2, cfg=7.0))
    plain = count_flops(tiny_bundle, CalibrationSpec(model="tiny", steps=2, runs=2, cfg=1.0))
    assert guided.sampling == 2 * plain.sampling


def _with_cpu_gpu(profile: str) -> FabricConfig:
    """The shipped config plus a GPU profile named ``cpu`` whose service times come from ``profile``."""
    data = load_config().model_dump(mode="json")
    h100 = next(g for g in data["gpus"] if g["name"] == "H100")
    data["gpus"].append({**h100, "name": "cpu", "profile_file": profile,
                         "service_times": [{"model": "tiny", "resolution": 64, "steps": 2, "min_s": 1, "max_s": 2}]})
    return fixed_fleet(2, gpu="cpu", base=FabricConfig.model_validate(data))


def test_cli_profile_drives_the_simulator(cli, tmp_path, capsys):
    out = tmp_path / "profiles"
    assert cli(["calibrate", *FAST, "--runs", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "FLOPs per image" in printed and "MFU peak: none" in printed
    csv = out / "cpu-tiny-64-2-b1.csv"
    profile = load_service_profile(csv)
    assert list(profile) == [("cpu", "tiny", 64, 2)]
    samples = profile[("cpu", "tiny", 64, 2)]
    assert len(samples) == 8
    assert load_cold_start_profile(out / "cpu-tiny-64-2-b1-load.csv").size == 1

    cfg = _with_cpu_gpu(str(csv))
    tenant = cfg.tenants[0].id
    rate = 0.3 / float(samples.mean())  # 2 workers at 15 % utilisation
    workload = WorkloadSpec(duration_h=4000 / rate / 3600, streams=(
        StreamSpec(tenant=tenant, priority="realtime", per_day=rate * 86400, model="tiny", resolution=64,
                   steps=2),))
    run = simulate(cfg, workload, seed=3).runs[tenant]
    assert len(run.service) > 3000
    # service times are draws of the profile's inverse CDF (linear interpolation between sorted samples)
    assert run.service.min() >= samples.min() - 1e-12 and run.service.max() <= samples.max() + 1e-12
    interpolated_mean = float(np.trapezoid(samples, dx=1.0) / (len(samples) - 1))
    assert run.service.mean() == pytest.approx(interpolated_mean, rel=0.03)
    assert run.service.mean() == pytest.approx(read_summary(csv)["mean_s"], rel=0.15)


def test_shipped_cpu_profile_loads():
    from pathlib import Path

    shipped = sorted((Path(__file__).parents[2] / "profiles").glob("cpu-tiny-*.csv"))
    shipped = [p for p in shipped if not p.name.endswith("-load.csv")]
    assert shipped, "profiles/ ships at least one CPU profile of the tiny model"
    for path in shipped:
        (key, samples), = load_service_profile(path).items()
        summary = json.loads(path.with_suffix(".json").read_text())
        assert key == ("cpu", "tiny", summary["resolution"], summary["steps"])
        assert float(np.median(samples)) == pytest.approx(summary["p50_s"], rel=1e-4)


def test_shipped_h100_profile_drives_the_simulator():
    """The measured H100 profiles (scripts/gpu_check.sh on the device machine) name the config's
    H100 and SDXL 1024/20, and an H100 fleet fed one serves from its samples, not the seed's range."""
    from pathlib import Path

    folder = Path(__file__).parents[2] / "profiles"
    csv = folder / "h100-sdxl-1024-20-b1-compiled.csv"
    summary = json.loads(csv.with_suffix(".json").read_text())
    assert summary["device"].startswith("NVIDIA H100") and summary["gpu"] == "H100"
    assert summary["flops_per_image"] == pytest.approx(281e12, rel=0.01)  # the 281 TFLOP
    (key, samples), = load_service_profile(csv).items()
    assert key == ("H100", "sdxl", 1024, 20)
    assert load_cold_start_profile(folder / "h100-sdxl-1024-20-b1-compiled-load.csv").size >= 1

    data = load_config().model_dump(mode="json")
    for gpu in data["gpus"]:
        if gpu["name"] == "H100":
            gpu["profile_file"] = str(csv)
    cfg = fixed_fleet(2, gpu="H100", base=FabricConfig.model_validate(data))
    tenant = cfg.tenants[0].id
    workload = WorkloadSpec(duration_h=1.0, streams=(
        StreamSpec(tenant=tenant, priority="realtime", per_day=2000 * 24, model="sdxl", resolution=1024, steps=20),))
    run = simulate(cfg, workload, seed=5).runs[tenant]
    assert run.service.min() >= samples.min() - 1e-9 and run.service.max() <= samples.max() + 1e-9
    assert run.service.max() < 0.85  # below the seed's H100 range (0.85-1.1 s): the profile, not the config


@pytest.mark.parametrize("flags, message", [
    (["--device", "cuda"], "no CUDA device"),
    (["--device", "tpu"], "cpu or cuda"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--runs", "1"], "--runs must be at least 2"),
    (["--resolution", "63"], "multiple of 8"),
    (["--model", "sd3"], "not a shipped architecture"),
    (["--sampler", "nope"], "unknown sampler"),
    (["--scheduler", "nope"], "unknown scheduler"),
    (["--loads", "0"], "--loads must be at least 1"),
    (["--peak-tflops", "-1"], "--peak-tflops must be positive"),
    (["--checkpoint", "/nonexistent/x.safetensors"], "does not exist"),
    (["--fp8"], "--fp8 needs --device cuda"),
])
def test_bad_flags_are_clear_errors(cli, tmp_path, capsys, flags, message):
    if flags[:2] == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = cli(["calibrate", *FAST, "--out", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.csv"))


def test_a_variant_run_names_its_profile_and_records_its_kernel(cli, tmp_path, capsys):
    """A preferred attention kernel is part of the profile's name and its summary, so the
    profiles of an A/B on one device sit side by side instead of overwriting each other."""
    assert cli(["calibrate", *FAST, "--attention", "math", "--out", str(tmp_path)]) == 0
    assert "math attention" in capsys.readouterr().out
    summary = read_summary(tmp_path / "cpu-tiny-64-2-b1-math.csv")
    assert summary["attention_kernel"] == "math" and summary["fp8_layers"] == 0
    assert not (tmp_path / "cpu-tiny-64-2-b1.csv").exists()
    assert CalibrationSpec(compile="full").variant == "-compiled"
    assert CalibrationSpec(compile="regional").variant == "-compiled-regional"
    assert summary["compile_scope"] is None and len(summary["warmup_s"]) == 1
    assert summary["compile_s"] is None and not (tmp_path / "cpu-tiny-64-2-b1-math-coldstart.csv").exists()
    assert CalibrationSpec(device="cuda", fp8=True, attention="cudnn", compile="full").variant == "-fp8-cudnn-compiled"
    with pytest.raises(CalibrationError, match="--attention must be one of"):
        CalibrationSpec(attention="fast")


def test_a_regional_compile_names_its_profile_and_records_the_compile_run(cli, tmp_path, capsys, monkeypatch):
    """``--compile regional``: the profile says so in its name and summary, and keeps the warm-up runs'
    seconds (the first pays the compile: what a cold worker waits).  torch.compile's ``eager`` backend
    stands in for inductor here (the same graph capture without a minute of C++ code generation)."""
    import functools

    import pipeline.calibrate.measure as measure
    import torch._dynamo

    monkeypatch.setattr(measure, "compile_bundle", functools.partial(measure.compile_bundle, backend="eager"))
    torch._dynamo.reset()
    assert cli(["calibrate", *FAST, "--compile", "regional", "--warmup", "2", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "compiled regionally" in printed and "compile (first warm-up run less a timed run), s: batch 1 " in printed
    summary = read_summary(tmp_path / "cpu-tiny-64-2-b1-compiled-regional.csv")
    assert summary["compiled"] is True and summary["compile_scope"] == "regional"
    assert len(summary["warmup_s"]) == 2 and all(s > 0 for s in summary["warmup_s"])
    # a compiled worker's cold start: the load plus the compile, in the form the simulator reads
    assert summary["compile_s"] == pytest.approx(max(0.0, summary["warmup_s"][0] - summary["batch_p50_s"]))
    cold = load_cold_start_profile(tmp_path / "cpu-tiny-64-2-b1-compiled-regional-coldstart.csv")
    assert cold == pytest.approx([summary["load_samples_s"][0] + summary["compile_s"]])
    with pytest.raises(SystemExit) as exc:
        cli(["calibrate", *FAST, "--compile", "partial", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "invalid choice: 'partial'" in capsys.readouterr().err


def test_bad_batch_list_is_an_argparse_error(cli, capsys):
    with pytest.raises(SystemExit) as exc:
        cli(["calibrate", *FAST, "--batch", "1,x"])
    assert exc.value.code == 2 and "comma-separated integers" in capsys.readouterr().err


def test_peak_comes_from_the_config_gpu():
    gpus = {g.name: g.bf16_tflops for g in load_config().gpus}
    assert resolve_peak("cuda", "NVIDIA H100 80GB HBM3", gpus) == Peak(
        "H100", 989.0, "config gpus.H100.bf16_tflops (dense bf16 peak)")
    assert resolve_peak("cuda", "NVIDIA A100-SXM4-80GB", gpus).tflops == 312.0
    assert resolve_peak("cuda", "NVIDIA L4", gpus).tflops is None
    # a lent device the config has no profile for: the data sheet's dense peak, and the device's own name
    h200 = resolve_peak("cuda", "NVIDIA H200", gpus)
    assert (h200.gpu, h200.tflops) == ("H200", 989.0) and "data sheet" in h200.source
    nvl = resolve_peak("cuda", "NVIDIA H200 NVL", gpus)
    assert (nvl.gpu, nvl.tflops) == ("H200 NVL", 835.0)
    cpu = resolve_peak("cpu", "AMD EPYC", gpus)
    assert cpu.gpu == "cpu" and cpu.tflops is None and "no CPU peak" in cpu.source
    assert resolve_peak("cpu", "AMD EPYC", gpus, override_tflops=1.5).tflops == 1.5
    with pytest.raises(CalibrationError):
        resolve_peak("cpu", "AMD EPYC", gpus, override_tflops=0)


@settings(max_examples=50, deadline=None)
@given(mu=st.floats(-5, 3), sigma=st.floats(0.01, 1.0), n=st.integers(20, 200), seed=st.integers(0, 2 ** 16))
def test_lognormal_fit_recovers_its_parameters(mu, sigma, n, seed):
    x = np.exp(np.random.default_rng(seed).normal(mu, sigma, n))
    fit = fit_lognormal(x)
    assert x.min() <= fit.median_s <= x.max()
    assert fit.mu == pytest.approx(mu, abs=6 * sigma / np.sqrt(n))
    assert fit.sigma > 0 and fit.mean_s > fit.median_s


def test_meta_count_agrees_with_a_real_run(tiny_bundle):
    """Exactly, once attention runs as matmuls: PyTorch's fused CPU attention kernel has no FLOP formula,
    so a default CPU run counts less (the attention products) than the meta count."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for cfg in (7.0, 1.0):
        spec = CalibrationSpec(model="tiny", steps=3, runs=2, cfg=cfg)
        meta = count_flops_meta("tiny", 64, 3, cfg=cfg)
        fused = count_flops(tiny_bundle, spec)
        with sdpa_kernel(SDPBackend.MATH):
            real = count_flops(tiny_bundle, spec)
        assert (meta.text, meta.sampling, meta.decode) == (real.text, real.sampling, real.decode)
        assert fused.sampling < meta.sampling and fused.decode < meta.decode


def test_sdxl_1024_flops_match_the_published_measurement():
    """Issue 6: one SDXL 1024² image at 20 steps with CFG is about 281 TFLOP (UNet 13.5 per step, VAE 10.5)."""
    f = count_flops_meta("sdxl", 1024, 20)
    assert f.per_step / 1e12 == pytest.approx(13.5, rel=0.01)
    assert f.decode / 1e12 == pytest.approx(10.5, rel=0.01)
    assert f.total / 1e12 == pytest.approx(281, rel=0.01)


def test_real_checkpoint_and_progress(tiny_bundle, tmp_path):
    from pipeline.comfy.models import save_checkpoint

    ckpt = save_checkpoint(tiny_bundle, tmp_path / "models" / "mine.safetensors")
    seen: dict[str, tuple[int, int]] = {}
    spec = CalibrationSpec(model="ignored-when-a-checkpoint-is-given", steps=1, runs=2, warmup=1)
    [result] = calibrate(spec, tmp_path / "out", CPU, checkpoint=ckpt, loads=2,
                         progress=lambda what, done, total: seen.__setitem__(what, (done, total)))
    assert result.csv.name == "cpu-tiny-64-1-b1.csv"  # the checkpoint's architecture names the profile
    assert seen["batch 1"] == (3, 3) and "loading checkpoint" in seen
    summary = read_summary(result.csv)
    assert summary["checkpoint_bytes"] == ckpt.stat().st_size and len(summary["load_samples_s"]) == 2
    assert list(load_service_profile(result.csv)) == [("cpu", "tiny", 64, 1)]


def test_gpu_check_verdict_uses_the_median_load_and_the_best_p50(tmp_path):
    """scripts/gpu_check_report.py on the shipped H100 profiles: the figures of the closing note."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[2]
    for p in (root / "profiles").glob("h100-*.json"):
        shutil.copy(p, tmp_path / p.name)
    out = subprocess.run([sys.executable, str(root / "scripts" / "gpu_check_report.py"), str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert "p50 per image at batch 1: 0.725 (target <= 0.85) MET" in out
    assert "images/s (best, batched or not): 1.503 (target >= 1.8) NOT MET" in out
    # six distinct cold loads of the profiles (4.17, 4.72, 5.05, 5.26, 5.55, 5.80 s): the median decides, not the best
    assert "checkpoint loads: 6, 4.17-5.80 s" in out
    assert "checkpoint load s (median): 5.154 (target <= 5.0) NOT MET" in out
    assert "sdxl-1024-20-b4-compiled-regional" in out  # the regional profile, named as such
    assert "not an H100" not in out

    # a profile from another device is reported, and the verdict says its figures are not an H100's
    other = json.loads((tmp_path / "h100-sdxl-1024-20-b1-compiled.json").read_text())
    (tmp_path / "h200-sdxl-1024-20-b1-compiled.json").write_text(json.dumps({**other, "device": "NVIDIA H200"}))
    out = subprocess.run([sys.executable, str(root / "scripts" / "gpu_check_report.py"), str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert "note: measured on NVIDIA H200, not an H100" in out
    (tmp_path / "h200-sdxl-1024-20-b1-compiled.json").unlink()

    # with the reader bench's rows, the fastest reader's median decides (the loader's default)
    bench = root / "profiles" / "h100-sdxl-bf16-loadbench.csv"
    out = subprocess.run([sys.executable, str(root / "scripts" / "gpu_check_report.py"), str(tmp_path), str(bench)],
                         capture_output=True, text=True, check=True).stdout
    assert "load verdict: reader 16x8d, 3 loads, 4.45-4.82 s" in out
    assert "checkpoint load s (median): 4.577 (target <= 5.0) MET" in out


def test_the_default_reader_is_the_fastest_one_measured():
    from pathlib import Path

    from pipeline.comfy.fastload import ReadOptions

    bench = Path(__file__).parents[2] / "profiles" / "h100-sdxl-bf16-loadbench.csv"
    medians = pd.read_csv(bench).groupby("reader")["total_s"].median()
    assert medians.idxmin() == ReadOptions().name == "16x8d"
    assert ReadOptions.parse(ReadOptions().name) == ReadOptions(parallel=True)
    samples = load_cold_start_profile(bench)
    assert list(samples) == sorted(pd.read_csv(bench).query("reader == '16x8d'")["total_s"])
    with pytest.raises(ProfileError, match="no loads by reader 'nope'"):
        load_cold_start_profile(bench, reader="nope")


def test_profile_records_how_the_checkpoint_was_read(cli, tmp_path, capsys):
    out = tmp_path / "profiles"
    assert cli(["calibrate", *FAST, "--runs", "2", "--reader", "2x0.25", "--out", str(out)]) == 0
    assert "load steps, median s:" in capsys.readouterr().out
    summary = read_summary(out / "cpu-tiny-64-2-b1.csv")
    assert summary["load_reader"].startswith("2 threads x 0.25 MB chunks")
    assert {"read_s", "split_s", "build_s", "assign_s"} <= set(summary["load_phases_s"])


def test_bench_load_compares_readers_step_by_step(cli, tmp_path, capsys):
    rows = tmp_path / "loads.csv"
    assert cli(["bench", "load", "--readers", "library,2x0.25,2x0.25d", "--loads", "2", "--cache-dir",
                str(tmp_path), "--csv", str(rows)]) == 0
    printed = capsys.readouterr().out
    assert all(r in printed for r in ("library", "2x0.25", "2x0.25d", "read_GB/s"))
    frame = pd.read_csv(rows)
    assert len(frame) == 6 and list(frame["reader"][:3]) == ["library", "2x0.25", "2x0.25d"]  # interleaved
    assert (frame["total_s"] >= frame["read_s"]).all()
    assert frame.loc[frame["reader"] == "library", "pin_s"].isna().all()


@pytest.mark.parametrize("flags, message", [
    (["--readers", "8x"], "is not a reader"),
    (["--readers", ","], "names no reader"),
    (["--loads", "0"], "--loads must be at least 1"),
    (["--checkpoint", "/nonexistent/x.safetensors"], "does not exist"),
])
def test_bench_load_bad_flags_are_clear_errors(cli, tmp_path, capsys, flags, message):
    code = cli(["bench", "load", "--cache-dir", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.safetensors"))
