"""The fabric's VPCs (the tenants' and the router's): subnets, routes, security groups, NACLs,
endpoints, flow logs, peering."""

from __future__ import annotations

from comfyfab.cloud import Cloud
from comfyfab.config import FabricConfig

from ..inventory import (FABRIC_TAG, TENANT_TAG, FlowLog, Nacl, NaclEntry, Rule, SecurityGroup, Subnet,
                         Vpc)
from ._common import tag_map

ROLE_TAG = "comfyfab:role"


def _by_vpc(vpc_id: str) -> list[dict]:
    return [{"Name": "vpc-id", "Values": [vpc_id]}]


def collect_vpcs(cloud: Cloud, cfg: FabricConfig) -> tuple[Vpc, ...]:
    """Every VPC tagged with this fabric and a tenant; a tenant without one is modelled as missing."""
    ec2 = cloud.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": f"tag:{FABRIC_TAG}", "Values": [cfg.name]},
                                      {"Name": "tag-key", "Values": [TENANT_TAG]}]).get("Vpcs", [])
    peerings = ec2.describe_vpc_peering_connections().get("VpcPeeringConnections", [])
    out = [_vpc(ec2, v, peerings) for v in sorted(vpcs, key=lambda v: v["VpcId"])]
    have = {v.tenant for v in out}
    out += [Vpc(tenant=t.id, exists=False) for t in cfg.tenants if t.id not in have]
    return tuple(out)


def _vpc(ec2, raw: dict, peerings: list[dict]) -> Vpc:
    vpc_id = raw["VpcId"]
    tenant = tag_map(raw.get("Tags")).get(TENANT_TAG, "")
    tables = ec2.describe_route_tables(Filters=_by_vpc(vpc_id)).get("RouteTables", [])
    igw_tables = {rt["RouteTableId"] for rt in tables
                  if any(str(r.get("GatewayId", "")).startswith("igw-") for r in rt.get("Routes", []))}
    main = next((rt["RouteTableId"] for rt in tables
                 if any(a.get("Main") for a in rt.get("Associations", []))), None)
    explicit = {a["SubnetId"]: rt["RouteTableId"] for rt in tables
                for a in rt.get("Associations", []) if a.get("SubnetId")}
    subnets = tuple(
        Subnet(subnet_id=s["SubnetId"], cidr=s["CidrBlock"], map_public_ip=bool(s.get("MapPublicIpOnLaunch")),
               igw_route=explicit.get(s["SubnetId"], main) in igw_tables)
        for s in ec2.describe_subnets(Filters=_by_vpc(vpc_id)).get("Subnets", []))
    igws = tuple(g["InternetGatewayId"] for g in ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}]).get("InternetGateways", []))
    groups = tuple(_group(g) for g in ec2.describe_security_groups(Filters=_by_vpc(vpc_id)).get("SecurityGroups", []))
    nacls = tuple(
        Nacl(nacl_id=n["NetworkAclId"], is_default=bool(n.get("IsDefault")),
             subnet_ids=tuple(a["SubnetId"] for a in n.get("Associations", []) if a.get("SubnetId")),
             entries=tuple(NaclEntry(rule_number=e["RuleNumber"], egress=bool(e["Egress"]),
                                     action=e["RuleAction"], protocol=str(e["Protocol"]),
                                     cidr=e.get("CidrBlock") or e.get("Ipv6CidrBlock"))
                           for e in n.get("Entries", [])))
        for n in ec2.describe_network_acls(Filters=_by_vpc(vpc_id)).get("NetworkAcls", []))
    prefix = f"com.amazonaws.{ec2.meta.region_name}."
    live = [e for e in ec2.describe_vpc_endpoints(Filters=_by_vpc(vpc_id)).get("VpcEndpoints", [])
            if e.get("State", "available").lower() in ("available", "pending", "pendingacceptance")]
    endpoints = tuple(sorted(e["ServiceName"].removeprefix(prefix) for e in live))
    endpoint_groups = tuple(sorted({g["GroupId"] for e in live for g in e.get("Groups", []) if g.get("GroupId")}))
    resources = [vpc_id, *(s.subnet_id for s in subnets)]
    flow_logs = _flow_logs(ec2, resources)
    peers: list[str] = []
    for p in peerings:
        if p.get("Status", {}).get("Code") not in ("active", "pending-acceptance", "provisioning"):
            continue
        ends = (p.get("RequesterVpcInfo", {}).get("VpcId"), p.get("AccepterVpcInfo", {}).get("VpcId"))
        if vpc_id in ends:
            peers.extend(e for e in ends if e and e != vpc_id)
    return Vpc(tenant=tenant, vpc_id=vpc_id, cidr=raw.get("CidrBlock"), subnets=subnets, igw_ids=igws,
               security_groups=groups, nacls=nacls, endpoints=endpoints, flow_logs=flow_logs,
               peer_vpcs=tuple(sorted(peers)), endpoint_groups=endpoint_groups)


