"""A private network: a VPC with private subnets in two availability zones and no way out.

Isolated subnets: there is no internet gateway, NAT gateway or any route but the VPC's own local
route, so the only paths off a node lead to the VPC endpoints created here. The VPC's DNS
resolver, which would otherwise look up any name on the internet for a node (a way out for data
spelled into names), answers only the endpoints' names (Route 53 Resolver DNS Firewall).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from planner import names
from stacks.aws.dns_firewall import add_dns_firewall, service_domains, vpc_internal_domains
from stacks.aws.flow_logs import add_flow_logs
from stacks.aws.identity import policy_json
from stacks.aws.lookups import Lookups

# What each interface endpoint of a private network carries, by service: the actions the nodes'
# role needs there and nothing else (an endpoint policy of `Action: *` lets a stolen credential of
# this account do anything through it). Sources: the AmazonSSMManagedInstanceCore managed policy
# (ssm, ssmmessages, ec2messages; AWS Managed Policy Reference) and Systems Manager's "Reference:
# ec2messages, ssmmessages, and other API operations"; Amazon ECR, "Interface VPC endpoints
# (AWS PrivateLink)": the endpoint policy example for image pulls; the nodes' role
# (stacks/aws/identity.py) for logs and Secrets Manager. STS has no entry: nothing in the nodes
# calls it (instance credentials come from the instance metadata service), so no STS endpoint is
# created.
ENDPOINT_ACTIONS: dict[str, tuple[str, ...]] = {
    "ssm": (
        "ssm:DescribeAssociation",
        "ssm:DescribeDocument",
        "ssm:GetDeployablePatchSnapshotForInstance",
        "ssm:GetDocument",
        "ssm:GetManifest",
        "ssm:GetParameter",
        "ssm:GetParameters",
        "ssm:ListAssociations",
        "ssm:ListInstanceAssociations",
        "ssm:PutComplianceItems",
        "ssm:PutConfigurePackageResult",
        "ssm:PutInventory",
        "ssm:UpdateAssociationStatus",
        "ssm:UpdateInstanceAssociationStatus",
        "ssm:UpdateInstanceInformation",
    ),
    "ssmmessages": (
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    ),
    "ec2messages": (
        "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage",
        "ec2messages:FailMessage",
        "ec2messages:GetEndpoint",
        "ec2messages:GetMessages",
        "ec2messages:SendReply",
    ),
    "ecr.api": (
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "ecr:GetDownloadUrlForLayer",
    ),
    "ecr.dkr": (
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "ecr:GetDownloadUrlForLayer",
    ),
    "logs": ("logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"),
    "secretsmanager": ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"),
}


def endpoint_policy(service: str, lookups: Lookups) -> str:
    """An interface endpoint's policy: the service's needed actions, by this account only."""
    return policy_json(
        [
            {
                "Sid": "".join(p.capitalize() for p in re.split(r"[.-]", service)) + "ActionsOnly",
                "Effect": "Allow",
                "Principal": "*",
                "Action": list(ENDPOINT_ACTIONS[service]),
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalAccount": lookups.account_id}},
            }
        ]
    )


# Where Network Access Analyzer looks for a way out (destination types its scopes accept).
EXIT_TYPES = (
    "AWS::EC2::InternetGateway",
    "AWS::EC2::TransitGatewayAttachment",
    "AWS::EC2::VPCPeeringConnection",
    "AWS::EC2::VPNGateway",
)
# What a GPU node needs without internet: Session Manager (ssm, ssmmessages, ec2messages), image
# pulls from ECR (ecr.api, ecr.dkr; the layers come through the S3 gateway endpoint), logs. No STS:
# nothing on the nodes calls it (ENDPOINT_ACTIONS above).
NODE_ENDPOINT_SERVICES = ("ssm", "ssmmessages", "ec2messages", "ecr.api", "ecr.dkr", "logs")


@dataclass
class PrivateNetworkArgs:
    cidr: str
    lookups: Lookups
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    interface_services: tuple[str, ...] = NODE_ENDPOINT_SERVICES
    # The S3 gateway endpoint's policy (only the weights bucket); None: no S3 endpoint.
    s3_endpoint_policy: pulumi.Input[str] | None = None
    flow_log_retention_days: int = 365
    # Services the network reaches through endpoints created outside it (the caller's), whose
    # names its DNS Firewall must still answer, e.g. ("bedrock-runtime",).
    dns_services: tuple[str, ...] = ()
    # The zones of its subnets, by name; None: the region's first two (Lookups). A pool's
    # network takes the zones that offer its instance type (stacks/aws/lookups.py pool_zones).
    zones: list[str] | None = None
    # Zones with a subnet (on the private route table) and nothing else: where a pool's load
    # balancer must also be, because its consumers' endpoints are there (stacks/aws/lookups.py
    # subnet_zones). The interface endpoints stay in `zones`, as the plan prices them.
    extra_zones: tuple[str, ...] = ()


def dns_allow_list(args: PrivateNetworkArgs) -> list[str]:
    """Every name the network's endpoints need, and nothing else, sorted."""
    region, account = args.lookups.region, args.lookups.account_id
    services = [*args.interface_services, *args.dns_services]
    if args.s3_endpoint_policy is not None:
        services.append("s3")
    domains = {n for s in services for n in service_domains(s, region, account)}
    return sorted(domains | set(vpc_internal_domains(region)))


