"""A pool's way in: its load balancer published as a VPC endpoint service (PrivateLink) that only
this account and the consumers' accounts may connect to, each connection accepted; in each
consumer VPC of this account an interface endpoint with a private DNS name for the pool; for
each other account, the command that makes its own endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stacks.addressing import ConsumerVpc
from stacks.aws.load_balancer import serving_port_from
from stacks.aws.lookups import Lookups
from stacks.settings import SERVING_PORT


def endpoint_command(service_name: str, region: str) -> str:
    """What a consumer in another account runs to make its endpoint (then asks for acceptance)."""
    return (
        f"aws ec2 create-vpc-endpoint --region {region} --vpc-endpoint-type Interface "
        f"--service-name {service_name} --vpc-id <your-vpc-id> --subnet-ids <your-subnet-ids> "
        f"--security-group-ids <a-group-admitting-tcp-{SERVING_PORT}-from-your-callers> "
        "--no-private-dns-enabled"
    )


@dataclass(frozen=True)
class Published:
    service: aws.ec2.VpcEndpointService
    # By consumer VPC of this account: the interface endpoint the stack made there.
    consumer_endpoints: dict[str, aws.ec2.VpcEndpoint]
    # By other account: the command that makes its endpoint.
    account_commands: dict[str, pulumi.Output[str]]


def publish(
    name: str,
    pool: str,
    balancer: aws.lb.LoadBalancer,
    dns_name: str,
    lookups: Lookups,
    *,
    consumer_vpcs: Sequence[ConsumerVpc],
    consumer_accounts: Sequence[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> Published:
    """The load balancer as an endpoint service, its allowed principals, and an interface
    endpoint with a private name in each consumer VPC of this account."""
    child = pulumi.ResourceOptions(parent=parent)
    service = aws.ec2.VpcEndpointService(
        f"{name}-service",
        acceptance_required=True,
        network_load_balancer_arns=[balancer.arn],
        supported_ip_address_types=["ipv4"],
        tags={**tags, "Name": f"{name}-service"},
        opts=child,
    )
    # "By default, your endpoint service is not available to service consumers. You must add
    # permissions that allow specific AWS principals to create an interface VPC endpoint to
    # connect to your endpoint service" (AWS PrivateLink guide, "Configure an endpoint service",
    # docs.aws.amazon.com/vpc/latest/privatelink/modify-endpoint-service.html, read 2026-12):
    # an endpoint made before its account's permission is refused, so each waits for it.
    accounts = sorted({lookups.account_id, *consumer_accounts})
    allowed = {
        account: aws.ec2.VpcEndpointServiceAllowedPrinciple(
            f"{name}-allow-{account}",
            vpc_endpoint_service_id=service.id,
            principal_arn=f"arn:{lookups.partition}:iam::{account}:root",
            opts=child,
        )
        for account in accounts
    }
    endpoints = {
        consumer.vpc: connect(
            name, pool, service, dns_name, consumer, tags, parent, allowed[lookups.account_id]
        )
        for consumer in consumer_vpcs
    }
    # Another account's command is given only once its account's permission is in place (its
    # id known), so the command an account is handed works when it runs it.
    commands = {
        account: pulumi.Output.all(service.service_name, allowed[account].id).apply(
            lambda known: endpoint_command(known[0], lookups.region)
        )
        for account in sorted(set(consumer_accounts))
    }
    return Published(service, endpoints, commands)


def connect(
    name: str,
    pool: str,
    service: aws.ec2.VpcEndpointService,
    dns_name: str,
    consumer: ConsumerVpc,
    tags: dict[str, str],
    parent: pulumi.Resource,
    permission: aws.ec2.VpcEndpointServiceAllowedPrinciple,
) -> aws.ec2.VpcEndpoint:
    """An interface endpoint in a consumer VPC of this account, made once this account may
    connect to the service (`permission`), accepted, and the pool's name in a private hosted
    zone of that VPC. Its subnets are one per zone (InferencePool checks them first)."""
    child = pulumi.ResourceOptions(parent=parent)
    prefix = f"{name}-{consumer.vpc}"
    group = aws.ec2.SecurityGroup(
        prefix,
        vpc_id=consumer.vpc,
        description=f"{pool} endpoint: serving port from the consumers",
        tags=tags,
        opts=child,
    )
    for index, cidr in enumerate(consumer.cidrs):
        serving_port_from(f"{prefix}-consumer-{index}", group, cidr, tags, child)
    endpoint = aws.ec2.VpcEndpoint(
        prefix,
        vpc_id=consumer.vpc,
        service_name=service.service_name,
        vpc_endpoint_type="Interface",
        subnet_ids=list(consumer.subnets),
        security_group_ids=[group.id],
        # The service's own private DNS needs a public domain verified by a TXT record
        # ("Manage DNS names for VPC endpoint services", AWS PrivateLink guide,
        # docs.aws.amazon.com/vpc/latest/privatelink/manage-dns-names.html, read 2026-12);
        # a private hosted zone in the consumer VPC, with an alias to the endpoint, names it
        # without any public record.
        private_dns_enabled=False,
        tags={**tags, "Name": prefix},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[permission]),
    )
    # The service requires acceptance; an endpoint this stack makes is accepted by it.
    aws.ec2.VpcEndpointConnectionAccepter(
        prefix,
        vpc_endpoint_id=endpoint.id,
        vpc_endpoint_service_id=service.id,
        opts=child,
    )
    zone = aws.route53.Zone(
        prefix,
        name=dns_name,
        comment=f"{pool} through its interface endpoint in {consumer.vpc}",
        vpcs=[{"vpc_id": consumer.vpc}],
        tags=tags,
        opts=child,
    )
    # An alias to the endpoint's regional DNS name ("Routing traffic to an interface VPC
    # endpoint", Route 53 developer guide).
    # A created interface endpoint always has its regional entry first.
    entries = endpoint.dns_entries
    aws.route53.Record(
        prefix,
        zone_id=zone.zone_id,
        name=dns_name,
        type="A",
        aliases=[
            aws.route53.RecordAliasArgs(
                name=entries.apply(lambda e: (e[0].dns_name or "") if e else ""),
                zone_id=entries.apply(lambda e: (e[0].hosted_zone_id or "") if e else ""),
                evaluate_target_health=True,
            )
        ],
        opts=child,
    )
    return endpoint
