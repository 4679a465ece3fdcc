"""Tenant VPCs, security groups, peering, the NACL, endpoints and flow logs, read back through the API."""
from __future__ import annotations

import ipaddress
import json

from hypothesis import given
from hypothesis import strategies as st

from pipeline.provision.network import subnet_cidrs
from pipeline.provision.names import FABRIC_TAG, TENANT_TAG

from .conftest import tags_of


def _vpc(ec2, vpc_id):
    return ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]


def test_tenant_vpcs_have_two_private_subnets_in_two_zones_and_no_internet_path(fabric):
    ec2 = fabric.cloud.client("ec2")
    for t in fabric.cfg.tenants:
        tr = fabric.res.tenants[t.id]
        vpc = _vpc(ec2, tr.vpc_id)
        assert vpc["CidrBlock"] == t.vpc_cidr
        tags = tags_of(vpc["Tags"])
        assert tags[TENANT_TAG] == t.id and tags[FABRIC_TAG] == fabric.cfg.name
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [tr.vpc_id]}])["Subnets"]
        assert sorted(s["SubnetId"] for s in subnets) == sorted(tr.subnet_ids) and len(subnets) == 2
        assert len({s["AvailabilityZone"] for s in subnets}) == 2
        for s in subnets:
            assert s["MapPublicIpOnLaunch"] is False
            assert ipaddress.ip_network(s["CidrBlock"]).subnet_of(ipaddress.ip_network(t.vpc_cidr))
        igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [tr.vpc_id]}])
        assert igws["InternetGateways"] == []
        for rt in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [tr.vpc_id]}])["RouteTables"]:
            for r in rt["Routes"]:
                assert not str(r.get("GatewayId", "")).startswith("igw-")
                assert r.get("DestinationCidrBlock") != "0.0.0.0/0"
        rt = ec2.describe_route_tables(RouteTableIds=[tr.route_table_id])["RouteTables"][0]
        assert {a["SubnetId"] for a in rt["Associations"] if a.get("SubnetId")} == set(tr.subnet_ids)
        assert {"DestinationCidrBlock": fabric.cfg.network.router_cidr, "VpcPeeringConnectionId": tr.peering_id} \
            .items() <= next(r for r in rt["Routes"] if r.get("VpcPeeringConnectionId")).items()
    assert len({tr.vpc_id for tr in fabric.res.tenants.values()}) == len(fabric.cfg.tenants)


def test_worker_security_group_admits_only_the_worker_port_from_the_router_group(fabric):
    ec2 = fabric.cloud.client("ec2")
    port = fabric.cfg.network.worker_port
    for tr in fabric.res.tenants.values():
        sg = ec2.describe_security_groups(GroupIds=[tr.worker_sg_id])["SecurityGroups"][0]
        assert sg["VpcId"] == tr.vpc_id
        (perm,) = sg["IpPermissions"]
        assert (perm["IpProtocol"], perm["FromPort"], perm["ToPort"]) == ("tcp", port, port)
        assert [g["GroupId"] for g in perm["UserIdGroupPairs"]] == [fabric.res.router_sg_id]
        assert perm.get("IpRanges", []) == [] and perm.get("Ipv6Ranges", []) == []
        for egress in sg["IpPermissionsEgress"]:
            assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
            assert all(r["CidrIp"] != "0.0.0.0/0" for r in egress.get("IpRanges", []))
        # HTTPS out to the gateway services' prefix lists: S3 (outputs) and DynamoDB (job records)
        pls = {p["PrefixListId"] for e in sg["IpPermissionsEgress"] for p in e.get("PrefixListIds", [])}
        names = {p["PrefixListName"] for p in ec2.describe_managed_prefix_lists(PrefixListIds=sorted(pls))["PrefixLists"]}
        assert names == {f"com.amazonaws.{fabric.cfg.region}.{g}" for g in ("s3", "dynamodb")}
        ep = ec2.describe_security_groups(GroupIds=[tr.endpoint_sg_id])["SecurityGroups"][0]
        assert [g["GroupId"] for p in ep["IpPermissions"] for g in p["UserIdGroupPairs"]] == [tr.worker_sg_id]
    router = ec2.describe_security_groups(GroupIds=[fabric.res.router_sg_id])["SecurityGroups"][0]
    assert router["VpcId"] == fabric.res.router_vpc_id and router["IpPermissions"] == []
    assert tags_of(router["Tags"])["comfyfab:role"] == "router" and TENANT_TAG not in tags_of(router["Tags"])
    port = fabric.cfg.network.worker_port
    out = {(p["FromPort"], r["CidrIp"]) for p in router["IpPermissionsEgress"] for r in p["IpRanges"]}
    # the workers on their port; the router VPC's own interface endpoints on 443; nothing else by address
    assert out == {(port, t.vpc_cidr) for t in fabric.cfg.tenants} | {(443, fabric.cfg.network.router_cidr)}
    pls = {p["PrefixListId"] for e in router["IpPermissionsEgress"] for p in e.get("PrefixListIds", [])}
    names = {p["PrefixListName"] for p in ec2.describe_managed_prefix_lists(PrefixListIds=sorted(pls))["PrefixLists"]}
    assert names == {f"com.amazonaws.{fabric.cfg.region}.dynamodb"}   # the job table, through its gateway


