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
from .kms import ensure_key
from .names import (audit_key_alias, flow_log_role_name, router_role_name, table_key_alias, tag_dict,
                    worker_role_name)
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
    cfg = step.cfg
    run = _Run(step)
    shared = lambda role: tag_dict(cfg, role)  # noqa: E731

    topic = run.section("alarm topic", lambda: monitoring.ensure_topic(step, shared("alarms")))
    table_key = run.section("jobs table key", lambda: ensure_key(
        step, table_key_alias(cfg), f"{cfg.name}: jobs table encryption", shared("jobs")))
    table_arn = table_key and run.section("jobs table", lambda: ensure_jobs_table(step, table_key, shared("jobs")))
    audit_key = run.section("audit key", lambda: ensure_key(
        step, audit_key_alias(cfg), f"{cfg.name}: audit trail encryption", shared("audit")))
    audit_group = run.section("audit log group", lambda: monitoring.ensure_log_group(
        step, cfg.audit_log_group(), cfg.audit.log_retention_days, shared("audit")))

    def audit_bucket() -> str:
        name = cfg.audit_bucket_name()
        ensure_bucket(step, name, audit_key, shared("audit"), _mode(step, name, mode),
                      object_lock=(cfg.audit.object_lock_mode, cfg.audit.object_lock_days))
        return name
    audit_bucket_name = audit_key and run.section("audit bucket", audit_bucket)

    router_net = run.section("router network", lambda: network.ensure_network(
        step, cfg.network.router_cidr, shared("router-vpc"), f"{cfg.name}-router"))
    router_sg = router_net and run.section("router security group", lambda: _router_sg(step, router_net))

    tenants: dict[str, TenantResources] = {}
    for t in cfg.tenants:
        tr = _tenant(step, run, t.id, t.vpc_cidr, mode, router_net, router_sg, topic, table_arn)
        if tr is not None:
            tenants[t.id] = tr

    router_role = None
    if table_arn and audit_group and len(tenants) == len(cfg.tenants):
        router_role = run.section("router role", lambda: iam.ensure_role(
            step, router_role_name(cfg), iam.trust("lambda.amazonaws.com", step.account),
            {"router": iam.router_policy(
                [a for tr in tenants.values() for a in tr.queue_arns.values()],
                [f"arn:{step.partition}:s3:::{tr.bucket}" for tr in tenants.values()],
                [tr.key_arn for tr in tenants.values()], table_arn, audit_group)},
            shared("router"), f"{cfg.name} inference router"))

    if run.missing:
        raise MissingResourceError(run.missing)
    assert (topic and table_key and table_arn and audit_key and audit_group and audit_bucket_name and router_net
            and router_sg and router_role), "a section returned nothing without recording what is missing"
    modes = {tr.bucket_policy_mode for tr in tenants.values()}
    return FabricResources(
        tenants=tenants, table_name=cfg.table_name(), table_arn=table_arn, table_key_id=table_key.key_id,
        audit_bucket=audit_bucket_name, audit_log_group=cfg.audit_log_group(), audit_key_id=audit_key.key_id,
        audit_key_arn=audit_key.arn, alarm_topic_arn=topic, router_vpc_id=router_net.vpc_id,
        router_subnet_ids=router_net.subnet_ids, router_route_table_id=router_net.route_table_id,
        router_sg_id=router_sg, router_role_arn=router_role,
        bucket_policy_mode=modes.pop() if len(modes) == 1 else "mixed")


def _mode(step: Step, bucket: str, mode: BucketPolicyMode | None) -> BucketPolicyMode:
    return mode if mode is not None else bucket_policy_mode(step, bucket)


def _router_sg(step: Step, net: network.Network) -> str:
    cfg = step.cfg
    sg = network.ensure_security_group(step, net.vpc_id, f"{cfg.name}-router",
                                       f"{cfg.name} inference router", tag_dict(cfg, "router"))
    if step.create:
        port = cfg.network.worker_port
        network.converge_rules(step, sg, ingress=set(),
                               egress={("6", port, port, "cidr", t.vpc_cidr) for t in cfg.tenants})
    return sg


