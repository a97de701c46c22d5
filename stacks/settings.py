"""Stack settings: every `pulumi config` value the program reads, read in one place.

Components never read config; __main__.py reads it here and passes plain values (and the API keys
as secret Outputs) down.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pulumi

from planner.catalog import default_catalog

# The Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04), by its public SSM parameter
# (AWS DLAMI developer guide, "Finding the ID of a DLAMI", read 2026-11).
DLAMI_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
)
SERVING_PORT = 8000
# An IAM user or role ARN, as the bucket policy's aws:PrincipalArn condition compares it: for a
# role, the role's ARN, never an assumed-role session's ("AWS global condition context keys",
# aws:PrincipalArn, IAM User Guide).
IAM_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(user|role)/[\w+=,.@/-]+")


@dataclass(frozen=True)
class StackSettings:
    stack: str
    # KMS keys, weights buckets and secrets are protected unless a dev stack turns it off.
    protect: bool = True
    budget_email: str | None = None
    # The vLLM release the serving command is built for (planner/data/vllm.yaml): another tag
    # may lack a flag the command uses.
    serving_image_tag: str = default_catalog().serving.release.tag
    weights_uploader_arn: str | None = None
    api_keys: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    # Activate the stack tag as a cost allocation tag (stacks/budget.py says when it can be).
    activate_cost_tag: bool = False


# Stack config keys that moved to the workloads file's `network:` mapping, and their value
# there: pool_cidr_base N gave the first pool 10.N.0.0/16.
MOVED: dict[str, Callable[[str], str]] = {
    "pool_cidr_base": lambda value: (
        f"pools: 10.{value}.0.0/16" if value.isdigit() and int(value) < 256 else "pools: CIDR"
    ),
    "api_vpc_cidr": lambda value: f"apis: {value}",
}


def read_settings(config: pulumi.Config, providers_with_keys: list[str]) -> StackSettings:
    """Read the stack's config; API keys only as secrets (`pulumi config set --secret`)."""
    api_keys = {}
    for provider in providers_with_keys:
        key = config.get_secret(f"{provider}_api_key")
        if key is not None:
            api_keys[provider] = key
    uploader = config.get("weights_uploader_arn")
    if uploader is not None and not IAM_PRINCIPAL_ARN.fullmatch(uploader):
        # A session ARN (sts::...:assumed-role/...) never equals aws:PrincipalArn: nobody could
        # upload the weights, and every node would wait for them.
        raise pulumi.RunError(
            f"stack config weights_uploader_arn: {uploader!r} is no IAM user or role ARN "
            "(arn:aws:iam::<account>:user/<name> or :role/<name>; for an assumed role, the "
            "role's ARN, not the session's): run `pulumi config set weights_uploader_arn ARN`, "
            "or `pulumi config rm weights_uploader_arn` to let the deploying principal upload"
        )
    for name in sorted(MOVED):
        value = config.get(name)
        if value is not None:
            # The planner allocates the ranges now, clear of the consumers' (the plan records
            # them): a key the program ignored would deploy ranges the user did not mean.
            raise pulumi.RunError(
                f"stack config {name} moved to the workloads file: run `pulumi config rm {name}`, "
                f"write `network: {{{MOVED[name](value)}}}` in the workloads file and run "
                "`planner plan` again (the plan records every network's range)"
            )
    pinned = StackSettings.serving_image_tag
    image_tag = config.get("serving_image_tag") or pinned
    if image_tag != pinned:
        # Allowed (a patch release, a rebuilt image), but nothing here checked its flags.
        pulumi.log.warn(
            f"serving_image_tag {image_tag} is not the pinned vLLM release {pinned} "
            "(planner/data/vllm.yaml): the serving command's flags are checked against "
            f"{pinned} only"
        )
    return StackSettings(
        stack=pulumi.get_stack(),
        protect=config.get_bool("protect") is not False,
        budget_email=config.get("budget_email"),
        serving_image_tag=image_tag,
        weights_uploader_arn=uploader,
        api_keys=api_keys,
        activate_cost_tag=config.get_bool("activate_cost_tag") is True,
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
    for subnet in subnet_ids:
        if subnet not in lookups.subnets:
            import pulumi_aws as aws

            lookups.subnets[subnet] = aws.ec2.get_subnet(id=subnet).availability_zone
    return sorted({lookups.subnets[subnet] for subnet in subnet_ids})


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
