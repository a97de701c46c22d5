"""Who may do what: IAM policy documents and role trust policies, the roles the stack makes (a
pool's EC2 Auto Scaling service-linked role, its nodes' role and instance profile), and a pool's
serving API key with the policies that let its callers read it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from stacks.addressing import WorkloadCost
from stacks.aws.lookups import Lookups
from stacks.aws.naming import aws_name
from stacks.settings import guarded

API_KEY_LENGTH = 48


def policy_json(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


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


def secret_read_policy(secret_arn: str, key_arn: str, lookups: Lookups) -> str:
    """Read one secret, and decrypt it with its key through Secrets Manager only."""
    return policy_json(
        [
            {
                "Sid": "ReadThisSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": secret_arn,
            },
            {
                # Reading the secret decrypts it with its key, through Secrets Manager only.
                "Sid": "DecryptThroughSecretsManager",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": key_arn,
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{lookups.region}.{lookups.dns_suffix}"
                    }
                },
            },
        ]
    )


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


def node_profile(
    name: str,
    *,
    bucket_arn: pulumi.Input[str],
    key_arn: pulumi.Input[str],
    repository_arn: pulumi.Input[str],
    log_group_arn: pulumi.Input[str],
    api_key_arn: pulumi.Input[str],
    multi_node: bool,
    partition: str,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.iam.InstanceProfile:
    """The nodes' role (Session Manager, and node_policy), as the instance profile they run
    with."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-node",
        assume_role_policy=assumed_by("ec2.amazonaws.com"),
        tags=tags,
        opts=child,
    )
    aws.iam.RolePolicyAttachment(
        f"{name}-node-ssm",
        role=role.name,
        policy_arn=f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
        opts=child,
    )
    aws.iam.RolePolicy(
        f"{name}-node",
        role=role.id,
        policy=pulumi.Output.all(
            bucket_arn, key_arn, repository_arn, log_group_arn, api_key_arn
        ).apply(lambda values: node_policy(*values, multi_node=multi_node)),
        opts=child,
    )
    return aws.iam.InstanceProfile(f"{name}-node", role=role.name, tags=tags, opts=child)


def node_policy(
    bucket_arn: str,
    key_arn: str,
    repository_arn: str,
    log_group_arn: str,
    api_key_arn: str,
    *,
    multi_node: bool,
) -> str:
    statements: list[dict[str, object]] = [
        {
            # The pool's own API key and no other secret.
            "Sid": "ReadTheApiKey",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": api_key_arn,
        },
        {
            "Sid": "ReadWeights",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [bucket_arn, f"{bucket_arn}/weights/*"],
        },
        {
            "Sid": "UseThePoolKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key_arn,
        },
        {
            "Sid": "PullTheServingImage",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            "Resource": repository_arn,
        },
        {
            # ECR issues registry tokens for the account; the action takes no resource ARN.
            "Sid": "RegistryLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "WriteServingLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": f"{log_group_arn}:*",
        },
    ]
    if multi_node:
        statements.append(
            {
                # The head's lease, per replica group (templates/cloud-init.yaml.j2).
                "Sid": "ElectTheRayHead",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"{bucket_arn}/ray/*",
            }
        )
    return policy_json(statements)


@dataclass(frozen=True)
class ApiKey:
    secret: aws.secretsmanager.Secret
    # Per workload, the policy its callers' role attaches to read the key.
    access_policies: dict[str, aws.iam.Policy]


def pool_api_key(
    name: str,
    pool: str,
    key_arn: pulumi.Output[str],
    workloads: Sequence[WorkloadCost],
    lookups: Lookups,
    tags: dict[str, str],
    protect: bool,
    parent: pulumi.Resource,
) -> ApiKey:
    """The serving API key: generated by the stack, kept in Secrets Manager under the pool's
    key, read by the nodes at boot with their role. It never appears in user data, tags,
    outputs or logs; in the Pulumi state it is a secret (encrypted by the stack's secrets
    provider)."""
    api_key = random.RandomPassword(
        f"{name}-api-key",
        length=API_KEY_LENGTH,
        special=False,
        opts=guarded(protect, parent),
    )
    secret = aws.secretsmanager.Secret(
        f"{name}-api-key",
        description=f"vLLM API key of pool {pool}: callers send it as a bearer token",
        kms_key_id=key_arn,
        recovery_window_in_days=30,
        tags=tags,
        opts=guarded(protect, parent),
    )
    aws.secretsmanager.SecretVersion(
        f"{name}-api-key",
        secret_id=secret.id,
        secret_string=api_key.result,
        opts=guarded(protect, parent),
    )
    # Per workload, what its callers' role attaches to read the key (and decrypt it through
    # Secrets Manager only): the stack attaches it to nothing, the callers' roles are theirs.
    policies = {
        workload.name: aws.iam.Policy(
            f"{workload.name}-pool-access",
            description=f"{workload.name}: read the API key of pool {pool}, only that",
            policy=pulumi.Output.all(secret.arn, key_arn).apply(
                lambda values: secret_read_policy(values[0], values[1], lookups)
            ),
            tags=workload.tags,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for workload in workloads
    }
    return ApiKey(secret, policies)
