import pytest

from comfyfab.config import ConfigError, FabricConfig, load_config


def test_default_config_holds_the_case_study_figures():
    cfg = load_config()
    vt = {c.name: c.visibility_timeout_s for c in cfg.queues.classes}
    assert vt == {"realtime": 10, "standard": 45, "batch": 300}
    assert all(c.max_receive_count == 2 for c in cfg.queues.classes)
    assert cfg.jobs.ttl_hours == 72
    assert cfg.delivery.presign_expiry_s == 900
    assert cfg.fleet.warm_realtime_workers == 2
    a = cfg.fleet.autoscaling
    assert (a.queue_depth_threshold, a.step, a.interval_s, a.max_workers, a.idle_stop_s) == (10, 2, 30, 32, 300)
    assert (cfg.fleet.cold_start.min_s, cfg.fleet.cold_start.max_s) == (18, 22)
    assert cfg.gpu("A100").service_time().min_s == 2.6 and cfg.gpu("H100").service_time().max_s == 1.1
    assert cfg.encryption.kms_rotation_days == 90
    assert cfg.network.flow_log_retention_days == 90
    assert cfg.iam.max_session_hours == 4


def test_config_is_frozen():
    cfg = load_config()
    with pytest.raises(Exception):
        cfg.region = "eu-west-1"  # type: ignore[misc]


def test_overrides_make_a_new_validated_config():
    cfg = load_config()
    new = cfg.with_overrides({"fleet.autoscaling.max_workers": 8, "queues.classes.batch.visibility_timeout_s": 60})
    assert new.fleet.autoscaling.max_workers == 8
    assert new.queues.cls("batch").visibility_timeout_s == 60
    assert cfg.fleet.autoscaling.max_workers == 32
    assert new.digest() != cfg.digest()


@pytest.mark.parametrize("path,value,needle", [
    ("fleet.autoscaling.max_workers", 0, "fleet.autoscaling.max_workers"),
    ("fleet.nope", 1, "unknown config path"),
    ("queues.classes.urgent.visibility_timeout_s", 5, "unknown config path"),
    ("encryption.kms_rotation_days", 30, "encryption.kms_rotation_days"),
])
def test_bad_overrides_name_the_field(path, value, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config().with_overrides({path: value})


def test_unknown_gpu_and_duplicate_tenants_are_refused():
    data = load_config().model_dump(mode="json")
    data["fleet"]["gpu"] = "V100"
    with pytest.raises(Exception, match="V100"):
        FabricConfig.model_validate(data)
    data = load_config().model_dump(mode="json")
    data["tenants"].append(dict(data["tenants"][0]))
    with pytest.raises(Exception, match="repeat"):
        FabricConfig.model_validate(data)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenants: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_first_tenants_keeps_the_rest_of_the_config():
    cfg = load_config()
    two = cfg.first_tenants(2)
    assert [t.id for t in two.tenants] == [t.id for t in cfg.tenants[:2]]
    assert two.queues == cfg.queues and cfg.first_tenants(None) is cfg and cfg.first_tenants(99) is cfg
