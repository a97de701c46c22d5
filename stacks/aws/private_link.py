"""The network boundary for `private_link`: consumers reach the provider (Bedrock) through an
interface endpoint whose policy admits only the planned models. Where a consumer names its VPC,
the endpoint is made there, in its subnets; callers given as plain CIDRs get the stack's own
network, which has no internet gateway and no NAT. The endpoint's service, the actions its
policy allows and the resources' names come from the provider's catalog entry
(planner/data/providers.yaml: endpoint, invoke), so URNs read e.g. `<name>-bedrock-runtime`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from planner import names
from planner.catalog import Catalog, Provider
from planner.costing import component_monthly_usd
from planner.planfile import Consumer
from stacks.addressing import WorkloadCost, consumer_vpcs
from stacks.aws.identity import policy_json
from stacks.aws.kms import kms_key
from stacks.aws.lookups import (
    INTERFACE_ENDPOINT,
    PRIVATE_DNS_ENDPOINT,
    Lookups,
    one_subnet_per_zone,
    private_dns_on,
)
from stacks.aws.network import PrivateNetwork, PrivateNetworkArgs


@dataclass
class PrivateLinkNetworkArgs:
    cidr: str
    lookups: Lookups
    # The catalog the plan was priced with: the network's list prices come from it.
    catalog: Catalog
    # The provider (its catalog id and entry): the endpoint's service, the invoke actions.
    provider_id: str
    provider: Provider
    model_arns: list[str]
    workloads: list[WorkloadCost]
    consumers: list[Consumer]
    tags: dict[str, str]
    protect: bool
    # VPC id -> the workloads whose consumers name it (stacks/addressing.py workloads_by_vpc).
    vpc_workloads: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _endpoint_policy(actions: list[str], model_arns: list[str], account_id: str) -> str:
    return policy_json(
        [
            {
                "Sid": "PlannedModelsOnly",
                "Effect": "Allow",
                "Principal": "*",
                "Action": list(actions),
                "Resource": sorted(model_arns),
                "Condition": {"StringEquals": {"aws:PrincipalAccount": account_id}},
            }
        ]
    )


class PrivateLinkNetwork(pulumi.ComponentResource):
    """Consumers -> the provider's interface endpoint (planned models only). No way out."""

    def __init__(
        self, name: str, args: PrivateLinkNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(names.PRIVATE_LINK_NETWORK, name, None, opts)
        lookups, tags, provider = args.lookups, args.tags, args.provider
        endpoint, invoke = provider.endpoint, provider.invoke
        # load_catalog: a private_link provider gives its endpoint and invoke actions.
        assert endpoint is not None and invoke is not None
        service, label = endpoint.service, endpoint.label
        child = pulumi.ResourceOptions(parent=self)
        policy = _endpoint_policy(invoke.actions, args.model_arns, lookups.account_id)
        # Callers in the consumers' own VPCs: the endpoint goes where they are. Its private DNS
        # name (e.g. bedrock-runtime.<region>.amazonaws.com) resolves to the endpoint for the
        # whole VPC, so every call to the provider from that VPC then takes the endpoint and its
        # policy.
        self.consumer_endpoints: dict[str, aws.ec2.VpcEndpoint] = {}
        places = consumer_vpcs(args.consumers)
        for vpc, (_, subnets) in places.items():  # before any endpoint: one subnet per zone
            workloads = args.vpc_workloads.get(vpc, ())
            one_subnet_per_zone(lookups, vpc, subnets, workloads, INTERFACE_ENDPOINT)
            private_dns_on(lookups, vpc, workloads, PRIVATE_DNS_ENDPOINT)
        for vpc, (cidrs, subnets) in places.items():
            group = aws.ec2.SecurityGroup(
                f"{name}-{vpc}",
                vpc_id=vpc,
                description=f"{label} endpoint: HTTPS from the planned consumers only",
                tags={**tags, "Name": f"{name}-{vpc}"},
                opts=child,
            )
            _https_from(f"{name}-{vpc}-consumer", group, cidrs, tags, child)
            self.consumer_endpoints[vpc] = aws.ec2.VpcEndpoint(
                f"{name}-{vpc}-{service}",
                vpc_id=vpc,
                service_name=service_name(lookups, service),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=subnets,
                security_group_ids=[group.id],
                policy=policy,
                tags={**tags, "Name": f"{name}-{vpc}-{service}"},
                opts=child,
            )
        # Callers given as plain CIDRs live in the stack's own network (nothing outside reaches
        # it: the plan warns).
        own = sorted(
            {
                c.cidr
                for c in args.consumers
                if c.cidr is not None and c.vpc is None and c.account is None
            }
        )
        self.network: PrivateNetwork | None = None
        self.endpoint: aws.ec2.VpcEndpoint | None = None
        self.consumer_groups: dict[str, aws.ec2.SecurityGroup] = {}
        if own:
            self._own_network(name, args, own, policy, child)
        # The fixed part of the boundary's cost, as the plan prices it (operations.yaml: its own
        # network's pieces, an endpoint in each consumer VPC); data processed is charged on top.
        self.monthly_cost_usd = pulumi.Output.from_input(
            component_monthly_usd(
                args.catalog,
                ("private_link",) if own else (),
                [("private_link", len(subnets)) for _, subnets in places.values()],
            )
        )
        self.register_outputs(
            {
                "monthly_cost_usd": self.monthly_cost_usd,
                "vpc_id": self.network.vpc.id if self.network else None,
                f"{args.provider_id}_endpoint_id": self.endpoint.id if self.endpoint else None,
                "consumer_endpoint_ids": {v: e.id for v, e in self.consumer_endpoints.items()},
                "consumer_security_groups": {n: g.id for n, g in self.consumer_groups.items()},
            }
        )

    def _own_network(
        self,
        name: str,
        args: PrivateLinkNetworkArgs,
        cidrs: list[str],
        policy: str,
        child: pulumi.ResourceOptions,
    ) -> None:
        """The stack's own PrivateLink network, for callers given as plain CIDRs."""
        lookups, tags, provider = args.lookups, args.tags, args.provider
        provider_id = args.provider_id
        assert provider.endpoint is not None  # load_catalog: a private_link provider's endpoint
        service = provider.endpoint.service
        key = kms_key(
            f"{name}-key", f"ai-infra-planner: {provider.short_name} PrivateLink network logs",
            lookups, tags, args.protect, self, services=["logs"],
        )  # fmt: skip
        self.network = PrivateNetwork(
            f"{name}-net",
            PrivateNetworkArgs(
                cidr=args.cidr,
                lookups=lookups,
                kms_key_arn=key.arn,
                tags=tags,
                interface_services=(),
                dns_services=(service,),  # the endpoint below: its name resolves
            ),
            opts=child,
        )
        endpoint_group = self.network.endpoint_security_group
        _https_from(f"{name}-{provider_id}-consumer", endpoint_group, cidrs, tags, child)
        self.endpoint = aws.ec2.VpcEndpoint(
            f"{name}-{service}",
            vpc_id=self.network.vpc.id,
            service_name=service_name(lookups, service),
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=[each.id for each in self.network.subnets],
            security_group_ids=[endpoint_group.id],
            policy=policy,
            tags=tags,
            opts=child,
        )
        for workload in args.workloads:
            group = aws.ec2.SecurityGroup(
                f"{workload.name}-consumers",
                vpc_id=self.network.vpc.id,
                description=f"{workload.name} callers: HTTPS to the {provider.short_name} "
                "endpoint only",
                tags=workload.tags,
                opts=child,
            )
            aws.vpc.SecurityGroupEgressRule(
                f"{workload.name}-consumers-{provider_id}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                referenced_security_group_id=endpoint_group.id,
                description=f"HTTPS to the {provider.endpoint.label} endpoint",
                tags=workload.tags,
                opts=child,
            )
            self.consumer_groups[workload.name] = group


def service_name(lookups: Lookups, service: str) -> str:
    """An AWS service's endpoint service name in the stack's region: com.amazonaws.<region>.
    <service> (AWS PrivateLink Guide, "AWS services that integrate with AWS PrivateLink")."""
    return f"com.amazonaws.{lookups.region}.{service}"


def dns_name(lookups: Lookups, service: str) -> str:
    """The private DNS name an interface endpoint of an AWS service answers for its VPC
    (<service>.<region>.<the partition's DNS suffix>): the name callers call."""
    return f"{service}.{lookups.region}.{lookups.dns_suffix}"


def _https_from(
    prefix: str,
    group: aws.ec2.SecurityGroup,
    cidrs: list[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> None:
    """One ingress rule per consumer range: HTTPS (443) into the provider endpoint's group."""
    for index, cidr in enumerate(cidrs):
        aws.vpc.SecurityGroupIngressRule(
            f"{prefix}-{index}",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=cidr,
            description=f"HTTPS from consumer {cidr}",
            tags=tags,
            opts=opts,
        )
