from comfyfab.config import load_config
from comfyfab.policy import AutoscalePolicy, PollPolicy, WorkerView


def pool(n, busy=False, idle_since=None):
    return [WorkerView(id=f"w{i}", busy=busy, idle_since=idle_since) for i in range(n)]


def test_warm_pool_is_kept():
    p = AutoscalePolicy.from_config(load_config(), "acme-health")
    assert p.decide(0, 0, []).add == 2


def test_scale_out_two_per_interval_up_to_max():
    p = AutoscalePolicy(min_workers=2, max_workers=5, threshold=10, step=2, interval_s=30)
    assert p.decide(0, 11, pool(2, busy=True)).add == 2
    assert p.decide(10, 50, pool(4, busy=True)).add == 0  # cooling down
    assert p.decide(30, 50, pool(4, busy=True)).add == 1  # capped at max
    assert p.decide(60, 50, pool(5, busy=True)).add == 0
    assert p.decide(90, 10, pool(2, busy=True)).add == 0  # depth must exceed the threshold


def test_idle_workers_beyond_minimum_stop_after_idle_time():
    p = AutoscalePolicy(min_workers=2, max_workers=32, idle_stop_s=300)
    workers = pool(5, idle_since=0.0)
    assert p.decide(299, 0, workers).stop == ()
    d = p.decide(300, 0, workers)
    assert len(d.stop) == 3


def test_poll_policy_is_strict_priority():
    p = PollPolicy()
    assert p.order() == ("realtime", "standard", "batch")
    assert p.pick({"batch": 3, "standard": 1}) == "standard"
    assert p.pick({}) is None
    assert PollPolicy(classes=("batch",)).pick({"realtime": 5, "batch": 1}) == "batch"


def test_idle_workers_spread_their_long_polls_over_the_classes_realtime_first():
    p = PollPolicy()
    assert [p.idle_class(slot) for slot in range(5)] == ["realtime", "standard", "batch", "realtime", "standard"]
    assert {PollPolicy(classes=("batch",)).idle_class(slot) for slot in range(4)} == {"batch"}  # spot workers


def test_count_starting_holds_a_scale_out_that_starting_workers_already_cover():
    """``count_starting``: workers in their cold start are capacity on its way.  The case study's
    rule adds a step per interval while the depth stays high, whatever is starting."""
    starting = [WorkerView(id=f"s{i}", busy=False, starting=True) for i in range(2)]
    seed_rule = AutoscalePolicy(min_workers=2, max_workers=32, threshold=10, step=2, interval_s=30)
    assert seed_rule.decide(0, 50, pool(2, busy=True) + starting).add == 2
    p = AutoscalePolicy(min_workers=2, max_workers=32, threshold=10, step=2, interval_s=30, count_starting=True)
    held = p.decide(0, 50, pool(2, busy=True) + starting)
    assert held.add == 0 and "2 still starting" in held.reason
    # holding does not start the cooldown: once they are up, the next check may add at once
    assert p.decide(10, 50, pool(4, busy=True)).add == 2
    assert p.decide(20, 50, pool(4, busy=True) + starting[:1]).add == 0  # cooling down now
    assert p.decide(40, 50, pool(4, busy=True) + starting[:1]).add == 1  # one starting covers half a step
    assert AutoscalePolicy.from_config(
        load_config().with_overrides({"fleet.autoscaling.count_starting": True}), "acme-health").count_starting
