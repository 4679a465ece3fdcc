"""Tenant egress isolation: the network ACL, the VPC endpoints and the flow logs.

Workers may reach four things only -- the tenant bucket (S3 gateway
endpoint), the job table (DynamoDB gateway endpoint), the queues (SQS
interface endpoint) and ECR (api + dkr interface endpoints) -- and answer
the router.  Each gateway endpoint's policy names the one bucket or table.  The network ACL says so with explicit
allow rules and an explicit deny-all in each direction; NACLs are stateless,
so the return traffic of each allowed flow is allowed on ephemeral ports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .context import Step
from .errors import ProvisioningError
from .iam import WORKER_TABLE_ACTIONS
from .network import HTTPS_PORT, Network, _one, tag_filters, tag_spec

EPHEMERAL = (1024, 65535)
DENY_ALL_RULE = 32000
ANYWHERE = "0.0.0.0/0"
TCP = "6"
NACL_RULES_PER_DIRECTION = 20   # the default AWS quota


@dataclass(frozen=True)
class NaclRule:
    """One network ACL entry as the EC2 API spells it."""

    number: int
    egress: bool
    action: str          # allow | deny
    protocol: str        # "6" tcp, "-1" all
    cidr: str
    ports: tuple[int, int] | None = None


GATEWAY_SERVICES = ("s3", "dynamodb")   # reached through the route table; every other endpoint is an interface
_NACL_BASE = {"s3": 200, "dynamodb": 300}  # first NACL rule number of each gateway service's CIDRs


def gateways(services: tuple[str, ...]) -> list[str]:
    """Which of a VPC's endpoint ``services`` are gateways, in a fixed order."""
    return [g for g in GATEWAY_SERVICES if g in services]


def endpoint_egress(step: Step, vpc_cidr: str, services: tuple[str, ...]) -> set[tuple]:
    """Security-group egress that reaches a VPC's endpoints on 443: its interface endpoints (in the VPC's
    CIDR) and each gateway service's prefix list."""
    rules: set[tuple] = {(TCP, HTTPS_PORT, HTTPS_PORT, "pl", prefix_list_id(step, g)) for g in gateways(services)}
    if any(s not in GATEWAY_SERVICES for s in services):
        rules.add((TCP, HTTPS_PORT, HTTPS_PORT, "cidr", vpc_cidr))
    return rules


def prefix_list_id(step: Step, service: str) -> str:
    """The regional managed prefix list of a gateway service (``s3`` or ``dynamodb``)."""
    name = f"com.amazonaws.{step.region}.{service}"
    lists = step.client("ec2").describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [name]}])["PrefixLists"]
    if not lists:
        raise ProvisioningError(f"no managed prefix list {name} in {step.region}")
    return lists[0]["PrefixListId"]


def gateway_cidrs(step: Step, service: str) -> list[str]:
    """The CIDRs of a gateway service's prefix list: where its endpoint's traffic goes."""
    entries = step.client("ec2").get_managed_prefix_list_entries(PrefixListId=prefix_list_id(step, service))["Entries"]
    return sorted(e["Cidr"] for e in entries)


def nacl_rules(step: Step, vpc_cidr: str) -> list[NaclRule]:
    """The tenant NACL: worker port from the router, HTTPS to the interface endpoints and to each gateway
    service's CIDRs (S3, DynamoDB), explicit deny-all."""
    cfg = step.cfg
    port = cfg.network.worker_port
    router = cfg.network.router_cidr
    rules = [
        NaclRule(100, False, "allow", TCP, router, (port, port)),        # the router calls the worker
        NaclRule(100, True, "allow", TCP, router, EPHEMERAL),           # ... and gets its answers
        NaclRule(110, True, "allow", TCP, vpc_cidr, (HTTPS_PORT, HTTPS_PORT)),  # interface endpoints
        NaclRule(110, False, "allow", TCP, vpc_cidr, EPHEMERAL),
    ]
    for service in gateways(cfg.network.vpc_endpoints):                  # through the gateway endpoints
        for i, cidr in enumerate(gateway_cidrs(step, service)):
            rules.append(NaclRule(_NACL_BASE[service] + i, True, "allow", TCP, cidr, (HTTPS_PORT, HTTPS_PORT)))
            rules.append(NaclRule(_NACL_BASE[service] + i, False, "allow", TCP, cidr, EPHEMERAL))
    rules += [NaclRule(DENY_ALL_RULE, True, "deny", "-1", ANYWHERE),
              NaclRule(DENY_ALL_RULE, False, "deny", "-1", ANYWHERE)]
    per_direction = max(sum(r.egress for r in rules), sum(not r.egress for r in rules))
    if per_direction > NACL_RULES_PER_DIRECTION:
        raise ProvisioningError(f"the tenant NACL needs {per_direction} rules per direction; AWS allows "
                                f"{NACL_RULES_PER_DIRECTION} by default (a gateway prefix list has grown)")
    return rules


