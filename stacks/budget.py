"""An AWS Budgets budget for the stack: its limit the plan's total, alerts at 80 % and 100 %."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stacks.common import TAG_PREFIX

ALERT_PERCENTS = (80, 100)


@dataclass
class CostBudgetArgs:
    stack: str
    monthly_limit_usd: float
    subscriber_email: str | None
    tags: dict[str, str]


class CostBudget(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: CostBudgetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-infra-planner:index:CostBudget", name, None, opts)
        notifications: list[aws.budgets.BudgetNotificationArgs] = []
        if args.subscriber_email:
            notifications = [
                aws.budgets.BudgetNotificationArgs(
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                    notification_type=kind,
                    subscriber_email_addresses=[args.subscriber_email],
                )
                for percent in ALERT_PERCENTS
                for kind in ("ACTUAL", "FORECASTED")
            ]
        else:
            pulumi.log.warn(
                "no budget alerts: set `pulumi config set budget_email <address>`", resource=self
            )
        self.budget = aws.budgets.Budget(
            f"{name}-monthly",
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{args.monthly_limit_usd:.2f}",
            limit_unit="USD",
            # What the stack's resources cost, found by the stack tag they all carry.
            cost_filters=[
                {"name": "TagKeyValue", "values": [f"user:{TAG_PREFIX}:stack${args.stack}"]}
            ],
            notifications=notifications,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"limit_usd": self.budget.limit_amount})