def test_router_vpc_reaches_the_job_table_queues_and_logs_through_endpoints(fabric):
    ec2 = fabric.cloud.client("ec2")
    cfg, res = fabric.cfg, fabric.res
    assert set(res.router_endpoint_ids) == set(cfg.network.router_endpoints) == {"dynamodb", "sqs", "logs"}
    eps = {e["VpcEndpointId"]: e for e in ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [res.router_vpc_id]}])["VpcEndpoints"]}
    assert set(eps) == set(res.router_endpoint_ids.values())
    [endpoint_sg] = [g for g in ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [res.router_vpc_id]}, {"Name": "group-name", "Values": [f"{cfg.name}-router-endpoints"]}]
    )["SecurityGroups"]]
    assert [g["GroupId"] for p in endpoint_sg["IpPermissions"] for g in p["UserIdGroupPairs"]] == [res.router_sg_id]
    for short, vpce in res.router_endpoint_ids.items():
        e = eps[vpce]
        if short == "dynamodb":
            assert e["VpcEndpointType"] == "Gateway" and e["RouteTableIds"] == [res.router_route_table_id]
            [stmt] = json.loads(e["PolicyDocument"])["Statement"]
            assert stmt["Resource"] == [res.table_arn, f"{res.table_arn}/index/*"]
            from pipeline.provision.iam import router_policy   # the endpoint admits what the role may do
            [records] = [x for x in router_policy([], [], [], "t", "g")["Statement"] if x["Sid"] == "JobRecords"]
            assert sorted(stmt["Action"]) == sorted(records["Action"])
        else:
            assert e["VpcEndpointType"] == "Interface" and sorted(e["SubnetIds"]) == sorted(res.router_subnet_ids)
            assert [g["GroupId"] for g in e["Groups"]] == [endpoint_sg["GroupId"]] and e["PrivateDnsEnabled"]


def test_router_vpc_peers_with_every_tenant_vpc(fabric):
    ec2 = fabric.cloud.client("ec2")
    router_vpc = _vpc(ec2, fabric.res.router_vpc_id)
    assert router_vpc["CidrBlock"] == fabric.cfg.network.router_cidr
    for tr in fabric.res.tenants.values():
        (pcx,) = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[tr.peering_id])["VpcPeeringConnections"]
        assert pcx["Status"]["Code"] == "active"
        assert (pcx["RequesterVpcInfo"]["VpcId"], pcx["AccepterVpcInfo"]["VpcId"]) == (router_vpc["VpcId"], tr.vpc_id)
        rt = ec2.describe_route_tables(RouteTableIds=[fabric.res.router_route_table_id])["RouteTables"][0]
        assert any(r.get("DestinationCidrBlock") == tr.vpc_cidr and r.get("VpcPeeringConnectionId") == tr.peering_id
                   for r in rt["Routes"])
    assert len({tr.peering_id for tr in fabric.res.tenants.values()}) == len(fabric.cfg.tenants)