def _tenant(step: Step, run: _Run, tid: str, cidr: str, mode: BucketPolicyMode | None,
            router_net: network.Network | None, router_sg: str | None, topic: str | None,
            table_arn: str | None) -> TenantResources | None:
    cfg = step.cfg
    tags = lambda role: tag_dict(cfg, role, tid)  # noqa: E731
    name = f"{cfg.name}-{tid}"
    step.say(f"tenant {tid}")
    key = run.section(f"{tid}: KMS key", lambda: ensure_key(
        step, cfg.key_alias(tid), f"{cfg.name}: outputs of tenant {tid}", tags("tenant-key")))
    bucket = cfg.bucket_name(tid)
    bucket_mode = key and run.section(f"{tid}: bucket", lambda: _bucket(step, bucket, key, tags("outputs"), mode))

    def queues() -> dict[str, Any]:
        out: dict[str, Any] = {"q": {}, "d": {}}
        for cls in cfg.queues.classes:
            q, d = sqs.ensure_class_queues(step, tid, cls, {**tags("queue"), "comfyfab:class": cls.name})
            out["q"][cls.name], out["d"][cls.name] = q, d
        return out
    qs = run.section(f"{tid}: queues", queues)

    net = run.section(f"{tid}: VPC", lambda: network.ensure_network(step, cidr, tags("tenant-vpc"), name))
    sgs = net and router_sg and run.section(f"{tid}: security groups", lambda: _tenant_sgs(step, tid, net, router_sg))
    pcx = net and router_net and run.section(f"{tid}: peering", lambda: network.ensure_peering(
        step, router_net, net, tags("peering"), f"{cfg.name}-router-{tid}"))
    nacl = net and run.section(f"{tid}: network ACL", lambda: isolation.ensure_nacl(step, net, tags("nacl"), name))
    endpoints = net and sgs and run.section(f"{tid}: VPC endpoints", lambda: isolation.ensure_endpoints(
        step, net, sgs[1], bucket, tags("endpoint"), name))
    group = cfg.flow_log_group(tid)
    group_arn = run.section(f"{tid}: flow log group", lambda: monitoring.ensure_log_group(
        step, group, cfg.network.flow_log_retention_days, tags("flow-logs")))
    fl_role = group_arn and run.section(f"{tid}: flow log role", lambda: iam.ensure_role(
        step, flow_log_role_name(cfg, tid), iam.trust("vpc-flow-logs.amazonaws.com", step.account),
        {"deliver-flow-logs": iam.flow_log_policy(group_arn)}, tags("flow-logs"), f"{tid}: VPC flow log delivery"))
    fl_id = net and fl_role and run.section(f"{tid}: flow logs", lambda: isolation.ensure_flow_logs(
        step, net.vpc_id, group, fl_role, tags("flow-logs"), name))
    worker_role = (key and qs and table_arn) and run.section(f"{tid}: worker role", lambda: iam.ensure_role(
        step, worker_role_name(cfg, tid), iam.trust("ec2.amazonaws.com", step.account),
        {"worker": iam.worker_policy([q.arn for q in qs["q"].values()], bucket, key.arn, table_arn, step.partition)},
        tags("worker"), f"{tid}: GPU worker"))
    alarms = topic and run.section(f"{tid}: alarms", lambda: monitoring.ensure_alarms(step, tid, topic, tags("alarm")))

    parts = (key, bucket_mode, qs, net, sgs, pcx, nacl, endpoints, group_arn, fl_role, fl_id, worker_role, alarms)
    if not all(parts):
        return None
    return TenantResources(
        tenant_id=tid, key_id=key.key_id, key_arn=key.arn, key_alias=key.alias, bucket=bucket,
        bucket_policy_mode=bucket_mode,
        queue_urls={c: q.url for c, q in qs["q"].items()}, queue_arns={c: q.arn for c, q in qs["q"].items()},
        dlq_urls={c: q.url for c, q in qs["d"].items()}, dlq_arns={c: q.arn for c, q in qs["d"].items()},
        vpc_id=net.vpc_id, vpc_cidr=net.cidr, subnet_ids=net.subnet_ids, route_table_id=net.route_table_id,
        worker_sg_id=sgs[0], endpoint_sg_id=sgs[1], nacl_id=nacl, endpoint_ids=endpoints, peering_id=pcx,
        flow_log_group=group, flow_log_id=fl_id, flow_log_role_arn=fl_role, worker_role_arn=worker_role,
        alarm_names=alarms)


def _bucket(step: Step, bucket: str, key: Any, tags: dict[str, str], mode: BucketPolicyMode | None) -> str:
    chosen = mode
    if chosen is None:   # discovery: the bucket must exist before its mode tag can be read
        if not bucket_exists(step, bucket):
            raise step.absent(f"S3 bucket {bucket}")
        chosen = bucket_policy_mode(step, bucket)
    ensure_bucket(step, bucket, key, tags, chosen)
    return chosen


def _tenant_sgs(step: Step, tid: str, net: network.Network, router_sg: str) -> tuple[str, str]:
    cfg = step.cfg
    port = cfg.network.worker_port
    https = network.HTTPS_PORT
    worker = network.ensure_security_group(step, net.vpc_id, f"{cfg.name}-{tid}-workers",
                                           f"{tid}: GPU workers", tag_dict(cfg, "worker", tid))
    endpoints = network.ensure_security_group(step, net.vpc_id, f"{cfg.name}-{tid}-endpoints",
                                              f"{tid}: VPC interface endpoints", tag_dict(cfg, "endpoints", tid))
    if step.create:
        network.converge_rules(step, worker, ingress={("6", port, port, "sg", router_sg)},
                               egress={("6", https, https, "cidr", net.cidr),
                                       ("6", https, https, "pl", isolation.s3_prefix_list_id(step))})
        network.converge_rules(step, endpoints, ingress={("6", https, https, "sg", worker)}, egress=set())
    return worker, endpoints
