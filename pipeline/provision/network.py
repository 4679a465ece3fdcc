"""VPCs: private subnets, route tables, security groups and the router peering.

Each tenant VPC has two private subnets in two availability zones, no
internet gateway and no public IPs on launch.  The router lives in its own
VPC (``network.router_cidr``) and reaches each tenant over a VPC peering
connection; the worker security group admits TCP ``network.worker_port``
from the router's security group and nothing else.  Resources are found
again by their comfyfab tags, so a second run creates nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from .context import Step
from .errors import ProvisioningError
from .names import tag_list

SUBNETS_PER_VPC = 2
HTTPS_PORT = 443


def tag_filters(tags: dict[str, str]) -> list[dict]:
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]


def tag_spec(resource_type: str, tags: dict[str, str], name: str) -> list[dict]:
    return [{"ResourceType": resource_type, "Tags": tag_list({**tags, "Name": name})}]


def _one(items: list[dict], what: str) -> dict | None:
    if len(items) > 1:
        ids = [next((v for k, v in i.items() if k.endswith("Id")), "?") for i in items]
        raise ProvisioningError(f"{len(items)} resources match {what}: {ids}; expected one (remove the extras)")
    return items[0] if items else None


@dataclass(frozen=True)
class Network:
    """One VPC with its private subnets and its explicit route table."""

    vpc_id: str
    cidr: str
    subnet_ids: tuple[str, ...]
    route_table_id: str


def _zones(step: Step) -> list[str]:
    zones = step.client("ec2").describe_availability_zones(
        Filters=[{"Name": "state", "Values": ["available"]}])["AvailabilityZones"]
    names = sorted(z["ZoneName"] for z in zones)
    if len(names) < SUBNETS_PER_VPC:
        raise ProvisioningError(f"region {step.region} has {len(names)} available zones; need {SUBNETS_PER_VPC}")
    return names[:SUBNETS_PER_VPC]


def subnet_cidrs(vpc_cidr: str) -> list[str]:
    """The first two sub-blocks, each 1/16 of the VPC (a /16 gives two /20s)."""
    net = ipaddress.ip_network(vpc_cidr)
    new_prefix = min(net.prefixlen + 4, 28)
    if new_prefix <= net.prefixlen:
        raise ProvisioningError(f"VPC CIDR {vpc_cidr} is too small for {SUBNETS_PER_VPC} subnets")
    blocks = net.subnets(new_prefix=new_prefix)
    return [str(next(blocks)) for _ in range(SUBNETS_PER_VPC)]


def ensure_network(step: Step, cidr: str, tags: dict[str, str], name: str) -> Network:
    """A VPC on ``cidr`` with two private subnets and one explicit route table (no IGW route)."""
    ec2 = step.client("ec2")
    vpc = _one(ec2.describe_vpcs(Filters=tag_filters(tags))["Vpcs"], f"VPC {name}")
    if vpc is None:
        if not step.create:
            raise step.absent(f"VPC {name} ({cidr})")
        step.say(f"creating VPC {name} ({cidr})")
        vpc = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=tag_spec("vpc", tags, name))["Vpc"]
    elif vpc["CidrBlock"] != cidr:
        raise ProvisioningError(f"VPC {name} ({vpc['VpcId']}) has CIDR {vpc['CidrBlock']}, config says {cidr}")
    vpc_id = vpc["VpcId"]
    if step.create:
        # Interface endpoints with private DNS need both attributes.
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    by_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    existing = {s["CidrBlock"]: s for s in ec2.describe_subnets(Filters=by_vpc)["Subnets"]}
    subnet_ids = []
    for i, (block, zone) in enumerate(zip(subnet_cidrs(cidr), _zones(step))):
        subnet = existing.get(block)
        if subnet is None:
            if not step.create:
                raise step.absent(f"subnet {block} of VPC {name}")
            subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=block, AvailabilityZone=zone,
                                       TagSpecifications=tag_spec("subnet", {**tags, "comfyfab:tier": "private"},
                                                                  f"{name}-private-{i}"))["Subnet"]
        if step.create:
            ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": False})
        subnet_ids.append(subnet["SubnetId"])
    rt = _one([r for r in ec2.describe_route_tables(Filters=by_vpc + tag_filters(tags))["RouteTables"]
               if r["VpcId"] == vpc_id], f"route table of {name}")
    if rt is None:
        if not step.create:
            raise step.absent(f"route table of VPC {name}")
        rt = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=tag_spec("route-table", tags, f"{name}-private"))[
            "RouteTable"]
    associated = {a.get("SubnetId") for a in rt.get("Associations", [])}
    for sid in subnet_ids:
        if sid not in associated:
            if not step.create:
                raise step.absent(f"route table association of subnet {sid} ({name})")
            ec2.associate_route_table(RouteTableId=rt["RouteTableId"], SubnetId=sid)
    return Network(vpc_id=vpc_id, cidr=cidr, subnet_ids=tuple(subnet_ids), route_table_id=rt["RouteTableId"])


# -- security groups -----------------------------------------------------------

Perm = tuple[str, int, int, str, str]   # (protocol, from, to, "cidr"|"sg"|"pl", value)


def _flatten(permissions: Iterable[dict]) -> set[Perm]:
    out: set[Perm] = set()
    for p in permissions:
        proto, lo, hi = str(p["IpProtocol"]), int(p.get("FromPort", -1)), int(p.get("ToPort", -1))
        out.update((proto, lo, hi, "cidr", r["CidrIp"]) for r in p.get("IpRanges", []))
        out.update((proto, lo, hi, "sg", g["GroupId"]) for g in p.get("UserIdGroupPairs", []))
        out.update((proto, lo, hi, "pl", pl["PrefixListId"]) for pl in p.get("PrefixListIds", []))
    return out


def _permission(perm: Perm) -> dict:
    proto, lo, hi, kind, value = perm
    p: dict = {"IpProtocol": proto}
    if proto != "-1":
        p.update(FromPort=lo, ToPort=hi)
    if kind == "cidr":
        p["IpRanges"] = [{"CidrIp": value}]
    elif kind == "sg":
        p["UserIdGroupPairs"] = [{"GroupId": value}]
    else:
        p["PrefixListIds"] = [{"PrefixListId": value}]
    return p


def ensure_security_group(step: Step, vpc_id: str, name: str, description: str, tags: dict[str, str]) -> str:
    ec2 = step.client("ec2")
    sg = _one([g for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                     {"Name": "group-name", "Values": [name]}])["SecurityGroups"]
               if g["VpcId"] == vpc_id and g["GroupName"] == name],
              f"security group {name}")
    if sg is None:
        if not step.create:
            raise step.absent(f"security group {name}")
        step.say(f"creating security group {name}")
        return ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc_id,
                                         TagSpecifications=tag_spec("security-group", tags, name))["GroupId"]
    return sg["GroupId"]


def converge_rules(step: Step, group_id: str, ingress: set[Perm], egress: set[Perm]) -> None:
    """Make the group's rules exactly ``ingress`` and ``egress``: revoke the rest (the default allow-all too)."""
    ec2 = step.client("ec2")
    sg = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    for want, have, revoke, grant in (
        (ingress, _flatten(sg.get("IpPermissions", [])),
         ec2.revoke_security_group_ingress, ec2.authorize_security_group_ingress),
        (egress, _flatten(sg.get("IpPermissionsEgress", [])),
         ec2.revoke_security_group_egress, ec2.authorize_security_group_egress),
    ):
        extra, missing = sorted(have - want), sorted(want - have)
        if extra:
            revoke(GroupId=group_id, IpPermissions=[_permission(p) for p in extra])
        if missing:
            grant(GroupId=group_id, IpPermissions=[_permission(p) for p in missing])


