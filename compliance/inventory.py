"""What the collectors saw in an account, as frozen models.

The collectors (:mod:`compliance.collect`) read the account once through the
shared :class:`comfyfab.cloud.Cloud` and fill an :class:`Inventory`; every
check is a pure function over an inventory and the fabric config.  Nothing
here calls AWS, so checks can be unit-tested on hand-built inventories.

A resource the config names but the account lacks is still modelled, with
``exists=False``, so that a check can say "missing" instead of silently
skipping it.  Values a backend does not expose are ``None`` (see
``compliance/BACKENDS.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

TENANT_TAG = "comfyfab:tenant"
FABRIC_TAG = "comfyfab:fabric"


@dataclass(frozen=True)
class Bucket:
    """One S3 bucket: public access block, default encryption, policy, versioning, Object Lock."""

    name: str
    tenant: str | None
    exists: bool = True
    public_access_block: Mapping[str, bool] | None = None
    sse_algorithm: str | None = None
    sse_kms_key: str | None = None
    policy: Mapping[str, Any] | None = None
    versioning: str | None = None
    object_lock_enabled: bool = False
    object_lock_mode: str | None = None
    object_lock_days: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KmsKey:
    """One customer-managed KMS key with its aliases, rotation and lifecycle state."""

    key_id: str
    arn: str
    state: str
    manager: str
    aliases: tuple[str, ...] = ()
    rotation_enabled: bool | None = None
    rotation_period_days: int | None = None
    deletion_date: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def tenant(self) -> str | None:
        return self.tags.get(TENANT_TAG)


@dataclass(frozen=True)
class Queue:
    """One SQS queue the config names (a class queue or its DLQ) and its attributes."""

    name: str
    tenant: str
    priority: str
    dlq: bool
    exists: bool = True
    url: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str | None:
        return self.attributes.get("QueueArn")


@dataclass(frozen=True)
class Table:
    """The DynamoDB job table: TTL, server-side encryption and point-in-time recovery."""

    name: str
    exists: bool = True
    ttl_status: str | None = None
    ttl_attribute: str | None = None
    sse_status: str | None = None
    sse_type: str | None = None
    sse_kms_key: str | None = None
    pitr_status: str | None = None
    # False where the endpoint does not implement continuous backups at all (DynamoDB Local); such an
    # endpoint also ignores SSE, so neither can be judged there.
    pitr_supported: bool = True


@dataclass(frozen=True)
class Rule:
    """One security-group permission, flattened to one source."""

    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    source_group: str | None = None
    prefix_list: str | None = None

    def covers_port(self, port: int) -> bool:
        if self.protocol == "-1":
            return True
        return self.from_port is not None and self.to_port is not None and self.from_port <= port <= self.to_port


@dataclass(frozen=True)
class SecurityGroup:
    """A security group with its ingress rules."""

    group_id: str
    name: str
    vpc_id: str
    ingress: tuple[Rule, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NaclEntry:
    """One network ACL entry."""

    rule_number: int
    egress: bool
    action: str
    protocol: str
    cidr: str | None


@dataclass(frozen=True)
class Nacl:
    """A network ACL and the subnets it is associated with."""

    nacl_id: str
    entries: tuple[NaclEntry, ...]
    subnet_ids: tuple[str, ...]
    is_default: bool = False


@dataclass(frozen=True)
class Subnet:
    """A subnet: does it hand out public IPs, and does its route table reach an internet gateway."""

    subnet_id: str
    cidr: str
    map_public_ip: bool
    igw_route: bool


@dataclass(frozen=True)
class FlowLog:
    """A VPC flow log and where it delivers."""

    flow_log_id: str
    resource_id: str
    status: str
    destination_type: str
    log_group: str | None


@dataclass(frozen=True)
class Vpc:
    """One VPC of the fabric (found by its comfyfab tags) with what isolates it: a tenant's, or
    the router's (``tenant`` empty)."""

    tenant: str
    exists: bool = True
    vpc_id: str | None = None
    cidr: str | None = None
    subnets: tuple[Subnet, ...] = ()
    igw_ids: tuple[str, ...] = ()
    security_groups: tuple[SecurityGroup, ...] = ()
    nacls: tuple[Nacl, ...] = ()
    endpoints: tuple[str, ...] = ()
    flow_logs: tuple[FlowLog, ...] = ()
    peer_vpcs: tuple[str, ...] = ()
    endpoint_groups: tuple[str, ...] = ()   # security groups attached to its interface endpoints


