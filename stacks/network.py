"""A private network: a VPC with private subnets in two availability zones and no way out.

Isolated subnets: there is no internet gateway, NAT gateway or any route but the VPC's own local
route, so the only paths off a node lead to the VPC endpoints created here. The VPC's DNS
resolver, which would otherwise look up any name on the internet for a node (a way out for data
spelled into names), answers only the endpoints' names (Route 53 Resolver DNS Firewall).
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from planner import names
from stacks.common import assumed_by, endpoint_policy, policy_json
from stacks.settings import Lookups

# What a GPU node needs without internet: Session Manager (ssm, ssmmessages, ec2messages), image
# pulls from ECR (ecr.api, ecr.dkr; the layers come through the S3 gateway endpoint), logs. No STS:
# nothing on the nodes calls it (stacks/common.py ENDPOINT_ACTIONS).
# Where Network Access Analyzer looks for a way out (destination types its scopes accept).
EXIT_TYPES = (
    "AWS::EC2::InternetGateway",
    "AWS::EC2::TransitGatewayAttachment",
    "AWS::EC2::VPCPeeringConnection",
    "AWS::EC2::VPNGateway",
)
NODE_ENDPOINT_SERVICES = ("ssm", "ssmmessages", "ec2messages", "ecr.api", "ecr.dkr", "logs")

# Route 53 Resolver DNS Firewall. Rule groups associated with a VPC are processed by the
# association's priority, 100-9900 (AssociateFirewallRuleGroup, Route 53 API Reference; AWS's
# own example uses 101); rules inside a group by their priority, lowest first (the provider's
# ResolverFirewallRule docs). The allow-list comes first; the block-all rule after it.
DNS_ASSOCIATION_PRIORITY = 101
DNS_ALLOW_PRIORITY = 100
DNS_BLOCK_PRIORITY = 200
# A domain specification may start with `*` and is 1-255 characters (UpdateFirewallDomains);
# `*` alone matches every name.
DNS_EVERYTHING = "*"


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
    # network takes the zones that offer its instance type (stacks/settings.py pool_zones).
    zones: list[str] | None = None
    # Zones with a subnet (on the private route table) and nothing else: where a pool's load
    # balancer must also be, because its consumers' endpoints are there (stacks/settings.py
    # subnet_zones). The interface endpoints stay in `zones`, as the plan prices them.
    extra_zones: tuple[str, ...] = ()


def service_domains(service: str, region: str, account_id: str) -> list[str]:
    """The names a VPC's resolver must answer for one endpoint service (its private DNS names,
    AWS PrivateLink "AWS services" docs): `<service>.<region>.amazonaws.com`, with ECR's two
    exceptions (api.ecr.<region>..., and <account>.dkr.ecr.<region>... for this account's
    registry) and S3's virtual-hosted bucket names, which the gateway endpoint serves."""
    suffix = f"{region}.amazonaws.com"
    if service == "ecr.api":
        return [f"api.ecr.{suffix}"]
    if service == "ecr.dkr":
        return [f"{account_id}.dkr.ecr.{suffix}"]
    if service == "s3":
        # Buckets by name (the weights bucket, ECR's layer bucket): AWS answers them; a query
        # for one carries nothing to a name server outside AWS.
        return [f"s3.{suffix}", f"*.s3.{suffix}"]
    return [f"{service}.{suffix}"]


def vpc_internal_domains(region: str) -> list[str]:
    """The VPC's own host names (ip-10-0-0-1.ec2.internal): answered by the resolver itself."""
    zone = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return [zone, f"*.{zone}"]


def dns_allow_list(args: PrivateNetworkArgs) -> list[str]:
    """Every name the network's endpoints need, and nothing else, sorted."""
    region, account = args.lookups.region, args.lookups.account_id
    services = [*args.interface_services, *args.dns_services]
    if args.s3_endpoint_policy is not None:
        services.append("s3")
    domains = {n for s in services for n in service_domains(s, region, account)}
    return sorted(domains | set(vpc_internal_domains(region)))