def _entry_kwargs(nacl_id: str, r: NaclRule) -> dict:
    kw: dict = {"NetworkAclId": nacl_id, "RuleNumber": r.number, "Egress": r.egress, "Protocol": r.protocol,
                "RuleAction": r.action, "CidrBlock": r.cidr}
    if r.ports is not None:
        kw["PortRange"] = {"From": r.ports[0], "To": r.ports[1]}
    return kw


def _as_rule(e: dict) -> NaclRule:
    pr = e.get("PortRange")
    return NaclRule(int(e["RuleNumber"]), bool(e["Egress"]), e["RuleAction"], str(e["Protocol"]),
                    e.get("CidrBlock", ""), (int(pr["From"]), int(pr["To"])) if pr else None)


def ensure_nacl(step: Step, net: Network, tags: dict[str, str], name: str) -> str:
    """The tenant NACL with exactly :func:`nacl_rules`, associated with every tenant subnet."""
    ec2 = step.client("ec2")
    by_vpc = [{"Name": "vpc-id", "Values": [net.vpc_id]}]
    nacl = _one([n for n in ec2.describe_network_acls(Filters=by_vpc + tag_filters(tags))["NetworkAcls"]
                 if n["VpcId"] == net.vpc_id], f"NACL {name}")
    if nacl is None:
        if not step.create:
            raise step.absent(f"network ACL {name}")
        step.say(f"creating network ACL {name}")
        nacl = ec2.create_network_acl(VpcId=net.vpc_id, TagSpecifications=tag_spec("network-acl", tags, name))[
            "NetworkAcl"]
    nacl_id = nacl["NetworkAclId"]
    if step.create:
        want = {(r.number, r.egress): r for r in nacl_rules(step, net.cidr)}
        have = {(int(e["RuleNumber"]), bool(e["Egress"])): _as_rule(e) for e in nacl.get("Entries", [])
                if int(e["RuleNumber"]) != 32767}   # 32767 is the immutable default rule
        for k in sorted(set(have) - set(want)):
            ec2.delete_network_acl_entry(NetworkAclId=nacl_id, RuleNumber=k[0], Egress=k[1])
        for k, rule in sorted(want.items()):
            if k not in have:
                ec2.create_network_acl_entry(**_entry_kwargs(nacl_id, rule))
            elif have[k] != rule:
                ec2.replace_network_acl_entry(**_entry_kwargs(nacl_id, rule))
    for sid in net.subnet_ids:
        current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [sid]}])["NetworkAcls"]
        assoc = next((a for n in current for a in n.get("Associations", []) if a.get("SubnetId") == sid), None)
        if assoc is None or assoc["NetworkAclId"] != nacl_id:
            if not step.create:
                raise step.absent(f"association of subnet {sid} with network ACL {name}")
            if assoc is None:
                raise ProvisioningError(f"subnet {sid} has no network ACL association to replace")
            ec2.replace_network_acl_association(AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=nacl_id)
    return nacl_id


# -- endpoints ------------------------------------------------------------------------

def endpoint_service(step: Step, short: str) -> str:
    return f"com.amazonaws.{step.region}.{short}"


