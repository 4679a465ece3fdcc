import numpy as np
import pandas as pd
import pytest

from comfyfab.config import load_config
from sim.errors import ProfileError
from sim.service import ServiceModel, cold_start_seconds, load_service_profile

CFG = load_config()
H100 = CFG.gpu("H100")
KEY = ("sdxl", 1024, 20)


def test_distributions_map_uniforms_to_seconds():
    u = np.linspace(0, 0.999, 1000)
    uni = ServiceModel().seconds(H100, KEY, u)
    assert uni.min() == pytest.approx(0.85) and uni.max() <= 1.1 and np.all(np.diff(uni) > 0)
    exp = ServiceModel("exponential").seconds(H100, KEY, np.random.default_rng(0).random(200_000))
    assert exp.mean() == pytest.approx(0.975, rel=0.01) and exp.std() == pytest.approx(0.975, rel=0.02)
    assert np.allclose(ServiceModel("deterministic").seconds(H100, KEY, u), 0.975)
    # no entry for 512 px / 30 steps: the reference entry scaled by pixels and steps
    assert ServiceModel().seconds(H100, ("sdxl", 512, 30), np.array([0.0]))[0] == pytest.approx(0.85 * 0.25 * 1.5)
    with pytest.raises(ProfileError):
        ServiceModel("gamma")


def test_measured_profile_is_sampled_by_inverse_cdf(tmp_path):
    p = tmp_path / "prof.csv"
    pd.DataFrame({"gpu": "H100", "model": "sdxl", "resolution": 1024, "steps": 20,
                  "seconds": [1.0, 2.0, 3.0, 4.0]}).to_csv(p, index=False)
    prof = load_service_profile(p)
    m = ServiceModel("empirical", prof)
    assert m.seconds(H100, KEY, np.array([0.0, 0.5, 0.999999])).tolist() == pytest.approx([1.0, 2.5, 4.0], abs=1e-4)
    assert m.mean_s(H100) == 2.5
    with pytest.raises(ProfileError, match="no measured samples"):
        m.seconds(CFG.gpu("A100"), KEY, np.array([0.5]))
    # a GPU whose profile_file is set uses it without being told
    gpu = H100.model_copy(update={"profile_file": str(p)})
    assert ServiceModel().seconds(gpu, KEY, np.array([0.0]))[0] == 1.0


def test_bad_profiles_are_refused(tmp_path):
    with pytest.raises(ProfileError, match="not found"):
        load_service_profile(tmp_path / "missing.csv")
    p = tmp_path / "bad.csv"
    pd.DataFrame({"gpu": ["H100"], "seconds": [1.0]}).to_csv(p, index=False)
    with pytest.raises(ProfileError, match="lacks columns"):
        load_service_profile(p)
    pd.DataFrame({"gpu": ["H100"], "model": ["m"], "resolution": [1], "steps": [1], "seconds": [-1.0]}).to_csv(p)
    with pytest.raises(ProfileError, match="non-positive"):
        load_service_profile(p)


def test_cold_start_is_uniform_on_the_config_bounds():
    cs = cold_start_seconds(CFG.fleet.cold_start, np.array([0.0, 0.5, 1.0]))
    assert cs.tolist() == [18.0, 20.0, 22.0]


def test_calibrated_cold_starts_replace_the_uniform(tmp_path):
    from sim.fleet import FleetOptions
    from sim.run import SimOptions, simulate
    from sim.service import load_cold_start_profile
    from sim.workload import BurstSpec, StreamSpec, WorkloadSpec

    p = tmp_path / "cold.csv"
    pd.DataFrame({"seconds": [40.0, 40.0]}).to_csv(p, index=False)
    measured = load_cold_start_profile(p)
    assert cold_start_seconds(CFG.fleet.cold_start, 0.3, measured) == 40.0
    data = CFG.model_dump(mode="json")
    data["tenants"] = data["tenants"][:1]
    cfg = type(CFG).model_validate(data)
    wl = WorkloadSpec(duration_h=0.5, streams=(StreamSpec(tenant=cfg.tenants[0].id, priority="realtime",
                                                          per_day=86400),),
                      bursts=(BurstSpec(start_h=0.1, duration_h=0.1, multiplier=10),))
    base = SimOptions(fleet=FleetOptions(sample_s=1.0))
    slow = SimOptions(fleet=FleetOptions(sample_s=1.0), cold_start_path=str(p))
    a, b = (simulate(cfg, wl, seed=1, options=o).runs[cfg.tenants[0].id] for o in (base, slow))
    assert b.pools["on_demand"].cold_starts > 0
    assert b.end.mean() > a.end.mean() - 1e-9 and not np.array_equal(a.end, b.end)
    with pytest.raises(ProfileError):
        load_cold_start_profile(tmp_path / "none.csv")
