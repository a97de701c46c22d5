"""Customer-managed KMS keys: one per pool (weights, volumes, logs), per API key, per network's
logs; rotation on, used only by the services named."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from stacks.aws.identity import policy_json
from stacks.aws.lookups import Lookups
from stacks.settings import guarded

# What a service may do with a customer key it encrypts data under.
KEY_USE_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
]


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