def test_nacl_allows_only_endpoint_and_router_traffic_and_ends_in_explicit_denies(fabric):
    ec2 = fabric.cloud.client("ec2")
    cfg = fabric.cfg
    for t in cfg.tenants:
        tr = fabric.res.tenants[t.id]
        nacl = ec2.describe_network_acls(NetworkAclIds=[tr.nacl_id])["NetworkAcls"][0]
        assert nacl["VpcId"] == tr.vpc_id and not nacl["IsDefault"]
        assert {a["SubnetId"] for a in nacl["Associations"]} == set(tr.subnet_ids)
        entries = [e for e in nacl["Entries"] if e["RuleNumber"] != 32767]
        for egress in (True, False):
            rules = sorted((e for e in entries if e["Egress"] is egress), key=lambda e: e["RuleNumber"])
            last = rules[-1]
            assert (last["RuleAction"], last["Protocol"], last["CidrBlock"]) == ("deny", "-1", "0.0.0.0/0")
            for e in rules[:-1]:
                assert e["RuleAction"] == "allow" and e["Protocol"] == "6"
                assert e["CidrBlock"] != "0.0.0.0/0"
        egress_ports = {(e["CidrBlock"], e["PortRange"]["From"]) for e in entries if e["Egress"] and e["RuleAction"] == "allow"}
        ddb_list = ec2.describe_managed_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [
            f"com.amazonaws.{cfg.region}.dynamodb"]}])["PrefixLists"][0]["PrefixListId"]
        for entry in ec2.get_managed_prefix_list_entries(PrefixListId=ddb_list)["Entries"]:
            assert (entry["Cidr"], 443) in egress_ports   # the job table, through its gateway endpoint
        assert (t.vpc_cidr, 443) in egress_ports and (cfg.network.router_cidr, 1024) in egress_ports
        assert {p for _, p in egress_ports} == {443, 1024}
        ingress = [e for e in entries if not e["Egress"] and e["RuleAction"] == "allow"]
        assert any(e["CidrBlock"] == cfg.network.router_cidr and e["PortRange"] == {
            "From": cfg.network.worker_port, "To": cfg.network.worker_port} for e in ingress)


def test_endpoints_for_s3_dynamodb_sqs_and_ecr_stay_inside_the_vpc(fabric):
    ec2 = fabric.cloud.client("ec2")
    cfg = fabric.cfg
    for tr in fabric.res.tenants.values():
        assert set(tr.endpoint_ids) == set(cfg.network.vpc_endpoints)
        eps = {e["VpcEndpointId"]: e for e in ec2.describe_vpc_endpoints(
            Filters=[{"Name": "vpc-id", "Values": [tr.vpc_id]}])["VpcEndpoints"]}
        assert set(eps) == set(tr.endpoint_ids.values())
        for short, vpce in tr.endpoint_ids.items():
            e = eps[vpce]
            assert e["ServiceName"] == f"com.amazonaws.{cfg.region}.{short}"
            if short == "s3":
                assert e["VpcEndpointType"] == "Gateway" and e["RouteTableIds"] == [tr.route_table_id]
                policy = json.loads(e["PolicyDocument"])
                resources = {r for s in policy["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str)
                                                                     else s["Resource"])}
                assert f"arn:aws:s3:::{tr.bucket}/*" in resources
                assert not any(o.bucket in r for o in fabric.res.tenants.values() if o is not tr for r in resources)
            elif short == "dynamodb":   # the job table, for a worker's reads and updates, and nothing else
                assert e["VpcEndpointType"] == "Gateway" and e["RouteTableIds"] == [tr.route_table_id]
                [stmt] = json.loads(e["PolicyDocument"])["Statement"]
                assert stmt["Resource"] == [fabric.res.table_arn]
                assert stmt["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
            else:
                assert e["VpcEndpointType"] == "Interface" and sorted(e["SubnetIds"]) == sorted(tr.subnet_ids)
                assert [g["GroupId"] for g in e["Groups"]] == [tr.endpoint_sg_id] and e["PrivateDnsEnabled"]


def test_flow_logs_of_each_vpc_go_to_the_tenant_log_group(fabric):
    ec2 = fabric.cloud.client("ec2")
    for t in fabric.cfg.tenants:
        tr = fabric.res.tenants[t.id]
        (fl,) = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [tr.vpc_id]}])["FlowLogs"]
        assert fl["FlowLogId"] == tr.flow_log_id
        assert (fl["TrafficType"], fl["LogDestinationType"]) == ("ALL", "cloud-watch-logs")
        assert fl["LogGroupName"] == tr.flow_log_group == fabric.cfg.flow_log_group(t.id)
        assert fl["DeliverLogsPermissionArn"] == tr.flow_log_role_arn


@given(prefix=st.integers(8, 24), base=st.integers(0, 2**32 - 1))
def test_subnet_cidrs_are_disjoint_blocks_inside_the_vpc(prefix, base):
    vpc = ipaddress.ip_network((base, prefix), strict=False)
    a, b = (ipaddress.ip_network(c) for c in subnet_cidrs(str(vpc)))
    assert a.subnet_of(vpc) and b.subnet_of(vpc) and not a.overlaps(b)
    assert a.prefixlen == b.prefixlen == prefix + 4
