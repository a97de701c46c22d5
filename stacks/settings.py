"""Stack settings: every `pulumi config` value the program reads, read in one place.

Components never read config; __main__.py reads it here and passes plain values (and the API keys
as secret Outputs) down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pulumi

from planner.catalog import default_catalog

# The Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04), by its public SSM parameter
# (AWS DLAMI developer guide, "Finding the ID of a DLAMI", read 2026-11).
DLAMI_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
)
SERVING_PORT = 8000


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
        weights_uploader_arn=config.get("weights_uploader_arn"),
        api_keys=api_keys,
    )


@dataclass(frozen=True)
class Lookups:
    """The few data-source lookups (invokes) the program makes, done once."""

    region: str
    account_id: str
    partition: str
    dns_suffix: str
    availability_zones: list[str]
    ami_id: pulumi.Output[str] | str


def lookup() -> Lookups:
    import pulumi_aws as aws

    region = aws.get_region()
    identity = aws.get_caller_identity()
    partition = aws.get_partition()
    zones = aws.get_availability_zones(state="available")
    ami = aws.ssm.get_parameter(name=DLAMI_PARAMETER)
    return Lookups(
        region=region.region,
        account_id=identity.account_id,
        partition=partition.partition,
        dns_suffix=partition.dns_suffix,
        availability_zones=sorted(zones.names)[:2],
        ami_id=ami.value,
    )
