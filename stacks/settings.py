"""Stack settings: every `pulumi config` value the program reads, read in one place.

Components never read config; the program (stacks/program.py run) reads it here and passes plain
values (and the API keys as secret Outputs) down. `guarded` turns the `protect` setting into the
options of what must survive a mistaken destroy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pulumi

from planner.catalog import default_catalog

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
    # Activate the stack tag as a cost allocation tag (stacks/aws/budget.py says when it can be).
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


def guarded(protect: bool, parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options for what must survive a mistaken `pulumi destroy`: keys, weights, secrets."""
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect)
