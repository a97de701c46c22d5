"""The AWS data-source lookups (invokes) the program makes, done once: region, account,
partition, zones, the serving AMI, and the zones that offer a pool's instance type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

# The Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04), by its public SSM parameter
# (AWS DLAMI developer guide, "Finding the ID of a DLAMI", read 2026-11).
DLAMI_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
)


@dataclass(frozen=True)
class Lookups:
    """The few data-source lookups (invokes) the program makes, done once."""

    region: str
    account_id: str
    partition: str
    dns_suffix: str
    # The first two available zones by name: for the networks whose resources any zone offers
    # (egress, PrivateLink). A pool's network takes the zones offering its instance type.
    availability_zones: list[str]
    ami_id: pulumi.Output[str] | str
    # Every available zone of the region, by name, and its AZ ID (the same physical zone in
    # every account; names map differently per account).
    zone_names: tuple[str, ...] = ()
    zone_ids: dict[str, str] = field(default_factory=dict)
    # Instance type -> the available zones that offer it, looked up once per type.
    offerings: dict[str, list[str]] = field(default_factory=dict, compare=False)
    # The principal running the program (for a role session, the role): the default weights
    # uploader.
    deployer_arn: str = ""
    # Subnet id -> its zone by name, looked up once per consumer subnet (subnet_zones).
    subnets: dict[str, str] = field(default_factory=dict, compare=False)
    # VPC id -> its DNS attributes that are off, looked up once per consumer VPC (private_dns_on).
    vpcs_dns_off: dict[str, list[str]] = field(default_factory=dict, compare=False)


# A pool's network spans two zones: its load balancer and interface endpoints have a subnet in
# each (the nodes of a multi-node replica, or of a capacity reservation, sit in one of them).
POOL_ZONES = 2


def offering_zones(lookups: Lookups, instance_type: str) -> list[str]:
    """The available zones of the region where EC2 offers the instance type, by name: the
    DescribeInstanceTypeOfferings call with LocationType availability-zone and a filter on
    instance-type (Amazon EC2 API Reference, DescribeInstanceTypeOfferings: "Lists the instance
    types that are offered for the specified location"; pulumi-aws
    aws.ec2.get_instance_type_offerings). Not every zone offers every GPU type."""
    if instance_type not in lookups.offerings:
        import pulumi_aws as aws

        offers = aws.ec2.get_instance_type_offerings(
            location_type="availability-zone",
            filters=[{"name": "instance-type", "values": [instance_type]}],
        )
        offered = {
            location
            for location, kind in zip(offers.locations, offers.instance_types, strict=True)
            if kind == instance_type
        }
        lookups.offerings[instance_type] = sorted(offered & set(lookups.zone_names))
    return lookups.offerings[instance_type]


def subnet_zones(lookups: Lookups, subnet_ids: Sequence[str]) -> list[str]:
    """The zones, by name, of subnets of this account (a consumer VPC's, named in the workloads
    file): the ec2 DescribeSubnets call (pulumi-aws aws.ec2.get_subnet, `availability_zone`).
    An endpoint service is reachable only from the zones its load balancer is in ("The VPC
    endpoint service ... does not support the Availability Zone of the subnet", AWS re:Post
    knowledge center, interface-endpoint-availability-zone; "consumers can see only the
    Availability Zones that they have in common with the service provider", AWS PrivateLink
    guide, create-endpoint-service), so a pool's load balancer needs a subnet in each."""
    return sorted({subnet_zone(lookups, subnet) for subnet in subnet_ids})


def subnet_zone(lookups: Lookups, subnet: str) -> str:
    """A subnet's zone by name (DescribeSubnets, once per subnet)."""
    if subnet not in lookups.subnets:
        import pulumi_aws as aws

        lookups.subnets[subnet] = aws.ec2.get_subnet(id=subnet).availability_zone
    return lookups.subnets[subnet]


# What takes a consumer VPC's subnets, and AWS's rule that it takes one subnet per zone:
# an interface endpoint has one network interface per subnet, each in its own zone ("You can
# specify more than one subnet in different Availability Zones ... we create an endpoint
# network interface in each subnet that you specify", Amazon VPC User Guide, "Interface VPC
# endpoints", docs.aws.amazon.com/vpc/latest/userguide/vpce-interface.html; two subnets of one
# zone are refused, DuplicateSubnetsInSameZone), and a transit gateway attachment "You can
# specify only one subnet per Availability Zone" (EC2 API Reference,
# CreateTransitGatewayVpcAttachment, SubnetIds). Read 2026-12.
INTERFACE_ENDPOINT = "an interface endpoint takes one subnet per availability zone"
TRANSIT_ATTACHMENT = "a transit gateway attachment takes one subnet per availability zone"