@dataclass(frozen=True)
class LogGroup:
    """A CloudWatch Logs group and its retention (None: never expires)."""

    name: str
    exists: bool = True
    retention_days: int | None = None
    kms_key_id: str | None = None   # the key its events are encrypted under (None: CloudWatch Logs' own)


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch metric alarm."""

    name: str
    namespace: str | None
    metric: str | None
    dimensions: Mapping[str, str]
    threshold: float | None
    comparison: str | None
    period_s: int | None
    evaluation_periods: int | None
    actions_enabled: bool
    alarm_actions: tuple[str, ...]


@dataclass(frozen=True)
class PolicyStatement:
    """One statement of a role's identity policy, normalised to lists."""

    source: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True)
class Role:
    """An IAM role tagged with this fabric, its session limit and identity-policy statements."""

    name: str
    arn: str
    max_session_s: int
    statements: tuple[PolicyStatement, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def tenant(self) -> str | None:
        return self.tags.get(TENANT_TAG)


@dataclass(frozen=True)
class User:
    """An IAM user and its active static access keys."""

    name: str
    active_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trail:
    """A CloudTrail trail and its status."""

    name: str
    s3_bucket: str | None
    is_logging: bool
    multi_region: bool
    log_file_validation: bool


@dataclass(frozen=True)
class Inventory:
    """Everything the checks read, collected once from one account."""

    account_id: str
    region: str
    backend: str
    buckets: tuple[Bucket, ...] = ()
    keys: tuple[KmsKey, ...] = ()
    queues: tuple[Queue, ...] = ()
    table: Table | None = None
    vpcs: tuple[Vpc, ...] = ()
    log_groups: tuple[LogGroup, ...] = ()
    alarms: tuple[Alarm, ...] = ()
    topics: tuple[str, ...] = ()
    topic_kms_keys: tuple[tuple[str, str | None], ...] = ()   # (the fabric's alarm topic, its KmsMasterKeyId)
    roles: tuple[Role, ...] = ()
    users: tuple[User, ...] = ()
    root_access_keys: int | None = None   # IAM account summary AccountAccessKeysPresent (None: not reported)
    trails: tuple[Trail, ...] | None = ()   # None: the backend has no CloudTrail API (LocalStack OSS)
    router_groups: tuple[str, ...] = ()
    router_vpcs: tuple[Vpc, ...] = ()   # this fabric's VPCs without a tenant (the router's), in full

    # -- lookups used by the checks -------------------------------------
    @property
    def shared_vpcs(self) -> tuple[str, ...]:
        """The router VPCs' ids: the only legitimate peers of a tenant VPC."""
        return tuple(v.vpc_id for v in self.router_vpcs if v.vpc_id)

    @property
    def shared_flow_logs(self) -> tuple[FlowLog, ...]:
        """The flow logs of the router VPCs (and their subnets)."""
        return tuple(f for v in self.router_vpcs for f in v.flow_logs)

    def bucket(self, name: str) -> Bucket | None:
        return next((b for b in self.buckets if b.name == name), None)

    def key_for_alias(self, alias: str) -> KmsKey | None:
        return next((k for k in self.keys if alias in k.aliases), None)

    def key(self, ref: str | None) -> KmsKey | None:
        """A key by id, ARN or alias (name or ARN) -- how the APIs variously name it."""
        if not ref:
            return None
        for k in self.keys:
            if ref in (k.key_id, k.arn) or ref in k.aliases or any(ref.endswith(":" + a) for a in k.aliases):
                return k
        return None

    def queue(self, name: str) -> Queue | None:
        return next((q for q in self.queues if q.name == name), None)

    def vpc(self, tenant: str) -> Vpc | None:
        return next((v for v in self.vpcs if v.tenant == tenant), None)

    def log_group(self, name: str) -> LogGroup | None:
        return next((g for g in self.log_groups if g.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
