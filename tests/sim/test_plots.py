import pandas as pd

from sim import plots
from sim.run import simulate

from .helpers import fixed_fleet, poisson


def test_plots_draw_the_result(tmp_path):
    cfg = fixed_fleet(2)
    res = simulate(cfg, poisson(cfg.tenants[0].id, {"realtime": 0.5, "batch": 0.8}, hours=2), seed=1)
    fig = plots.depth_over_time(res)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    fig.savefig(tmp_path / "depth.png")
    assert (tmp_path / "depth.png").stat().st_size > 1000
    assert len(plots.latency_cdf(res).axes[0].lines) >= 2
    bars = plots.throughput_per_hour(res).axes[0].patches
    assert sum(b.get_height() for b in bars) == res.jobs
    t = pd.DataFrame({"w": [1, 2, 1, 2], "p95": [3.0, 1.0, 4.0, 2.0], "gpu": ["A", "A", "B", "B"]})
    assert len(plots.curve(t, "w", "p95", hue="gpu", target=2.0).axes[0].lines) == 3