def add_dns_firewall(
    name: str, vpc: aws.ec2.Vpc, domains: list[str], tags: dict[str, str], parent: pulumi.Resource
) -> aws.route53.ResolverFirewallRuleGroupAssociation:
    """DNS is a way out: a name the resolver looks up for a node reaches the name's servers.
    The VPC's resolver answers only the names the endpoints need (ALLOW), refuses every other
    (BLOCK `*`, NXDOMAIN, at a later priority) and fails closed when DNS Firewall cannot answer
    (firewall_fail_open DISABLED)."""
    child = pulumi.ResourceOptions(parent=parent)
    allowed = aws.route53.ResolverFirewallDomainList(
        f"{name}-dns-allowed", domains=domains, tags=tags, opts=child
    )
    everything = aws.route53.ResolverFirewallDomainList(
        f"{name}-dns-everything", domains=[DNS_EVERYTHING], tags=tags, opts=child
    )
    group = aws.route53.ResolverFirewallRuleGroup(f"{name}-dns", tags=tags, opts=child)
    aws.route53.ResolverFirewallRule(
        f"{name}-dns-allow-endpoints",
        firewall_rule_group_id=group.id,
        firewall_domain_list_id=allowed.id,
        action="ALLOW",
        priority=DNS_ALLOW_PRIORITY,
        opts=child,
    )
    aws.route53.ResolverFirewallRule(
        f"{name}-dns-block-rest",
        firewall_rule_group_id=group.id,
        firewall_domain_list_id=everything.id,
        action="BLOCK",
        block_response="NXDOMAIN",
        priority=DNS_BLOCK_PRIORITY,
        opts=child,
    )
    aws.route53.ResolverFirewallConfig(
        f"{name}-dns-fail-closed",
        resource_id=vpc.id,
        firewall_fail_open="DISABLED",
        opts=child,
    )
    return aws.route53.ResolverFirewallRuleGroupAssociation(
        f"{name}-dns",
        firewall_rule_group_id=group.id,
        vpc_id=vpc.id,
        priority=DNS_ASSOCIATION_PRIORITY,
        tags=tags,
        opts=child,
    )


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


def flow_logs_trust(lookups: Lookups) -> str:
    """The flow-log role's trust policy: the VPC Flow Logs service, for this account's flow logs
    only (the confused-deputy conditions of "IAM role for publishing flow logs to CloudWatch
    Logs", Amazon VPC user guide, docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html:
    aws:SourceAccount the account, aws:SourceArn arn:...:ec2:<region>:<account>:vpc-flow-log/*)."""
    account = lookups.account_id
    return assumed_by(
        "vpc-flow-logs.amazonaws.com",
        {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {
                "aws:SourceArn": (
                    f"arn:{lookups.partition}:ec2:{lookups.region}:{account}:vpc-flow-log/*"
                )
            },
        },
    )


def flow_logs_policy(log_group_arn: str) -> str:
    """What the flow-log role may do: write streams of its one log group. DescribeLogGroups
    (in AWS's documented policy for the role, same page) takes no resource ARN ("Actions,
    resources, and condition keys for Amazon CloudWatch Logs", Service Authorization
    Reference: no resource type for DescribeLogGroups), so it stands alone on `*`."""
    return policy_json(
        [
            {
                "Sid": "WriteTheFlowLogGroup",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                "Resource": [log_group_arn, f"{log_group_arn}:*"],
            },
            {
                "Sid": "DescribeLogGroups",
                "Effect": "Allow",
                "Action": "logs:DescribeLogGroups",
                "Resource": "*",
            },
        ]
    )


def add_flow_logs(
    name: str,
    vpc: aws.ec2.Vpc,
    kms_key_arn: pulumi.Input[str],
    retention_days: int,
    tags: dict[str, str],
    parent: pulumi.Resource,
    lookups: Lookups,
) -> aws.cloudwatch.LogGroup:
    """Every packet decision of the VPC, to a log group encrypted with the customer key."""
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-flow-logs",
        retention_in_days=retention_days,
        kms_key_id=kms_key_arn,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    role = aws.iam.Role(
        f"{name}-flow-logs",
        assume_role_policy=flow_logs_trust(lookups),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.iam.RolePolicy(
        f"{name}-flow-logs",
        role=role.id,
        policy=log_group.arn.apply(flow_logs_policy),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.ec2.FlowLog(
        f"{name}-flow-log",
        vpc_id=vpc.id,
        traffic_type="ALL",
        log_destination_type="cloud-watch-logs",
        log_destination=log_group.arn,
        iam_role_arn=role.arn,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return log_group


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
