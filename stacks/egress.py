"""The network boundary for `contractual` cloud APIs: consumers reach the providers' API hosts only
through AWS Network Firewall (a domain allow-list of those hosts) and a NAT gateway; their security
groups allow HTTPS out only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from stacks.api_access import WorkloadCost
from stacks.common import fixed_monthly_usd, kms_key, policy_json
from stacks.network import add_flow_logs, subnet_cidrs
from stacks.settings import Lookups


@dataclass
class EgressNetworkArgs:
    cidr: str
    lookups: Lookups
    hosts: list[str]
    workloads: list[WorkloadCost]
    tags: dict[str, str]
    protect: bool


def _firewall_endpoint(statuses: Sequence[Any] | None) -> str | None:
    """The firewall's VPC endpoint id, once AWS has created it (unknown during a preview)."""
    for status in statuses or []:
        for state in status.get("sync_states") or []:
            for attachment in state.get("attachments") or []:
                if attachment.get("endpoint_id"):
                    return str(attachment["endpoint_id"])
    return None


class EgressNetwork(pulumi.ComponentResource):
    """Consumers -> Network Firewall (allow-list of API hosts) -> NAT gateway -> internet."""

    def __init__(
        self, name: str, args: EgressNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-infra-planner:index:EgressNetwork", name, None, opts)
        lookups, tags = args.lookups, args.tags
        child = pulumi.ResourceOptions(parent=self)
        zones = lookups.availability_zones
        key = kms_key(
            f"{name}-key", "ai-infra-planner: API egress network logs", lookups, tags,
            args.protect, self, services=["logs"],
        )  # fmt: skip
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={**tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        cidrs = subnet_cidrs(args.cidr, len(zones) + 2, new_prefix=22)
        private_cidrs, firewall_cidr, public_cidr = cidrs[: len(zones)], cidrs[-2], cidrs[-1]

        def subnet(label: str, zone: str, cidr: str) -> aws.ec2.Subnet:
            return aws.ec2.Subnet(
                f"{name}-{label}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,  # the NAT gateway has the only public address
                tags={**tags, "Name": f"{name}-{label}"},
                opts=child,
            )

        self.private_subnets = [
            subnet(f"private-{zone}", zone, cidr)
            for zone, cidr in zip(zones, private_cidrs, strict=True)
        ]
        firewall_subnet = subnet("firewall", zones[0], firewall_cidr)
        public_subnet = subnet("public", zones[0], public_cidr)

        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags=tags, opts=child)
        address = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags=tags, opts=child)
        nat = aws.ec2.NatGateway(
            f"{name}-nat",
            subnet_id=public_subnet.id,
            allocation_id=address.id,
            tags=tags,
            opts=child,
        )

        rule_group = aws.networkfirewall.RuleGroup(
            f"{name}-allow-list",
            type="STATEFUL",
            capacity=100,
            description="the planned providers' API hosts, nothing else",
            rule_group={
                "rules_source": {
                    "rules_source_list": {
                        "generated_rules_type": "ALLOWLIST",
                        "target_types": ["TLS_SNI", "HTTP_HOST"],
                        "targets": sorted(args.hosts),
                    }
                }
            },
            tags=tags,
            opts=child,
        )
        policy = aws.networkfirewall.FirewallPolicy(
            f"{name}-policy",
            firewall_policy={
                "stateless_default_actions": ["aws:forward_to_sfe"],
                "stateless_fragment_default_actions": ["aws:forward_to_sfe"],
                "stateful_rule_group_references": [{"resource_arn": rule_group.arn}],
            },
            tags=tags,
            opts=child,
        )
        self.firewall = aws.networkfirewall.Firewall(
            f"{name}-firewall",
            vpc_id=self.vpc.id,
            firewall_policy_arn=policy.arn,
            subnet_mappings=[{"subnet_id": firewall_subnet.id}],
            delete_protection=args.protect,
            tags=tags,
            opts=child,
        )
        endpoint = self.firewall.firewall_statuses.apply(_firewall_endpoint)

        # Consumers' default route goes to the firewall; the firewall's to the NAT gateway; the
        # public subnet's to the internet gateway, and its way back to the consumers through the
        # firewall again so that it sees both directions.
        def route_table(label: str, subnets: list[aws.ec2.Subnet]) -> aws.ec2.RouteTable:
            table = aws.ec2.RouteTable(
                f"{name}-{label}",
                vpc_id=self.vpc.id,
                tags={**tags, "Name": f"{name}-{label}"},
                opts=child,
            )
            for index, each in enumerate(subnets):
                aws.ec2.RouteTableAssociation(
                    f"{name}-{label}-{index}",
                    subnet_id=each.id,
                    route_table_id=table.id,
                    opts=child,
                )
            return table

        private_table = route_table("private", self.private_subnets)
        firewall_table = route_table("firewall", [firewall_subnet])
        public_table = route_table("public", [public_subnet])
        aws.ec2.Route(
            f"{name}-private-default",
            route_table_id=private_table.id,
            destination_cidr_block="0.0.0.0/0",
            vpc_endpoint_id=endpoint,
            opts=child,
        )
        aws.ec2.Route(
            f"{name}-firewall-default",
            route_table_id=firewall_table.id,
            destination_cidr_block="0.0.0.0/0",
            nat_gateway_id=nat.id,
            opts=child,
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=child,
        )
        for index, cidr in enumerate(private_cidrs):
            aws.ec2.Route(
                f"{name}-public-return-{index}",
                route_table_id=public_table.id,
                destination_cidr_block=cidr,
                vpc_endpoint_id=endpoint,
                opts=child,
            )
        add_flow_logs(name, self.vpc, key.arn, 365, tags, self)

        # Consumers fetch their API key from Secrets Manager without leaving the VPC.
        endpoint_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=self.vpc.id,
            description="Secrets Manager endpoint: HTTPS from inside the VPC only",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-https",
            security_group_id=endpoint_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=args.cidr,
            tags=tags,
            opts=child,
        )
        aws.ec2.VpcEndpoint(
            f"{name}-secretsmanager",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{lookups.region}.secretsmanager",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=[each.id for each in self.private_subnets],
            security_group_ids=[endpoint_group.id],
            policy=policy_json(
                [
                    {
                        "Sid": "ThisAccountsSecretsOnly",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": [
                            "secretsmanager:GetSecretValue",
                            "secretsmanager:DescribeSecret",
                        ],
                        "Resource": (
                            f"arn:{lookups.partition}:secretsmanager:{lookups.region}:"
                            f"{lookups.account_id}:secret:*"
                        ),
                        "Condition": {"StringEquals": {"aws:PrincipalAccount": lookups.account_id}},
                    }
                ]
            ),
            tags=tags,
            opts=child,
        )
        self.consumer_groups = {}
        for workload in args.workloads:
            group = aws.ec2.SecurityGroup(
                f"{workload.name}-consumers",
                vpc_id=self.vpc.id,
                description=f"{workload.name} callers: HTTPS out only, through the firewall",
                tags=workload.tags,
                opts=child,
            )
            aws.vpc.SecurityGroupEgressRule(
                f"{workload.name}-consumers-https",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4="0.0.0.0/0",
                description="HTTPS out; routing sends it through the firewall allow-list",
                tags=workload.tags,
                opts=child,
            )
            self.consumer_groups[workload.name] = group
        # The fixed part of the boundary's cost; data processed is charged on top.
        self.monthly_cost_usd = pulumi.Output.from_input(
            fixed_monthly_usd(
                [
                    ("aws:ec2/natGateway:NatGateway", 1),
                    ("aws:ec2/eip:Eip", 1),
                    ("aws:networkfirewall/firewall:Firewall", 1),
                    ("aws:ec2/vpcEndpoint:VpcEndpoint", len(self.private_subnets)),
                    ("aws:kms/key:Key", 1),
                ]
            )
        )
        self.register_outputs(
            {
                "monthly_cost_usd": self.monthly_cost_usd,
                "vpc_id": self.vpc.id,
                "consumer_security_groups": {n: g.id for n, g in self.consumer_groups.items()},
            }
        )