def subnet_cidrs(cidr: str, count: int, new_prefix: int = 20) -> list[str]:
    """The first `count` subnets of the VPC's CIDR at the given prefix length."""
    network = ipaddress.ip_network(cidr)
    prefix = max(new_prefix, network.prefixlen + 2)
    found = [str(subnet) for subnet in itertools.islice(network.subnets(new_prefix=prefix), count)]
    if len(found) < count:
        raise pulumi.RunError(
            f"network {cidr} holds {len(found)} subnets of /{prefix}, but it needs {count} (one "
            "per availability zone): give the pools a larger range (`network: pools:` in the "
            "workloads file) and plan again"
        )
    return found


class PrivateNetwork(pulumi.ComponentResource):
    """VPC, private subnets, flow logs, the VPC endpoints the nodes need, and a DNS Firewall
    that answers only their names."""

    vpc: aws.ec2.Vpc
    subnets: list[aws.ec2.Subnet]
    route_table: aws.ec2.RouteTable
    endpoint_security_group: aws.ec2.SecurityGroup
    s3_endpoint: aws.ec2.VpcEndpoint | None

    def __init__(
        self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(names.PRIVATE_NETWORK, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        lookups, tags = args.lookups, args.tags
        self.cidr = args.cidr
        # The zones of the endpoints (and of a pool's nodes), then the load balancer's others.
        self.service_zones = list(args.zones or lookups.availability_zones)
        extra = sorted(set(args.extra_zones) - set(self.service_zones))
        self.zones = [*self.service_zones, *extra]
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # private DNS names of interface endpoints need both
            tags={**tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        self.subnets = [
            aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**tags, "Name": f"{name}-private-{zone}"},
                opts=child,
            )
            for zone, cidr in zip(self.zones, subnet_cidrs(args.cidr, len(self.zones)), strict=True)
        ]
        # One route table with the local route only: nothing leaves the VPC.
        self.route_table = aws.ec2.RouteTable(
            f"{name}-private",
            vpc_id=self.vpc.id,
            tags={**tags, "Name": f"{name}-private"},
            opts=child,
        )
        for subnet, zone in zip(self.subnets, self.zones, strict=True):
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}",
                subnet_id=subnet.id,
                route_table_id=self.route_table.id,
                opts=child,
            )
        self.flow_logs = add_flow_logs(
            name, self.vpc, args.kms_key_arn, args.flow_log_retention_days, tags, self, lookups
        )

        self.endpoint_security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=self.vpc.id,
            description="Interface endpoints: HTTPS from inside the VPC only",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-https",
            security_group_id=self.endpoint_security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=args.cidr,
            description="HTTPS from the VPC",
            tags=tags,
            opts=child,
        )
        self.interface_endpoints = {
            service: aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{lookups.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[subnet.id for subnet in self.subnets[: len(self.service_zones)]],
                security_group_ids=[self.endpoint_security_group.id],
                policy=endpoint_policy(service, lookups),
                tags=tags,
                opts=child,
            )
            for service in args.interface_services
        }
        self.s3_endpoint = None
        if args.s3_endpoint_policy is not None:
            self.s3_endpoint = aws.ec2.VpcEndpoint(
                f"{name}-s3",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{lookups.region}.s3",
                vpc_endpoint_type="Gateway",
                route_table_ids=[self.route_table.id],
                policy=args.s3_endpoint_policy,
                tags=tags,
                opts=child,
            )
        self.dns_domains = dns_allow_list(args)
        self.dns_firewall = add_dns_firewall(name, self.vpc, self.dns_domains, tags, self)
        # For AWS to confirm after `pulumi up` what `planner verify` proves before it: a Network
        # Access Analyzer scope matching any path from this VPC to an internet gateway, a transit
        # gateway attachment, a peering connection or a VPN gateway (NAT gateways are "through"
        # resources: their paths end at an internet gateway). The scope itself costs nothing.
        # It cannot cover DNS: Network Access Analyzer's resource statements name no Route 53
        # Resolver component ("Network Access Analyzer resource statements", Amazon VPC docs),
        # so the resolver's way out is shut by the DNS Firewall above and checked by verify.
        self.access_scope = aws.ec2.NetworkInsightsAccessScope(
            f"{name}-no-way-out",
            match_paths=[
                {
                    "source": {"resource_statement": {"resources": [self.vpc.id]}},
                    "destination": {"resource_statement": {"resource_types": list(EXIT_TYPES)}},
                }
            ],
            tags=tags,
            opts=child,
        )
        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "subnet_ids": [subnet.id for subnet in self.subnets],
                "route_table_id": self.route_table.id,
            }
        )
