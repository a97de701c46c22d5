"""IAM: policy documents, role trust policies, and the roles the stack makes for AWS services
(the pool's own EC2 Auto Scaling service-linked role)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from stacks.aws.lookups import Lookups
from stacks.aws.naming import aws_name


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
