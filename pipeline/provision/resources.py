"""What provisioning returns: the identifiers of everything it made, per tenant and shared."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TenantResources:
    """One tenant's isolated slice of the fabric: key, bucket, queues, network, role and alarms."""

    tenant_id: str
    key_id: str
    key_arn: str
    key_alias: str
    bucket: str
    bucket_policy_mode: str                 # "full" or "embedded" (see pipeline.provision.s3)
    queue_urls: dict[str, str]              # priority class -> URL
    queue_arns: dict[str, str]
    dlq_urls: dict[str, str]
    dlq_arns: dict[str, str]
    vpc_id: str
    vpc_cidr: str
    subnet_ids: tuple[str, ...]
    route_table_id: str
    worker_sg_id: str
    endpoint_sg_id: str
    nacl_id: str
    endpoint_ids: dict[str, str]            # "s3", "dynamodb", "sqs", "ecr.api", "ecr.dkr" -> vpce id
    peering_id: str
    flow_log_group: str
    flow_log_id: str
    flow_log_role_arn: str
    worker_role_arn: str
    alarm_names: tuple[str, ...]


@dataclass(frozen=True)
class FabricResources:
    """The whole provisioned fabric: every tenant plus the shared router network, table, alarms and audit trail."""

    tenants: dict[str, TenantResources]
    table_name: str
    table_arn: str
    table_key_id: str
    audit_bucket: str
    audit_log_group: str
    audit_key_id: str
    audit_key_arn: str
    alarm_topic_arn: str
    router_vpc_id: str
    router_subnet_ids: tuple[str, ...]
    router_route_table_id: str
    router_sg_id: str
    router_role_arn: str
    router_endpoint_ids: dict[str, str]     # network.router_endpoints entry -> vpce id
    bucket_policy_mode: str
    trail_arn: str
    # Operations the backend does not implement, skipped and named (see Step.not_supported); not part of
    # equality, since discovery does not call them.
    unsupported: tuple[str, ...] = field(default=(), compare=False)