def _group(g: dict) -> SecurityGroup:
    rules: list[Rule] = []
    for p in g.get("IpPermissions", []):
        base = dict(protocol=str(p.get("IpProtocol")), from_port=p.get("FromPort"), to_port=p.get("ToPort"))
        rules += [Rule(**base, cidr=r["CidrIp"]) for r in p.get("IpRanges", [])]
        rules += [Rule(**base, cidr=r["CidrIpv6"]) for r in p.get("Ipv6Ranges", [])]
        rules += [Rule(**base, source_group=r["GroupId"]) for r in p.get("UserIdGroupPairs", [])]
        rules += [Rule(**base, prefix_list=r["PrefixListId"]) for r in p.get("PrefixListIds", [])]
    return SecurityGroup(group_id=g["GroupId"], name=g.get("GroupName", ""), vpc_id=g.get("VpcId", ""),
                         ingress=tuple(rules), tags=tag_map(g.get("Tags")))


def _flow_logs(ec2, resources: list[str]) -> tuple[FlowLog, ...]:
    return tuple(
        FlowLog(flow_log_id=f["FlowLogId"], resource_id=f["ResourceId"], status=f.get("FlowLogStatus", ""),
                destination_type=f.get("LogDestinationType", "cloud-watch-logs"), log_group=f.get("LogGroupName"))
        for f in ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": resources}]).get("FlowLogs", []))


def collect_router_vpcs(cloud: Cloud, cfg: FabricConfig) -> tuple[Vpc, ...]:
    """This fabric's VPCs that belong to no tenant (the router's), in full, as the tenant VPCs are read."""
    ec2 = cloud.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": f"tag:{FABRIC_TAG}", "Values": [cfg.name]}]).get("Vpcs", [])
    shared = [v for v in sorted(vpcs, key=lambda v: v["VpcId"]) if TENANT_TAG not in tag_map(v.get("Tags"))]
    if not shared:
        return ()
    peerings = ec2.describe_vpc_peering_connections().get("VpcPeeringConnections", [])
    return tuple(_vpc(ec2, v, peerings) for v in shared)


def collect_router_groups(cloud: Cloud, cfg: FabricConfig) -> tuple[str, ...]:
    """Security groups of the inference router: this fabric's, tagged role=router, or untagged and so
    named (a group tagged with another role, such as the router VPC's endpoint group, is not the router)."""
    ec2 = cloud.client("ec2")
    groups = ec2.describe_security_groups(
        Filters=[{"Name": f"tag:{FABRIC_TAG}", "Values": [cfg.name]}]).get("SecurityGroups", [])
    return tuple(sorted(g["GroupId"] for g in groups if _has_role(g, "router")))


def _has_role(group: dict, role: str) -> bool:
    tagged = tag_map(group.get("Tags")).get(ROLE_TAG)
    return tagged == role if tagged is not None else role in group.get("GroupName", "").lower()
