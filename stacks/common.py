"""What every component shares: tags that carry the cost estimate, protection, KMS key policies."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import pulumi
import pulumi_aws as aws
import yaml

from planner import names
from planner.catalog import DATA_DIR
from planner.planfile import Consumer
from stacks.settings import Lookups


def cost_tags(
    stack: str, kind: str, name: str, monthly_usd: float, perimeter: str | None = None
) -> dict[str, str]:
    """Tags naming the stack, the workload or pool, its share of the monthly estimate, and
    the perimeter its network is built for (what `planner verify` holds it to)."""
    tags = {
        names.TAG_STACK: stack,
        names.tag(kind): name,
        names.TAG_MONTHLY_USD: f"{monthly_usd:.2f}",
    }
    if perimeter is not None:
        tags[names.TAG_PERIMETER] = perimeter
    return tags


def guarded(protect: bool, parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options for what must survive a mistaken `pulumi destroy`: keys, weights, secrets."""
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect)


def policy_json(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


# What each interface endpoint of a private network carries, by service: the actions the nodes'
# role needs there and nothing else (an endpoint policy of `Action: *` lets a stolen credential of
# this account do anything through it). Sources: the AmazonSSMManagedInstanceCore managed policy
# (ssm, ssmmessages, ec2messages; AWS Managed Policy Reference) and Systems Manager's "Reference:
# ec2messages, ssmmessages, and other API operations"; Amazon ECR, "Interface VPC endpoints
# (AWS PrivateLink)": the endpoint policy example for image pulls; the nodes' role (stacks/pool.py)
# for logs and Secrets Manager. STS has no entry: nothing in the nodes calls it (instance
# credentials come from the instance metadata service), so no STS endpoint is created.
ENDPOINT_ACTIONS: dict[str, tuple[str, ...]] = {
    "ssm": (
        "ssm:DescribeAssociation",
        "ssm:DescribeDocument",
        "ssm:GetDeployablePatchSnapshotForInstance",
        "ssm:GetDocument",
        "ssm:GetManifest",
        "ssm:GetParameter",
        "ssm:GetParameters",
        "ssm:ListAssociations",
        "ssm:ListInstanceAssociations",
        "ssm:PutComplianceItems",
        "ssm:PutConfigurePackageResult",
        "ssm:PutInventory",
        "ssm:UpdateAssociationStatus",
        "ssm:UpdateInstanceAssociationStatus",
        "ssm:UpdateInstanceInformation",
    ),
    "ssmmessages": (
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    ),
    "ec2messages": (
        "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage",
        "ec2messages:FailMessage",
        "ec2messages:GetEndpoint",
        "ec2messages:GetMessages",
        "ec2messages:SendReply",
    ),
    "ecr.api": (
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "ecr:GetDownloadUrlForLayer",
    ),
    "ecr.dkr": (
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "ecr:GetDownloadUrlForLayer",
    ),
    "logs": ("logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"),
    "secretsmanager": ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"),
}


def endpoint_policy(service: str, lookups: Lookups) -> str:
    """An interface endpoint's policy: the service's needed actions, by this account only."""
    return policy_json(
        [
            {
                "Sid": "".join(p.capitalize() for p in re.split(r"[.-]", service)) + "ActionsOnly",
                "Effect": "Allow",
                "Principal": "*",
                "Action": list(ENDPOINT_ACTIONS[service]),
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalAccount": lookups.account_id}},
            }
        ]
    )


def consumer_vpcs(consumers: Iterable[Consumer]) -> dict[str, tuple[list[str], list[str]]]:
    """The consumers' VPCs in this account: VPC id -> (their CIDRs, their subnets), in order."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for consumer in consumers:
        if consumer.vpc is None:
            continue
        cidrs, subnets = found.setdefault(consumer.vpc, ([], []))
        cidrs.extend(c for c in [consumer.cidr] if c not in cidrs)
        subnets.extend(s for s in consumer.subnets if s not in subnets)
    return found


def assumed_by(service: str, condition: dict[str, dict[str, str]] | None = None) -> str:
    """A role trust policy: only this AWS service may assume the role (on the condition given,
    e.g. the confused-deputy keys aws:SourceAccount and aws:SourceArn)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return policy_json([statement])


def aws_name(stack: str, name: str, limit: int, replaced_by: tuple[str, ...] = ()) -> str:
    """An explicit AWS name for a resource whose auto-name would not fit (load balancers and
    target groups: 32 characters, planner/data/aws_limits.yaml): the start of the logical name
    and a hash of stack and name, so that it is stable, unique per stack and account, and made
    of alphanumerics and inner hyphens only. Never `internal-...` (reserved for internal load
    balancers' DNS names).

    `replaced_by`: the values whose change makes the provider replace the resource. They go into
    the hash, so a replacement gets a new name: Pulumi creates a replacement before deleting the
    old resource, and AWS refuses a second resource of the same name ("This name must be unique
    per region per account", CreateLoadBalancer and CreateTargetGroup, ELB API Reference)."""
    key = "/".join((stack, name, *replaced_by))
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    prefix = re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-")
    if prefix.lower().startswith("internal-"):
        prefix = prefix[len("internal-") :]
    prefix = prefix[: limit - len(digest) - 1].strip("-")
    return f"{prefix}-{digest}" if prefix else digest


# What a service may do with a customer key it encrypts data under.
KEY_USE_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
]


# Pulumi's auto-name: the logical name, "-" and 7 random characters ("Resource names:
# auto-naming", Pulumi docs).
AUTONAME_SUFFIX = 8


