"""The network boundary for `contractual` cloud APIs: consumers reach the providers' API hosts only
through AWS Network Firewall (a domain allow-list of those hosts) and a NAT gateway; their security
groups allow HTTPS out only."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from planner import names
from planner.catalog import Catalog
from planner.costing import component_monthly_usd
from planner.planfile import WorkloadPlan
from stacks.addressing import WorkloadCost, consumer_vpcs, consumers_of, workloads_by_vpc
from stacks.aws.flow_logs import add_flow_logs
from stacks.aws.identity import policy_json
from stacks.aws.kms import kms_key
from stacks.aws.lookups import TRANSIT_ATTACHMENT, Lookups, one_subnet_per_zone
from stacks.aws.network import subnet_cidrs


@dataclass(frozen=True)
class AttachedVpc:
    """A consumer's VPC in this account, attached to the egress path by the transit gateway."""

    vpc: str
    cidrs: tuple[str, ...]
    subnets: tuple[str, ...]
    # The workloads whose consumers name it (for errors about it).
    workloads: tuple[str, ...] = ()

    @classmethod
    def of(cls, workloads: Iterable[WorkloadPlan]) -> list[AttachedVpc]:
        """One per VPC the workloads' consumers name, with all their ranges and subnets there."""
        workloads = list(workloads)
        naming = workloads_by_vpc(workloads)
        return [
            cls(vpc, tuple(cidrs), tuple(subnets), naming[vpc])
            for vpc, (cidrs, subnets) in consumer_vpcs(consumers_of(workloads)).items()
        ]


@dataclass
class EgressNetworkArgs:
    cidr: str
    lookups: Lookups
    # The catalog the plan was priced with: the boundary's list prices come from it.
    catalog: Catalog
    hosts: list[str]
    workloads: list[WorkloadCost]
    tags: dict[str, str]
    protect: bool
    # Consumers naming their VPC: their subnets' default route goes to the transit gateway.
    attached: list[AttachedVpc] = field(default_factory=list)


# AWS Network Firewall: with STRICT_ORDER the policy's default actions apply to what no rule
# passes; `aws:drop_established` drops any established flow (a TCP connection after its
# handshake) that no rule passed, so plain TCP or any non-TLS protocol on 443 is dropped once
# the domain list has not matched an allowed SNI; `aws:alert_established` logs it. The rule
# group must use the policy's rule order. Source: AWS Network Firewall Developer Guide,
# "Managing evaluation order for Suricata compatible rules" (strict order, default actions) and
# "Stateful domain list rule groups" (domain lists under strict order need a default drop
# established action); pulumi-aws networkfirewall.FirewallPolicy `stateful_default_actions`
# ("can only be specified if ... rule_order ... STRICT_ORDER") and RuleGroup
# `stateful_rule_options.rule_order`.
RULE_ORDER = "STRICT_ORDER"
STATEFUL_DEFAULT_ACTIONS = ["aws:drop_established", "aws:alert_established"]


def _firewall_endpoint(statuses: Sequence[Any] | None, subnet_id: str | None) -> str | None:
    """The firewall's VPC endpoint in one subnet (so in one availability zone), once AWS has
    created it (unknown during a preview)."""
    for status in statuses or []:
        for state in status.get("sync_states") or []:
            for attachment in state.get("attachments") or []:
                if attachment.get("endpoint_id") and attachment.get("subnet_id") == subnet_id:
                    return str(attachment["endpoint_id"])
    return None


def _subnet_prefix(cidr: str, count: int) -> int:
    """The longest prefix (at most /22) that fits `count` subnets into the network."""
    network = ipaddress.ip_network(cidr)
    return max(22, network.prefixlen + max(2, (count - 1).bit_length()))