def rules_of(step: Step, group_id: str) -> tuple[set[Perm], set[Perm]]:
    sg = step.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return _flatten(sg.get("IpPermissions", [])), _flatten(sg.get("IpPermissionsEgress", []))


# -- peering -----------------------------------------------------------------------

def ensure_peering(step: Step, router: Network, tenant: Network, tags: dict[str, str], name: str) -> str:
    """An active peering connection router VPC -> tenant VPC, with routes both ways."""
    ec2 = step.client("ec2")
    found = [p for p in ec2.describe_vpc_peering_connections(Filters=[
        {"Name": "requester-vpc-info.vpc-id", "Values": [router.vpc_id]},
        {"Name": "accepter-vpc-info.vpc-id", "Values": [tenant.vpc_id]},
    ])["VpcPeeringConnections"]
        # Filter again here: not every backend honours both filters (moto 5.2 ignores the accepter one).
        if p["Status"]["Code"] in ("active", "pending-acceptance", "provisioning")
        and p["RequesterVpcInfo"]["VpcId"] == router.vpc_id and p["AccepterVpcInfo"]["VpcId"] == tenant.vpc_id]
    pcx = _one(found, f"peering {name}")
    if pcx is None:
        if not step.create:
            raise step.absent(f"VPC peering {name} ({router.vpc_id} -> {tenant.vpc_id})")
        step.say(f"peering {name}")
        pcx = ec2.create_vpc_peering_connection(
            VpcId=router.vpc_id, PeerVpcId=tenant.vpc_id,
            TagSpecifications=tag_spec("vpc-peering-connection", tags, name))["VpcPeeringConnection"]
    pcx_id = pcx["VpcPeeringConnectionId"]
    if pcx["Status"]["Code"] != "active":
        if not step.create:
            raise step.absent(f"acceptance of VPC peering {pcx_id} ({name})")
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
    for table, dest in ((router.route_table_id, tenant.cidr), (tenant.route_table_id, router.cidr)):
        _ensure_route(step, table, dest, pcx_id)
    return pcx_id


def _ensure_route(step: Step, table_id: str, dest: str, pcx_id: str) -> None:
    ec2 = step.client("ec2")
    rt = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
    route = next((r for r in rt.get("Routes", []) if r.get("DestinationCidrBlock") == dest), None)
    if route is not None and route.get("VpcPeeringConnectionId") == pcx_id:
        return
    if not step.create:
        raise step.absent(f"route {dest} -> {pcx_id} in {table_id}")
    if route is None:
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock=dest, VpcPeeringConnectionId=pcx_id)
    else:
        ec2.replace_route(RouteTableId=table_id, DestinationCidrBlock=dest, VpcPeeringConnectionId=pcx_id)
