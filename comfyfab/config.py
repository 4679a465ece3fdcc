"""The architecture as data.

One frozen, typed :class:`FabricConfig` describes the whole pipeline: tenants,
priority classes and their queues, the job table, delivery, the fleet (warm
pool, autoscaling, cold starts), GPU profiles, network, encryption, monitoring
and audit.  It is loaded from YAML (``fabric.yaml`` ships as the default) and
passed down to provisioning, the live pipeline, the simulator, the compliance
checks and the scenarios.  Nothing below the entry points reads the
environment: what differs between runs is a different config object.

Every figure in the shipped default comes from the reference case study
(``shared/reference/enterprise-pipeline-case-study.txt``).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PriorityName = Literal["realtime", "standard", "batch"]
PRIORITY_ORDER: tuple[PriorityName, ...] = ("realtime", "standard", "batch")
DEFAULT_CONFIG_PATH = Path(__file__).with_name("fabric.yaml")

_TENANT_ID = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")


class ConfigError(ValueError):
    """A fabric config that cannot be loaded; the message names the field."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PriorityClass(Frozen):
    """One priority class: its SQS FIFO queue, DLQ policy and latency SLO."""

    name: PriorityName
    visibility_timeout_s: int = Field(gt=0, le=43200, description="SQS visibility timeout of the class queue")
    max_receive_count: int = Field(2, ge=1, le=1000, description="receives before SQS moves a message to the DLQ")
    slo_p95_s: float | None = Field(None, gt=0, description="end-to-end p95 target, seconds")


class QueueConfig(Frozen):
    classes: tuple[PriorityClass, ...]
    message_retention_s: int = Field(345600, ge=60, le=1209600)
    dlq_retention_s: int = Field(1209600, ge=60, le=1209600)
    long_poll_s: int = Field(1, ge=0, le=20, description="receive wait when all queues were empty")
    heartbeat_fraction: float = Field(0.5, gt=0, lt=1, description="extend visibility after this fraction of it")
    message_groups: int = Field(
        64, ge=1, le=100000,
        description="message groups per queue; jobs hash over them so N workers drain one tenant in parallel")

    @field_validator("classes")
    @classmethod
    def _three_classes(cls, v: tuple[PriorityClass, ...]) -> tuple[PriorityClass, ...]:
        names = [c.name for c in v]
        if sorted(names) != sorted(PRIORITY_ORDER):
            raise ValueError(f"need exactly the classes {list(PRIORITY_ORDER)}, got {names}")
        return tuple(sorted(v, key=lambda c: PRIORITY_ORDER.index(c.name)))

    def cls(self, name: str) -> PriorityClass:
        for c in self.classes:
            if c.name == name:
                return c
        raise KeyError(name)


class JobStoreConfig(Frozen):
    table: str = "jobs"
    ttl_hours: float = Field(72, gt=0)
    ttl_attribute: str = "ttl"
    point_in_time_recovery: bool = True


class DeliveryConfig(Frozen):
    presign_expiry_s: int = Field(900, gt=0, le=604800)
    cache_control: str = "no-store, no-cache"
    signed_cookie_ttl_s: int = Field(900, gt=0)
    tls_min_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.3"


class AutoscalingConfig(Frozen):
    queue_depth_threshold: int = Field(10, ge=0, description="scale out when visible depth exceeds this")
    step: int = Field(2, ge=1, description="workers added per scaling interval")
    interval_s: float = Field(30, gt=0)
    max_workers: int = Field(32, ge=1, description="per tenant")
    idle_stop_s: float = Field(300, gt=0, description="idle workers above the minimum stop after this")
    count_starting: bool = Field(False, description=(
        "count workers still in their cold start against a scale-out (add only what they do not cover); "
        "the case study's rule (false) adds a step per interval while the depth stays high"))