@functools.cache
def autoname_limits() -> dict[str, tuple[str, int, str]]:
    """Resource type -> (name property, its maximum length, "lower" or "true") for every type
    whose name pulumi-aws makes from the logical name (planner/data/aws_limits.yaml)."""
    rules = yaml.safe_load((DATA_DIR / "aws_limits.yaml").read_text(encoding="utf-8"))["rules"]
    return {
        rule["type"]: (rule["property"], rule["max_length"], str(rule["autoname"]).lower())
        for rule in rules
        if rule.get("autoname") and "max_length" in rule
    }


def fit_autonames(stack: str) -> Callable[[pulumi.ResourceTransformationArgs], Any]:
    """A stack transformation: a resource whose auto-name (logical name + 8 characters) would
    pass its AWS limit gets an explicit name, aws_name's stable short form, instead. Long
    workload names make long logical names; short ones keep their auto-names."""

    def transform(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult | None:
        found = autoname_limits().get(args.type_)
        if found is None:
            return None
        prop, limit, mode = found
        if args.props.get(prop) is not None or len(args.name) + AUTONAME_SUFFIX <= limit:
            return None
        name = aws_name(stack, args.name, limit)
        props = {**args.props, prop: name.lower() if mode == "lower" else name}
        return pulumi.ResourceTransformationResult(props, args.opts)

    return transform


# EC2 Auto Scaling's service-linked roles: the account's default, or one per pool with a custom
# suffix (AWSServiceRoleForAutoScaling_<suffix>), given to the group as its service_linked_role_arn
# ("Service-linked roles for Amazon EC2 Auto Scaling", EC2 Auto Scaling user guide,
# docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html).
AUTOSCALING_SERVICE = "autoscaling.amazonaws.com"
AUTOSCALING_ROLE = "AWSServiceRoleForAutoScaling"
# IAM role names are at most 64 characters (planner/data/aws_limits.yaml); the prefix
# "AWSServiceRoleForAutoScaling_" takes 29 of them.
AUTOSCALING_SUFFIX_LIMIT = 64 - len(AUTOSCALING_ROLE) - 1


def autoscaling_role(
    stack: str, name: str, tags: dict[str, str], parent: pulumi.Resource
) -> aws.iam.ServiceLinkedRole:
    """The pool's own EC2 Auto Scaling service-linked role, with a custom suffix.

    A KMS key policy may only name principals that exist (CreateKey fails with "invalid
    principals" otherwise), and the default AWSServiceRoleForAutoScaling exists only in an
    account that has had an Auto Scaling group. Creating the default role in the stack would
    fail in every account that has it (a second stack, or any other group), and adopting it
    (`pulumi import`) would let one stack's `destroy` delete a role others use. A role with a
    suffix derived from stack and pool belongs to this stack alone: the key names it and
    depends on it, the groups use it, and any number of stacks share an account."""
    suffix = aws_name(stack, name, AUTOSCALING_SUFFIX_LIMIT)
    return aws.iam.ServiceLinkedRole(
        f"{name}-autoscaling",
        aws_service_name=AUTOSCALING_SERVICE,
        custom_suffix=suffix,
        description=f"EC2 Auto Scaling for pool {name} of stack {stack}",
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def kms_key(
    name: str,
    description: str,
    lookups: Lookups,
    tags: dict[str, str],
    protect: bool,
    parent: pulumi.Resource,
    services: list[str],
    autoscaling_role_arn: pulumi.Input[str] | None = None,
) -> aws.kms.Key:
    """A customer-managed key with rotation on; the account administers it, and only the named
    AWS services (CloudWatch Logs, the pool's Auto Scaling service-linked role for EBS) may use
    it. The key depends on the role through its policy: the role exists before CreateKey."""
    account = f"arn:{lookups.partition}:iam::{lookups.account_id}:root"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": account},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if "logs" in services:
        statements.append(
            {
                "Sid": "CloudWatchLogsEncrypts",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{lookups.region}.{lookups.dns_suffix}"},
                "Action": KEY_USE_ACTIONS,
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{lookups.partition}:logs:{lookups.region}:"
                            f"{lookups.account_id}:log-group:*"
                        )
                    }
                },
            }
        )

    def with_autoscaling(role: str | None) -> str:
        if role is None:
            return policy_json(statements)
        # EC2 Auto Scaling launches instances with volumes encrypted by this key only if its
        # service-linked role may use the key and create grants for EBS ("Required AWS KMS key
        # policy for use with encrypted volumes", EC2 Auto Scaling user guide).
        return policy_json(
            [
                *statements,
                {
                    "Sid": "AutoScalingUsesForEbs",
                    "Effect": "Allow",
                    "Principal": {"AWS": role},
                    "Action": KEY_USE_ACTIONS,
                    "Resource": "*",
                },
                {
                    "Sid": "AutoScalingGrantsForEbs",
                    "Effect": "Allow",
                    "Principal": {"AWS": role},
                    "Action": "kms:CreateGrant",
                    "Resource": "*",
                    "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
            ]
        )

    if "autoscaling" in services and autoscaling_role_arn is None:
        raise ValueError(f"{name}: a key for Auto Scaling needs the service-linked role's ARN")
    policy: pulumi.Input[str] = (
        pulumi.Output.from_input(autoscaling_role_arn).apply(with_autoscaling)
        if "autoscaling" in services
        else with_autoscaling(None)
    )
    return aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy,
        tags=tags,
        opts=guarded(protect, parent),
    )
