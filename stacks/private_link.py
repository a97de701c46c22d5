"""The network boundary for `private_link`: consumers reach Bedrock through an interface endpoint
whose policy admits only the planned models; the network has no internet gateway and no NAT."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stacks.api_access import WorkloadCost
from stacks.common import fixed_monthly_usd, kms_key, policy_json
from stacks.network import PrivateNetwork, PrivateNetworkArgs
from stacks.settings import Lookups


@dataclass
class PrivateLinkNetworkArgs:
    cidr: str
    lookups: Lookups
    model_arns: list[str]
    workloads: list[WorkloadCost]
    consumers: list[str]
    tags: dict[str, str]
    protect: bool


class PrivateLinkNetwork(pulumi.ComponentResource):
    """Consumers -> Bedrock runtime interface endpoint (planned models only). No way out."""

    def __init__(
        self, name: str, args: PrivateLinkNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-infra-planner:index:PrivateLinkNetwork", name, None, opts)
        lookups, tags = args.lookups, args.tags
        child = pulumi.ResourceOptions(parent=self)
        key = kms_key(
            f"{name}-key", "ai-infra-planner: Bedrock PrivateLink network logs", lookups, tags,
            args.protect, self, services=["logs"],
        )  # fmt: skip
        self.network = PrivateNetwork(
            f"{name}-net",
            PrivateNetworkArgs(
                cidr=args.cidr,
                lookups=lookups,
                kms_key_arn=key.arn,
                tags=tags,
                interface_services=(),
                dns_services=("bedrock-runtime",),  # the endpoint below: its name resolves
            ),
            opts=child,
        )
        endpoint_group = self.network.endpoint_security_group
        for index, cidr in enumerate(args.consumers):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-bedrock-consumer-{index}",
                security_group_id=endpoint_group.id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4=cidr,
                description=f"HTTPS from consumer {cidr}",
                tags=tags,
                opts=child,
            )
        self.endpoint = aws.ec2.VpcEndpoint(
            f"{name}-bedrock-runtime",
            vpc_id=self.network.vpc.id,
            service_name=f"com.amazonaws.{lookups.region}.bedrock-runtime",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=[each.id for each in self.network.subnets],
            security_group_ids=[endpoint_group.id],
            policy=policy_json(
                [
                    {
                        "Sid": "PlannedModelsOnly",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": [
                            "bedrock:InvokeModel",
                            "bedrock:InvokeModelWithResponseStream",
                        ],
                        "Resource": sorted(args.model_arns),
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
                vpc_id=self.network.vpc.id,
                description=f"{workload.name} callers: HTTPS to the Bedrock endpoint only",
                tags=workload.tags,
                opts=child,
            )
            aws.vpc.SecurityGroupEgressRule(
                f"{workload.name}-consumers-bedrock",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                referenced_security_group_id=endpoint_group.id,
                description="HTTPS to the Bedrock runtime endpoint",
                tags=workload.tags,
                opts=child,
            )
            self.consumer_groups[workload.name] = group
        # The fixed part of the boundary's cost; data processed is charged on top.
        self.monthly_cost_usd = pulumi.Output.from_input(
            fixed_monthly_usd(
                [
                    ("aws:ec2/vpcEndpoint:VpcEndpoint", len(self.network.subnets)),
                    ("aws:kms/key:Key", 1),
                ]
            )
        )
        self.register_outputs(
            {
                "monthly_cost_usd": self.monthly_cost_usd,
                "vpc_id": self.network.vpc.id,
                "bedrock_endpoint_id": self.endpoint.id,
                "consumer_security_groups": {n: g.id for n, g in self.consumer_groups.items()},
            }
        )