def one_subnet_per_zone(
    lookups: Lookups, vpc: str, subnets: Sequence[str], workloads: Sequence[str], rule: str
) -> None:
    """Refuse, before the resource is made, a consumer VPC's subnets of which two share a zone
    where `rule` (INTERFACE_ENDPOINT, TRANSIT_ATTACHMENT) takes one per zone: AWS would refuse
    the resource only during `pulumi up`. The error names the workloads whose consumers name
    the VPC, the VPC, the two subnets and their zone."""
    seen: dict[str, str] = {}
    for subnet in subnets:
        zone = subnet_zone(lookups, subnet)
        if zone in seen:
            who = ", ".join(workloads)
            raise pulumi.RunError(
                f"workload{'s' if len(workloads) > 1 else ''} {who}: the consumers' VPC {vpc} "
                f"is given subnets {seen[zone]} and {subnet}, both in {zone}, but {rule}: name "
                f"one subnet per zone for {vpc} (consumers[].subnets in the workloads file) "
                "and plan again"
            )
        seen[zone] = subnet


# Where a consumer VPC must resolve private names, and AWS's rule for it (read 2026-12):
POOL_NAME = (
    "the pool's name resolves there through a private hosted zone, which needs both (Route 53 "
    "Developer Guide, 'Considerations when working with a private hosted zone': "
    "enableDnsHostnames and enableDnsSupport set to true)"
)
PRIVATE_DNS_ENDPOINT = (
    "the provider's endpoint there uses private DNS, which needs both (EC2 API Reference, "
    "CreateVpcEndpoint, PrivateDnsEnabled: 'To use a private hosted zone, you must set the "
    "following VPC attributes to true: enableDnsHostnames and enableDnsSupport')"
)


def private_dns_on(lookups: Lookups, vpc: str, workloads: Sequence[str], why: str) -> None:
    """Refuse, before anything is made, a consumer VPC whose DNS support or DNS hostnames is off
    where `why` (POOL_NAME, PRIVATE_DNS_ENDPOINT) needs both: AWS refuses an endpoint with
    private DNS only during `pulumi up`, and a private hosted zone associated with such a VPC is
    made but never answers there, so callers could not find the pool (the ec2 DescribeVpcs
    attributes, pulumi-aws aws.ec2.get_vpc)."""
    if vpc not in lookups.vpcs_dns_off:
        import pulumi_aws as aws

        found = aws.ec2.get_vpc(id=vpc)
        lookups.vpcs_dns_off[vpc] = [
            name
            for name, on in (
                ("enableDnsSupport", found.enable_dns_support),
                ("enableDnsHostnames", found.enable_dns_hostnames),
            )
            if not on
        ]
    off = lookups.vpcs_dns_off[vpc]
    if off:
        who = ", ".join(workloads)
        raise pulumi.RunError(
            f"workload{'s' if len(workloads) > 1 else ''} {who}: the consumers' VPC {vpc} has "
            f"{' and '.join(off)} off, but {why}: turn "
            f"{'them' if len(off) > 1 else 'it'} on (aws ec2 modify-vpc-attribute --vpc-id "
            f"{vpc}, one attribute a call) and run again"
        )


def pool_zones(
    lookups: Lookups, pool: str, instance_type: str, reservation_zone: str | None
) -> list[str]:
    """The zones of a pool's network, by name: zones that offer its instance type only, and
    the capacity reservation's zone when it has one (instances launch into a reservation only
    in its zone: EC2 User Guide, "Launch instances into an existing Capacity Reservation").
    A plan the region cannot serve is an error saying why, before anything is created."""
    offered = offering_zones(lookups, instance_type)
    where = f"{lookups.region} offers {instance_type} in " + (
        f"{len(offered)} available zone(s) ({', '.join(offered)})" if offered else "no zone"
    )
    if reservation_zone is not None and reservation_zone not in offered:
        raise pulumi.RunError(
            f"pool {pool}: its capacity reservation is in {reservation_zone}, but {where}: "
            "check capacity_reservation_zone in the workloads file and plan again"
        )
    first = [reservation_zone] if reservation_zone is not None else []
    zones = [*first, *(zone for zone in offered if zone != reservation_zone)][:POOL_ZONES]
    if len(zones) < POOL_ZONES:
        raise pulumi.RunError(
            f"pool {pool}: its network needs {POOL_ZONES} availability zones offering "
            f"{instance_type}, but {where}: plan another instance type "
            "(assumptions.instance_types in the workloads file) or another region"
        )
    return sorted(zones)


def lookup() -> Lookups:
    import pulumi_aws as aws

    region = aws.get_region()
    identity = aws.get_caller_identity()
    partition = aws.get_partition()
    zones = aws.get_availability_zones(state="available")
    ami = aws.ssm.get_parameter(name=DLAMI_PARAMETER)
    # The caller's ARN as aws:PrincipalArn sees it: an assumed-role session's issuing role
    # (aws.iam.getSessionContext passes other ARNs through).
    deployer = aws.iam.get_session_context(arn=identity.arn)
    return Lookups(
        region=region.region,
        account_id=identity.account_id,
        partition=partition.partition,
        dns_suffix=partition.dns_suffix,
        availability_zones=sorted(zones.names)[:2],
        ami_id=ami.value,
        zone_names=tuple(sorted(zones.names)),
        zone_ids=dict(zip(zones.names, zones.zone_ids, strict=True)),
        deployer_arn=deployer.issuer_arn,
    )