def s3_endpoint_policy(step: Step, bucket: str) -> dict:
    """The gateway endpoint reaches the tenant bucket and ECR's layer bucket (image pulls), nothing else."""
    p = step.partition
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "TenantBucket", "Effect": "Allow", "Principal": "*",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListBucket"],
         "Resource": [f"arn:{p}:s3:::{bucket}", f"arn:{p}:s3:::{bucket}/*"]},
        {"Sid": "EcrImageLayers", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:{p}:s3:::prod-{step.region}-starport-layer-bucket/*"},
    ]}


def dynamodb_endpoint_policy(table_arn: str, actions: tuple[str, ...] = WORKER_TABLE_ACTIONS) -> dict:
    """The gateway endpoint reaches the job table, for what its VPC's callers do to a record, nothing else."""
    resources = [table_arn] + ([f"{table_arn}/index/*"] if "dynamodb:Query" in actions else [])
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "JobTable", "Effect": "Allow", "Principal": "*", "Action": list(actions), "Resource": resources}]}


def ensure_endpoints(step: Step, net: Network, endpoint_sg: str | None, bucket: str | None, tags: dict[str, str],
                     name: str, table_arn: str | None = None, services: tuple[str, ...] | None = None,
                     table_actions: tuple[str, ...] = WORKER_TABLE_ACTIONS) -> dict[str, str]:
    """One endpoint per entry of ``services`` (default ``network.vpc_endpoints``): S3 and DynamoDB as
    gateways (policies naming the tenant bucket, and the job table for ``table_actions``), the rest as
    interfaces.

    ``endpoint_sg`` is needed only to create; discovery may pass None.
    """
    ec2 = step.client("ec2")
    out: dict[str, str] = {}
    for short in (step.cfg.network.vpc_endpoints if services is None else services):
        service = endpoint_service(step, short)
        found = [e for e in ec2.describe_vpc_endpoints(Filters=[
            {"Name": "vpc-id", "Values": [net.vpc_id]}, {"Name": "service-name", "Values": [service]}])["VpcEndpoints"]
            if e.get("State", "available").lower() not in ("deleted", "deleting", "failed", "rejected")
            and e["VpcId"] == net.vpc_id and e["ServiceName"] == service]
        ep = _one(found, f"endpoint {service} in {name}")
        gateway = short in GATEWAY_SERVICES
        if short == "dynamodb" and table_arn is None and step.create:
            raise ProvisioningError(f"VPC endpoint {service} in {name}: no job table to scope it to")
        if short == "s3" and bucket is None:
            raise ProvisioningError(f"VPC endpoint {service} in {name}: no bucket to scope it to")
        policy = (s3_endpoint_policy(step, bucket) if short == "s3" and bucket else
                  dynamodb_endpoint_policy(table_arn, table_actions) if gateway and table_arn else None)
        if ep is None:
            if not step.create:
                raise step.absent(f"VPC endpoint {service} in {name}")
            if endpoint_sg is None:
                raise ProvisioningError(f"VPC endpoint {service} in {name}: no security group to create it with")
            step.say(f"creating VPC endpoint {short} in {name}")
            kw: dict = {"VpcId": net.vpc_id, "ServiceName": service,
                        "TagSpecifications": tag_spec("vpc-endpoint", tags, f"{name}-{short}")}
            if gateway:
                kw.update(VpcEndpointType="Gateway", RouteTableIds=[net.route_table_id],
                          PolicyDocument=json.dumps(policy))
            else:
                kw.update(VpcEndpointType="Interface", SubnetIds=list(net.subnet_ids),
                          SecurityGroupIds=[endpoint_sg], PrivateDnsEnabled=True)
            ep = ec2.create_vpc_endpoint(**kw)["VpcEndpoint"]
        elif step.create and gateway:
            ec2.modify_vpc_endpoint(VpcEndpointId=ep["VpcEndpointId"], PolicyDocument=json.dumps(policy))
        out[short] = ep["VpcEndpointId"]
    return out


# -- flow logs -----------------------------------------------------------------------

def ensure_flow_logs(step: Step, vpc_id: str, log_group: str, role_arn: str | None, tags: dict[str, str],
                     name: str) -> str:
    """Flow logs (all traffic) of the VPC into ``log_group``; returns the flow log id."""
    ec2 = step.client("ec2")
    found = [f for f in ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]
             if f.get("LogGroupName") == log_group and f.get("ResourceId") == vpc_id]
    fl = _one(found, f"flow logs of {name}")
    if fl is not None:
        return fl["FlowLogId"]
    if not step.create:
        raise step.absent(f"flow logs of VPC {name} to {log_group}")
    if role_arn is None:
        raise ProvisioningError(f"flow logs of {name}: no delivery role to create them with")
    step.say(f"enabling flow logs of {name}")
    resp = ec2.create_flow_logs(ResourceIds=[vpc_id], ResourceType="VPC", TrafficType="ALL",
                                LogDestinationType="cloud-watch-logs", LogGroupName=log_group,
                                DeliverLogsPermissionArn=role_arn,
                                TagSpecifications=tag_spec("vpc-flow-log", tags, f"{name}-flow-logs"))
    if resp.get("Unsuccessful"):
        raise ProvisioningError(f"flow logs of {name}: {resp['Unsuccessful']}")
    return resp["FlowLogIds"][0]