class EgressNetwork(pulumi.ComponentResource):
    """Consumers -> Network Firewall (allow-list of API hosts) -> NAT gateway -> internet, in
    every availability zone; consumers' VPCs come in through a transit gateway (centralized
    egress)."""

    def __init__(
        self, name: str, args: EgressNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(names.EGRESS_NETWORK, name, None, opts)
        lookups, tags = args.lookups, args.tags
        for each in args.attached:  # before anything is made: the attachments' subnets
            one_subnet_per_zone(lookups, each.vpc, each.subnets, each.workloads, TRANSIT_ATTACHMENT)
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
        # Per zone: the in-VPC callers' subnet, the firewall's, the NAT gateway's (public) and,
        # when consumer VPCs attach, the transit gateway attachment's.
        kinds = ["private", "firewall", "public"] + (["transit"] if args.attached else [])
        count = len(kinds) * len(zones)
        cidrs = iter(subnet_cidrs(args.cidr, count, new_prefix=_subnet_prefix(args.cidr, count)))
        layout = {kind: {zone: next(cidrs) for zone in zones} for kind in kinds}

        def subnet(label: str, zone: str, cidr: str) -> aws.ec2.Subnet:
            return aws.ec2.Subnet(
                f"{name}-{label}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,  # the NAT gateways have the only public addresses
                tags={**tags, "Name": f"{name}-{label}"},
                opts=child,
            )

        subnets = {
            kind: {zone: subnet(f"{kind}-{zone}", zone, cidr) for zone, cidr in by_zone.items()}
            for kind, by_zone in layout.items()
        }
        self.private_subnets = list(subnets["private"].values())
        private_cidrs = list(layout["private"].values())

        # The gateway is attached by the resource itself (its vpc_id). A public NAT gateway and
        # its Elastic IP need that attachment first, and nothing in their inputs refers to the
        # gateway, so the dependency is explicit: pulumi-aws `aws.ec2.Eip` docs, "EIP may
        # require IGW to exist prior to association. Use `depends_on` to set an explicit
        # dependency on the IGW"; its `aws.ec2.NatGateway` "Public NAT" example depends on the
        # internet gateway the same way.
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags=tags, opts=child)
        after_gateway = pulumi.ResourceOptions(parent=self, depends_on=[gateway])
        nats = {}
        for zone in zones:
            address = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags=tags, opts=after_gateway)
            nats[zone] = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                subnet_id=subnets["public"][zone].id,
                allocation_id=address.id,
                tags=tags,
                opts=after_gateway,
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
                },
                "stateful_rule_options": {"rule_order": RULE_ORDER},
            },
            tags=tags,
            opts=child,
        )
        policy = aws.networkfirewall.FirewallPolicy(
            f"{name}-policy",
            firewall_policy={
                "stateless_default_actions": ["aws:forward_to_sfe"],
                "stateless_fragment_default_actions": ["aws:forward_to_sfe"],
                "stateful_engine_options": {"rule_order": RULE_ORDER},
                "stateful_default_actions": STATEFUL_DEFAULT_ACTIONS,
                "stateful_rule_group_references": [
                    {"resource_arn": rule_group.arn, "priority": 100}
                ],
            },
            tags=tags,
            opts=child,
        )
        self.firewall = aws.networkfirewall.Firewall(
            f"{name}-firewall",
            vpc_id=self.vpc.id,
            firewall_policy_arn=policy.arn,
            # One endpoint per availability zone: a zone's traffic never depends on another's.
            subnet_mappings=[{"subnet_id": s.id} for s in subnets["firewall"].values()],
            delete_protection=args.protect,
            tags=tags,
            opts=child,
        )
        endpoints = {
            zone: pulumi.Output.all(self.firewall.firewall_statuses, each.id).apply(
                lambda values: _firewall_endpoint(values[0], values[1])
            )
            for zone, each in subnets["firewall"].items()
        }
        # Alert logs (what the default action dropped) and flow logs, to the encrypted group.
        firewall_logs = aws.cloudwatch.LogGroup(
            f"{name}-firewall-logs",
            retention_in_days=365,
            kms_key_id=key.arn,
            tags=tags,
            opts=child,
        )
        aws.networkfirewall.LoggingConfiguration(
            f"{name}-firewall-logs",
            firewall_arn=self.firewall.arn,
            logging_configuration={
                "log_destination_configs": [
                    {
                        "log_destination": {"logGroup": firewall_logs.name},
                        "log_destination_type": "CloudWatchLogs",
                        "log_type": log_type,
                    }
                    for log_type in ("ALERT", "FLOW")
                ]
            },
            opts=child,
        )

        # Per zone: callers' (and the transit gateway's) default route goes to the zone's
        # firewall endpoint; the firewall's to the zone's NAT gateway; the public subnet's to the
        # internet gateway, and its way back to every caller through the zone's firewall
        # endpoint again so that the firewall sees both directions of each flow.
        def route_table(label: str, each: aws.ec2.Subnet) -> aws.ec2.RouteTable:
            table = aws.ec2.RouteTable(
                f"{name}-{label}",
                vpc_id=self.vpc.id,
                tags={**tags, "Name": f"{name}-{label}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-{label}", subnet_id=each.id, route_table_id=table.id, opts=child
            )
            return table

        callers = private_cidrs + [cidr for each in args.attached for cidr in each.cidrs]
        self.transit_gateway: aws.ec2transitgateway.TransitGateway | None = None
        if args.attached:
            self.transit_gateway = self._transit(name, args, subnets["transit"], child)
        for zone in zones:
            tables = {kind: route_table(f"{kind}-{zone}", subnets[kind][zone]) for kind in kinds}
            for kind in ("private", "transit"):
                if kind in tables:
                    aws.ec2.Route(
                        f"{name}-{kind}-{zone}-default",
                        route_table_id=tables[kind].id,
                        destination_cidr_block="0.0.0.0/0",
                        vpc_endpoint_id=endpoints[zone],
                        opts=child,
                    )
            aws.ec2.Route(
                f"{name}-firewall-{zone}-default",
                route_table_id=tables["firewall"].id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats[zone].id,
                opts=child,
            )
            aws.ec2.Route(
                f"{name}-public-{zone}-default",
                route_table_id=tables["public"].id,
                destination_cidr_block="0.0.0.0/0",
                gateway_id=gateway.id,
                opts=child,
            )
            for index, cidr in enumerate(callers):
                aws.ec2.Route(
                    f"{name}-public-{zone}-return-{index}",
                    route_table_id=tables["public"].id,
                    destination_cidr_block=cidr,
                    vpc_endpoint_id=endpoints[zone],
                    opts=child,
                )
            if self.transit_gateway is not None:
                attached = [cidr for each in args.attached for cidr in each.cidrs]
                for index, cidr in enumerate(attached):
                    aws.ec2.Route(
                        f"{name}-firewall-{zone}-to-consumer-{index}",
                        route_table_id=tables["firewall"].id,
                        destination_cidr_block=cidr,
                        transit_gateway_id=self.transit_gateway.id,
                        opts=child,
                    )
        add_flow_logs(name, self.vpc, key.arn, 365, tags, self, lookups)

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
            description="HTTPS from the VPC",
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
        # The fixed part of the boundary's cost, as the plan prices it (operations.yaml: the
        # boundary's pieces, its own transit attachment and each consumer VPC's when VPCs attach);
        # data processed is charged on top.
        self.monthly_cost_usd = pulumi.Output.from_input(
            component_monthly_usd(
                args.catalog,
                ("egress_network", "egress_transit") if args.attached else ("egress_network",),
                [("egress", len(vpc.subnets)) for vpc in args.attached],
            )
        )
        self.register_outputs(
            {
                "monthly_cost_usd": self.monthly_cost_usd,
                "vpc_id": self.vpc.id,
                "transit_gateway_id": self.transit_gateway.id if self.transit_gateway else None,
                "consumer_security_groups": {n: g.id for n, g in self.consumer_groups.items()},
            }
        )

    def _transit(
        self,
        name: str,
        args: EgressNetworkArgs,
        transit_subnets: dict[str, aws.ec2.Subnet],
        child: pulumi.ResourceOptions,
    ) -> aws.ec2transitgateway.TransitGateway:
        """Centralized egress (AWS whitepaper "Building a Scalable and Secure Multi-VPC AWS
        Network Infrastructure", "Centralized egress to internet" with AWS Network Firewall): the
        consumers' VPCs attach to a transit gateway whose only route for them leads to this
        VPC's transit subnets, then through the firewall endpoint of the zone, the NAT gateway
        and the internet gateway. Consumers cannot reach each other (blackhole routes), and the
        default route tables are off so that no attachment learns another's routes."""
        tags = args.tags
        gateway = aws.ec2transitgateway.TransitGateway(
            f"{name}-tgw",
            description="ai-infra-planner: consumers to the API egress firewall only",
            default_route_table_association="disable",
            default_route_table_propagation="disable",
            auto_accept_shared_attachments="disable",
            dns_support="enable",
            tags={**tags, "Name": f"{name}-tgw"},
            opts=child,
        )
        # Appliance mode keeps both directions of a flow in one zone's firewall endpoint (AWS
        # Transit Gateway guide, "Appliance in a shared services VPC": stateful appliances).
        egress = aws.ec2transitgateway.VpcAttachment(
            f"{name}-tgw-egress",
            transit_gateway_id=gateway.id,
            vpc_id=self.vpc.id,
            subnet_ids=[each.id for each in transit_subnets.values()],
            appliance_mode_support="enable",
            transit_gateway_default_route_table_association=False,
            transit_gateway_default_route_table_propagation=False,
            tags={**tags, "Name": f"{name}-tgw-egress"},
            opts=child,
        )
        spokes = aws.ec2transitgateway.RouteTable(
            f"{name}-tgw-consumers",
            transit_gateway_id=gateway.id,
            tags={**tags, "Name": f"{name}-tgw-consumers"},
            opts=child,
        )
        back = aws.ec2transitgateway.RouteTable(
            f"{name}-tgw-egress",
            transit_gateway_id=gateway.id,
            tags={**tags, "Name": f"{name}-tgw-egress"},
            opts=child,
        )
        aws.ec2transitgateway.RouteTableAssociation(
            f"{name}-tgw-egress",
            transit_gateway_attachment_id=egress.id,
            transit_gateway_route_table_id=back.id,
            opts=child,
        )
        aws.ec2transitgateway.Route(
            f"{name}-tgw-consumers-default",
            destination_cidr_block="0.0.0.0/0",
            transit_gateway_attachment_id=egress.id,
            transit_gateway_route_table_id=spokes.id,
            opts=child,
        )
        for index, each in enumerate(args.attached):
            attachment = aws.ec2transitgateway.VpcAttachment(
                f"{name}-tgw-consumer-{index}",
                transit_gateway_id=gateway.id,
                vpc_id=each.vpc,
                subnet_ids=list(each.subnets),
                transit_gateway_default_route_table_association=False,
                transit_gateway_default_route_table_propagation=False,
                tags={**tags, "Name": f"{name}-tgw-consumer-{index}"},
                opts=child,
            )
            aws.ec2transitgateway.RouteTableAssociation(
                f"{name}-tgw-consumer-{index}",
                transit_gateway_attachment_id=attachment.id,
                transit_gateway_route_table_id=spokes.id,
                opts=child,
            )
            # The way back to this consumer; no other consumer may use the gateway to reach it.
            for number, cidr in enumerate(each.cidrs):
                aws.ec2transitgateway.Route(
                    f"{name}-tgw-egress-consumer-{index}-{number}",
                    destination_cidr_block=cidr,
                    transit_gateway_attachment_id=attachment.id,
                    transit_gateway_route_table_id=back.id,
                    opts=child,
                )
                aws.ec2transitgateway.Route(
                    f"{name}-tgw-consumers-blackhole-{index}-{number}",
                    destination_cidr_block=cidr,
                    blackhole=True,
                    transit_gateway_route_table_id=spokes.id,
                    opts=child,
                )
            # What the stack changes in the consumer's VPC: each named subnet's route table gets
            # a default route to the transit gateway (it must not have one already), so all of
            # those subnets' internet-bound traffic passes the allow-list firewall.
            for subnet in each.subnets:
                table = aws.ec2.get_route_table_output(subnet_id=subnet)
                aws.ec2.Route(
                    f"{name}-consumer-{index}-{subnet}-default",
                    route_table_id=table.route_table_id,
                    destination_cidr_block="0.0.0.0/0",
                    transit_gateway_id=gateway.id,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
                )
        return gateway
