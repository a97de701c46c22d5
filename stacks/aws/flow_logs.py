"""VPC flow logs: every packet decision of a VPC, to a log group encrypted with a customer key,
written by a role only the VPC Flow Logs service of this account may assume."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from stacks.aws.identity import assumed_by, policy_json
from stacks.aws.lookups import Lookups


def flow_logs_trust(lookups: Lookups) -> str:
    """The flow-log role's trust policy: the VPC Flow Logs service, for this account's flow logs
    only (the confused-deputy conditions of "IAM role for publishing flow logs to CloudWatch
    Logs", Amazon VPC user guide, docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html:
    aws:SourceAccount the account, aws:SourceArn arn:...:ec2:<region>:<account>:vpc-flow-log/*)."""
    account = lookups.account_id
    return assumed_by(
        "vpc-flow-logs.amazonaws.com",
        {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {
                "aws:SourceArn": (
                    f"arn:{lookups.partition}:ec2:{lookups.region}:{account}:vpc-flow-log/*"
                )
            },
        },
    )


def flow_logs_policy(log_group_arn: str) -> str:
    """What the flow-log role may do: write streams of its one log group. DescribeLogGroups
    (in AWS's documented policy for the role, same page) takes no resource ARN ("Actions,
    resources, and condition keys for Amazon CloudWatch Logs", Service Authorization
    Reference: no resource type for DescribeLogGroups), so it stands alone on `*`."""
    return policy_json(
        [
            {
                "Sid": "WriteTheFlowLogGroup",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                "Resource": [log_group_arn, f"{log_group_arn}:*"],
            },
            {
                "Sid": "DescribeLogGroups",
                "Effect": "Allow",
                "Action": "logs:DescribeLogGroups",
                "Resource": "*",
            },
        ]
    )


def add_flow_logs(
    name: str,
    vpc: aws.ec2.Vpc,
    kms_key_arn: pulumi.Input[str],
    retention_days: int,
    tags: dict[str, str],
    parent: pulumi.Resource,
    lookups: Lookups,
) -> aws.cloudwatch.LogGroup:
    """Every packet decision of the VPC, to a log group encrypted with the customer key."""
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-flow-logs",
        retention_in_days=retention_days,
        kms_key_id=kms_key_arn,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    role = aws.iam.Role(
        f"{name}-flow-logs",
        assume_role_policy=flow_logs_trust(lookups),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.iam.RolePolicy(
        f"{name}-flow-logs",
        role=role.id,
        policy=log_group.arn.apply(flow_logs_policy),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.ec2.FlowLog(
        f"{name}-flow-log",
        vpc_id=vpc.id,
        traffic_type="ALL",
        log_destination_type="cloud-watch-logs",
        log_destination=log_group.arn,
        iam_role_arn=role.arn,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return log_group
