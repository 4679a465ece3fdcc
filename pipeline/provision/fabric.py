"""Provisioning and discovery of the whole fabric, in dependency order.

``provision`` creates what is missing and converges what exists, so a second
run creates nothing and returns equal resources.  ``discover`` walks the same
steps read-only and names every missing resource at once.
"""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from . import iam, isolation, monitoring, network, sqs
from .context import Step
from .dynamodb import ensure_jobs_table
from .errors import MissingResourceError, ProvisioningError
from .kms import alarm_grants, cloudtrail_grants, ensure_key, logs_grants
from .names import (audit_key_alias, flow_log_role_name, router_flow_log_role_name, router_role_name,
                    table_key_alias, tag_dict, worker_role_name)
from .resources import FabricResources, TenantResources
from .s3 import BucketPolicyMode, bucket_exists, bucket_policy_mode, default_policy_mode, ensure_bucket

T = TypeVar("T")


class _Run:
    """Runs named sections; in discovery, a missing resource is recorded and the section yields None."""

    def __init__(self, step: Step):
        self.step = step
        self.missing: list[str] = []

    def section(self, name: str, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except MissingResourceError as exc:
            if self.step.create:
                raise ProvisioningError(f"{name}: {exc}") from exc
            self.missing.extend(exc.missing)
            return None
        except (ClientError, BotoCoreError) as exc:
            raise ProvisioningError(f"{name}: {exc}") from exc


def provision(cloud: Cloud, cfg: FabricConfig, progress: Callable[[str], None] | None = None, *,
              bucket_policy_mode: BucketPolicyMode | None = None) -> FabricResources:
    """Create or converge the fabric described by ``cfg``; idempotent.

    ``bucket_policy_mode`` defaults to ``embedded`` on the embedded backend and
    ``full`` elsewhere (see :mod:`pipeline.provision.s3` for why).
    """
    mode = bucket_policy_mode or default_policy_mode(cloud.spec.kind)
    t0 = time.perf_counter()
    res = _walk(Step(cloud=cloud, cfg=cfg, create=True, progress=progress), mode)
    if progress is not None:
        progress(f"fabric {cfg.name} ready: {len(res.tenants)} tenant(s) in {time.perf_counter() - t0:.1f} s")
    return res


def discover(cloud: Cloud, cfg: FabricConfig) -> FabricResources:
    """The fabric ``cfg`` describes, found without creating or changing anything.

    Raises :class:`MissingResourceError` listing every resource that is absent.
    """
    return _walk(Step(cloud=cloud, cfg=cfg, create=False), None)


def _walk(step: Step, mode: BucketPolicyMode | None) -> FabricResources:
    """Every section in dependency order.

    In create mode a section that fails raises, so later sections always get
    their inputs.  In discovery a section runs whenever it can *look up* its
    resource, even if what it would need to *create* it is missing, so the
    error names as much as possible at once.
    """
    cfg = step.cfg
    run = _Run(step)
    shared = lambda role: tag_dict(cfg, role)  # noqa: E731

    table_key = run.section("jobs table key", lambda: ensure_key(
        step, table_key_alias(cfg), f"{cfg.name}: jobs table encryption", shared("jobs")))
    table_arn = run.section("jobs table", lambda: ensure_jobs_table(step, table_key, shared("jobs")))
    audit_key = run.section("audit key", lambda: ensure_key(
        step, audit_key_alias(cfg), f"{cfg.name}: audit trail encryption", shared("audit"),
        grants=[*cloudtrail_grants(step.partition, step.account, monitoring.trail_arn(step)),
                *logs_grants(step.partition, step.region, step.account,
                             [cfg.audit_log_group(), cfg.router_flow_log_group()]),
                *alarm_grants(step.partition, step.region, step.account, f"{cfg.name}-")]))
    topic = run.section("alarm topic", lambda: monitoring.ensure_topic(
        step, shared("alarms"), key_arn=audit_key.arn if audit_key else None))
    audit_group = run.section("audit log group", lambda: monitoring.ensure_log_group(
        step, cfg.audit_log_group(), cfg.audit.log_retention_days, shared("audit"),
        key_arn=audit_key.arn if audit_key else None))
    audit_bucket_mode = run.section("audit bucket", lambda: _bucket(
        step, cfg.audit_bucket_name(), audit_key, shared("audit"), mode,
        object_lock=(cfg.audit.object_lock_mode, cfg.audit.object_lock_days),
        trail_arn=monitoring.trail_arn(step)))
    trail = audit_key and audit_bucket_mode and run.section("audit trail", lambda: monitoring.ensure_trail(
        step, cfg.audit_bucket_name(), audit_key.arn, shared("audit")))

    router_net = run.section("router network", lambda: network.ensure_network(
        step, cfg.network.router_cidr, shared("router-vpc"), f"{cfg.name}-router"))
    router_sg = router_net and run.section("router security group", lambda: _router_sg(step, router_net))
    router_endpoint_sg = router_net and router_sg and run.section("router endpoint security group", lambda:
                                                                  _router_endpoint_sg(step, router_net, router_sg))
    router_endpoints = router_net and run.section("router VPC endpoints", lambda: isolation.ensure_endpoints(
        step, router_net, router_endpoint_sg or None, None, shared("endpoint"), f"{cfg.name}-router",
        table_arn=table_arn, services=cfg.network.router_endpoints, table_actions=iam.ROUTER_TABLE_ACTIONS))
    router_group = run.section("router flow log group", lambda: monitoring.ensure_log_group(
        step, cfg.router_flow_log_group(), cfg.network.flow_log_retention_days, shared("flow-logs"),
        key_arn=audit_key.arn if audit_key else None))
    router_fl_role = run.section("router flow log role", lambda: iam.ensure_role(
        step, router_flow_log_role_name(cfg), iam.trust("vpc-flow-logs.amazonaws.com", step.account),
        lambda: {"deliver-flow-logs": iam.flow_log_policy(_given(router_group))}, shared("flow-logs"),
        "router VPC flow log delivery"))
    router_net and run.section("router flow logs", lambda: isolation.ensure_flow_logs(
        step, router_net.vpc_id, cfg.router_flow_log_group(), router_fl_role, shared("flow-logs"),
        f"{cfg.name}-router"))

    tenants: dict[str, TenantResources] = {}
    for t in cfg.tenants:
        tr = _tenant(step, run, t.id, t.vpc_cidr, mode, router_net, router_sg, topic, table_arn)
        if tr is not None:
            tenants[t.id] = tr

    router_role = run.section("router role", lambda: iam.ensure_role(
        step, router_role_name(cfg), iam.trust("lambda.amazonaws.com"),
        lambda: {"router": iam.router_policy(
            [a for tr in tenants.values() for a in tr.queue_arns.values()],
            [f"arn:{step.partition}:s3:::{tr.bucket}" for tr in tenants.values()],
            [tr.key_arn for tr in tenants.values()], _given(table_arn), _given(audit_group),
            queues_under_tenant_keys=cfg.encryption.queue_key == "tenant")},
        shared("router"), f"{cfg.name} inference router"))

    if run.missing:
        raise MissingResourceError(run.missing)
    return FabricResources(
        tenants=tenants, table_name=cfg.table_name(), table_arn=_given(table_arn),
        table_key_id=_given(table_key).key_id, audit_bucket=cfg.audit_bucket_name(),
        audit_log_group=cfg.audit_log_group(), audit_key_id=_given(audit_key).key_id,
        audit_key_arn=_given(audit_key).arn, alarm_topic_arn=_given(topic), router_vpc_id=_given(router_net).vpc_id,
        router_subnet_ids=_given(router_net).subnet_ids, router_route_table_id=_given(router_net).route_table_id,
        router_sg_id=_given(router_sg), router_role_arn=_given(router_role),
        router_endpoint_ids=_given(router_endpoints),
        bucket_policy_mode=_given(audit_bucket_mode), trail_arn=_given(trail), unsupported=tuple(step.unsupported))


def _given(value: T | None) -> T:
    """A section's result that must exist: a section yields None only after recording what is missing."""
    if value is None:
        raise ProvisioningError("internal: a provisioning section yielded nothing without naming what is missing")
    return value


def _bucket(step: Step, bucket: str, key: Any, tags: dict[str, str], mode: BucketPolicyMode | None,
            object_lock: tuple[str, int] | None = None, trail_arn: str | None = None) -> BucketPolicyMode:
    """Ensure the bucket; in discovery (``mode`` None) its policy mode is read back from its tag."""
    chosen = mode
    if chosen is None:
        if not bucket_exists(step, bucket):
            raise step.absent(f"S3 bucket {bucket}")
        chosen = bucket_policy_mode(step, bucket)
    ensure_bucket(step, bucket, key, tags, chosen, object_lock=object_lock, trail_arn=trail_arn)
    return chosen


def _router_sg(step: Step, net: network.Network) -> str:
    """The router calls the workers on their port, and AWS through its VPC's endpoints on 443."""
    cfg = step.cfg
    sg = network.ensure_security_group(step, net.vpc_id, f"{cfg.name}-router",
                                       f"{cfg.name} inference router", tag_dict(cfg, "router"))
    if step.create:
        port = cfg.network.worker_port
        network.converge_rules(step, sg, ingress=set(), egress={
            *{("6", port, port, "cidr", t.vpc_cidr) for t in cfg.tenants},
            *isolation.endpoint_egress(step, net.cidr, cfg.network.router_endpoints)})
    return sg


def _router_endpoint_sg(step: Step, net: network.Network, router_sg: str) -> str:
    """The router VPC's interface endpoints admit HTTPS from the router only."""
    cfg = step.cfg
    sg = network.ensure_security_group(step, net.vpc_id, f"{cfg.name}-router-endpoints",
                                       f"{cfg.name} router VPC interface endpoints", tag_dict(cfg, "endpoints"))
    if step.create:
        https = network.HTTPS_PORT
        network.converge_rules(step, sg, ingress={("6", https, https, "sg", router_sg)}, egress=set())
    return sg


def _tenant_sgs(step: Step, tid: str, net: network.Network, router_sg: str | None) -> tuple[str, str]:
    cfg = step.cfg
    port = cfg.network.worker_port
    https = network.HTTPS_PORT
    worker = network.ensure_security_group(step, net.vpc_id, f"{cfg.name}-{tid}-workers",
                                           f"{tid}: GPU workers", tag_dict(cfg, "worker", tid))
    endpoints = network.ensure_security_group(step, net.vpc_id, f"{cfg.name}-{tid}-endpoints",
                                              f"{tid}: VPC interface endpoints", tag_dict(cfg, "endpoints", tid))
    if step.create:
        network.converge_rules(step, worker, ingress={("6", port, port, "sg", _given(router_sg))},
                               egress=isolation.endpoint_egress(step, net.cidr, cfg.network.vpc_endpoints))
        network.converge_rules(step, endpoints, ingress={("6", https, https, "sg", worker)}, egress=set())
    return worker, endpoints


def _tenant(step: Step, run: _Run, tid: str, cidr: str, mode: BucketPolicyMode | None,
            router_net: network.Network | None, router_sg: str | None, topic: str | None,
            table_arn: str | None) -> TenantResources | None:
    cfg = step.cfg
    tags = lambda role: tag_dict(cfg, role, tid)  # noqa: E731
    name = f"{cfg.name}-{tid}"
    bucket = cfg.bucket_name(tid)
    group = cfg.flow_log_group(tid)
    step.say(f"tenant {tid}")
    key = run.section(f"{tid}: KMS key", lambda: ensure_key(
        step, cfg.key_alias(tid), f"{cfg.name}: outputs of tenant {tid}", tags("tenant-key"),
        grants=logs_grants(step.partition, step.region, step.account, [group])))
    bucket_mode = run.section(f"{tid}: bucket", lambda: _bucket(step, bucket, key, tags("outputs"), mode))

    def queues() -> tuple[dict[str, sqs.Queue], dict[str, sqs.Queue]]:
        qs: dict[str, sqs.Queue] = {}
        dlqs: dict[str, sqs.Queue] = {}
        missing: list[str] = []
        for cls in cfg.queues.classes:
            try:
                qs[cls.name], dlqs[cls.name] = sqs.ensure_class_queues(
                    step, tid, cls, {**tags("queue"), "comfyfab:class": cls.name}, key.arn if key else None)
            except MissingResourceError as exc:   # only in discovery: name every missing class
                missing.extend(exc.missing)
        if missing:
            raise MissingResourceError(missing)
        return qs, dlqs
    qs = run.section(f"{tid}: queues", queues)

    net = run.section(f"{tid}: VPC", lambda: network.ensure_network(step, cidr, tags("tenant-vpc"), name))
    sgs = net and run.section(f"{tid}: security groups", lambda: _tenant_sgs(step, tid, net, router_sg))
    pcx = net and router_net and run.section(f"{tid}: peering", lambda: network.ensure_peering(
        step, router_net, net, tags("peering"), f"{cfg.name}-router-{tid}"))
    nacl = net and run.section(f"{tid}: network ACL", lambda: isolation.ensure_nacl(step, net, tags("nacl"), name))
    endpoints = net and run.section(f"{tid}: VPC endpoints", lambda: isolation.ensure_endpoints(
        step, net, sgs[1] if sgs else None, bucket, tags("endpoint"), name, table_arn=table_arn))
    group_arn = run.section(f"{tid}: flow log group", lambda: monitoring.ensure_log_group(
        step, group, cfg.network.flow_log_retention_days, tags("flow-logs"), key_arn=key.arn if key else None))
    fl_role = run.section(f"{tid}: flow log role", lambda: iam.ensure_role(
        step, flow_log_role_name(cfg, tid), iam.trust("vpc-flow-logs.amazonaws.com", step.account),
        lambda: {"deliver-flow-logs": iam.flow_log_policy(_given(group_arn))}, tags("flow-logs"),
        f"{tid}: VPC flow log delivery"))
    fl_id = net and run.section(f"{tid}: flow logs", lambda: isolation.ensure_flow_logs(
        step, net.vpc_id, group, fl_role, tags("flow-logs"), name))
    worker_role = run.section(f"{tid}: worker role", lambda: iam.ensure_role(
        step, worker_role_name(cfg, tid), iam.trust("ec2.amazonaws.com"),
        lambda: {"worker": iam.worker_policy([q.arn for q in _given(qs)[0].values()], bucket, _given(key).arn,
                                             _given(table_arn), step.partition)},
        tags("worker"), f"{tid}: GPU worker"))
    alarms = run.section(f"{tid}: alarms", lambda: monitoring.ensure_alarms(step, tid, topic, tags("alarm")))

    if (key is None or bucket_mode is None or qs is None or net is None or sgs is None or pcx is None
            or nacl is None or endpoints is None or fl_role is None or fl_id is None or worker_role is None
            or alarms is None):
        return None
    return TenantResources(
        tenant_id=tid, key_id=key.key_id, key_arn=key.arn, key_alias=key.alias, bucket=bucket,
        bucket_policy_mode=bucket_mode,
        queue_urls={c: q.url for c, q in qs[0].items()}, queue_arns={c: q.arn for c, q in qs[0].items()},
        dlq_urls={c: q.url for c, q in qs[1].items()}, dlq_arns={c: q.arn for c, q in qs[1].items()},
        vpc_id=net.vpc_id, vpc_cidr=net.cidr, subnet_ids=net.subnet_ids, route_table_id=net.route_table_id,
        worker_sg_id=sgs[0], endpoint_sg_id=sgs[1], nacl_id=nacl, endpoint_ids=endpoints, peering_id=pcx,
        flow_log_group=group, flow_log_id=fl_id, flow_log_role_arn=fl_role, worker_role_arn=worker_role,
        alarm_names=alarms)