class ColdStartConfig(Frozen):
    min_s: float = Field(18, ge=0)
    max_s: float = Field(22, ge=0)
    checkpoint_gb: float = Field(6.9, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "ColdStartConfig":
        if self.max_s < self.min_s:
            raise ValueError("cold_start.max_s is below min_s")
        return self


class SpotConfig(Frozen):
    enabled_for: tuple[PriorityName, ...] = ("batch",)
    interruptions_per_hour: float = Field(0.05, ge=0)
    notice_s: float = Field(120, gt=0)


class FleetConfig(Frozen):
    warm_realtime_workers: int = Field(2, ge=0, description="always-on workers per tenant, models in VRAM")
    autoscaling: AutoscalingConfig = AutoscalingConfig()
    cold_start: ColdStartConfig = ColdStartConfig()
    spot: SpotConfig = SpotConfig()
    gpu: str = Field("H100", description="default GPU profile name")
    drain_timeout_s: float = Field(90, gt=0, description="blue/green and SIGTERM drain budget")


class ServiceTime(Frozen):
    """Service time of one job on one GPU, uniform between the bounds unless a profile file overrides."""

    model: str = "sdxl"
    resolution: int = 1024
    steps: int = 20
    min_s: float = Field(gt=0)
    max_s: float = Field(gt=0)

    @property
    def mean_s(self) -> float:
        return (self.min_s + self.max_s) / 2


class GpuProfile(Frozen):
    name: str
    bf16_tflops: float = Field(gt=0)
    memory_gb: int = Field(gt=0)
    memory_bandwidth_tbs: float = Field(gt=0)
    service_times: tuple[ServiceTime, ...]
    on_demand_usd_per_hour: float = Field(ge=0)
    reserved_usd_per_hour: float = Field(ge=0)
    spot_usd_per_hour: float = Field(ge=0)
    profile_file: str | None = Field(None, description="measured service-time profile (comfyfab calibrate)")

    def service_time(self, model: str = "sdxl", resolution: int = 1024, steps: int = 20) -> ServiceTime:
        for st in self.service_times:
            if (st.model, st.resolution, st.steps) == (model, resolution, steps):
                return st
        base = self.service_times[0]
        # Scale the reference entry by pixels and steps when no exact entry exists.
        k = (resolution / base.resolution) ** 2 * steps / base.steps
        return ServiceTime(model=model, resolution=resolution, steps=steps,
                           min_s=base.min_s * k, max_s=base.max_s * k)


class NetworkConfig(Frozen):
    worker_port: int = Field(8080, ge=1, le=65535)
    router_cidr: str = "10.255.0.0/16"
    vpc_endpoints: tuple[str, ...] = ("s3", "dynamodb", "sqs", "ecr.api", "ecr.dkr")
    router_endpoints: tuple[str, ...] = Field(
        ("dynamodb", "sqs", "logs"), description="the router VPC's endpoints: job records, queues, audit events")
    flow_log_retention_days: int = Field(90, gt=0)
    failover_s: float = Field(45, gt=0)


class EncryptionConfig(Frozen):
    kms_rotation_days: int = Field(90, ge=90, le=2560)
    algorithm: Literal["aws:kms"] = "aws:kms"
    bucket_key: bool = True
    queue_key: Literal["tenant", "sqs-managed"] = Field(
        "tenant", description="SSE of a tenant's queues: SSE-KMS under the tenant's own key, or SQS-managed SSE")
    queue_data_key_reuse_s: int = Field(
        300, ge=60, le=86400, description="how long SQS reuses a data key before asking KMS again (SSE-KMS)")


class MonitoringConfig(Frozen):
    dlq_depth_threshold: int = Field(0, ge=0)
    gpu_memory_threshold_pct: float = Field(90, gt=0, le=100)
    gpu_memory_period_s: int = Field(300, gt=0)
    alarm_topic: str = "alarms"
    dlq_period_s: int = Field(60, ge=10, description="CloudWatch period of the DLQ-depth alarms")
    gpu_metric_namespace: str = Field("comfyfab/Workers", description="custom namespace workers publish GPU metrics to")
    gpu_metric_name: str = Field("GPUMemoryUtilization", description="percent of GPU memory in use, per worker")


class AuditConfig(Frozen):
    log_group: str = "audit"
    bucket: str = "audit"
    object_lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    object_lock_days: int = Field(365, gt=0)
    log_retention_days: int = Field(365, gt=0)


class IamConfig(Frozen):
    max_session_hours: float = Field(4, gt=0, le=12)


class RouterConfig(Frozen):
    max_body_bytes: int = Field(262_144, gt=0, le=262_144, description="the job travels in one SQS message")
    latency_budget_ms: float = Field(80, gt=0)
    depth_cache_s: float = Field(1.0, ge=0, description="how long the router reuses a queue depth for ETAs")
    max_resolution: int = Field(2048, gt=0)
    max_clock_skew_s: float = Field(
        300, gt=0, description="how far a client's createdAt may be from the router's clock: the record's "
                               "72 h TTL counts from it, so a far one would shorten or stretch retention")
    requeue_after_s: float = Field(
        30, gt=0, description="a resubmitted jobId whose record has stayed queued this long is sent again: "
                              "its first router may have died between writing the record and sending it")


class PhiConfig(Frozen):
    entities: tuple[str, ...] = Field(
        ("SSN", "MRN", "DOB", "PHONE", "EMAIL", "NPI", "MBI", "PERSON", "ADDRESS", "ICD10"),
        description="PHI entity types the router refuses (compliance.phi recognisers)")


class TenantConfig(Frozen):
    """One enterprise tenant: its own VPC, KMS key, bucket, queues and workers."""

    id: str
    name: str
    vpc_cidr: str
    gpu: str | None = Field(None, description="GPU profile; the fleet default when unset")
    hipaa: bool = False
    max_workers: int | None = Field(None, ge=1, description="overrides fleet.autoscaling.max_workers")

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not _TENANT_ID.match(v):
            raise ValueError("tenant id must be 3-32 chars of a-z, 0-9 and '-', starting with a letter")
        return v


class FabricConfig(Frozen):
    """The whole architecture. Derived names (buckets, queues, keys) come from methods here."""

    name: str = "comfyfab"
    region: str = "us-east-1"
    account_id: str = Field("123456789012", pattern=r"^\d{12}$")
    tenants: tuple[TenantConfig, ...]
    queues: QueueConfig
    jobs: JobStoreConfig = JobStoreConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    fleet: FleetConfig = FleetConfig()
    gpus: tuple[GpuProfile, ...]
    network: NetworkConfig = NetworkConfig()
    encryption: EncryptionConfig = EncryptionConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    audit: AuditConfig = AuditConfig()
    iam: IamConfig = IamConfig()
    router: RouterConfig = RouterConfig()
    phi: PhiConfig = PhiConfig()

    @model_validator(mode="after")
    def _consistent(self) -> "FabricConfig":
        ids = [t.id for t in self.tenants]
        if len(set(ids)) != len(ids):
            raise ValueError(f"tenant ids repeat: {ids}")
        gpu_names = {g.name for g in self.gpus}
        for want in [self.fleet.gpu, *[t.gpu for t in self.tenants if t.gpu]]:
            if want not in gpu_names:
                raise ValueError(f"GPU profile {want!r} is not defined in gpus ({sorted(gpu_names)})")
        return self

    # -- lookups ---------------------------------------------------------
    def tenant(self, tenant_id: str) -> TenantConfig:
        for t in self.tenants:
            if t.id == tenant_id:
                return t
        raise KeyError(tenant_id)

    def gpu(self, name: str | None = None) -> GpuProfile:
        name = name or self.fleet.gpu
        for g in self.gpus:
            if g.name == name:
                return g
        raise KeyError(name)

    def tenant_gpu(self, tenant_id: str) -> GpuProfile:
        return self.gpu(self.tenant(tenant_id).gpu)

    def tenant_max_workers(self, tenant_id: str) -> int:
        return self.tenant(tenant_id).max_workers or self.fleet.autoscaling.max_workers

    # -- derived resource names -----------------------------------------
    def bucket_name(self, tenant_id: str) -> str:
        return f"{self.name}-{tenant_id}-outputs"

    def key_alias(self, tenant_id: str) -> str:
        return f"alias/{self.name}/{tenant_id}"

    def queue_name(self, tenant_id: str, cls: str, dlq: bool = False) -> str:
        return f"{self.name}-{tenant_id}-{cls}{'-dlq' if dlq else ''}.fifo"

    def table_name(self) -> str:
        return f"{self.name}-{self.jobs.table}"

    def audit_bucket_name(self) -> str:
        return f"{self.name}-{self.audit.bucket}"

    def audit_log_group(self) -> str:
        return f"/{self.name}/{self.audit.log_group}"

    def flow_log_group(self, tenant_id: str) -> str:
        return f"/{self.name}/{tenant_id}/flow-logs"

    def router_flow_log_group(self) -> str:
        """The router VPC's flow logs (shared infrastructure, under the audit key)."""
        return f"/{self.name}/_router/flow-logs"

    def alarm_topic_name(self) -> str:
        return f"{self.name}-{self.monitoring.alarm_topic}"

    def digest(self) -> str:
        """Short content hash, saved with every run's results."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]

    def first_tenants(self, count: int | None) -> "FabricConfig":
        """The config with only its first ``count`` tenants (all when None)."""
        if count is None or count >= len(self.tenants):
            return self
        return self.model_copy(update={"tenants": self.tenants[:count]})

    def with_overrides(self, overrides: Mapping[str, Any]) -> "FabricConfig":
        """A new config with dotted-path overrides applied, e.g. {"fleet.autoscaling.max_workers": 8}."""
        data = self.model_dump(mode="json")
        for path, value in overrides.items():
            _set_path(data, path, value)
        return _validate(data, f"overrides {dict(overrides)}")


def _set_path(data: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, ".".join(parts[: i + 1]))
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ConfigError(f"unknown config path {path!r} (no {'.'.join(parts[: i + 1])!r})")
    last = parts[-1]
    if isinstance(node, list):
        item = _list_item(node, last, path)
        node[node.index(item)] = value
    elif isinstance(node, dict) and last in node:
        node[last] = value
    else:
        raise ConfigError(f"unknown config path {path!r}")


def _list_item(items: list, key: str, where: str) -> Any:
    """List elements are addressed by their name/id (``queues.classes.batch``) or index."""
    for item in items:
        if isinstance(item, dict) and key in (item.get("name"), item.get("id")):
            return item
    if key.isdigit() and int(key) < len(items):
        return items[int(key)]
    raise ConfigError(f"unknown config path element {where!r}")


def _validate(data: Any, source: str) -> FabricConfig:
    try:
        return FabricConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"invalid fabric config ({source}):"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {loc}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> FabricConfig:
    """Load a fabric config from YAML (the shipped default when ``path`` is None)."""
    p = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    cfg = _validate(raw, str(p))
    return cfg.with_overrides(overrides) if overrides else cfg
