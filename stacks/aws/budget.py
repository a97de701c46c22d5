"""An AWS Budgets budget for the stack: its limit the plan's total, alerts at 80 % and 100 %.

The budget counts the costs carrying the stack's tag. AWS Budgets and Cost Explorer see a
user-defined tag only once it is activated as a cost allocation tag, and AWS can activate a tag
key only after it has appeared on billed usage, up to 24 hours after resources first carry it
(pulumi-aws CostAllocationTag: "After the user-defined tags are created and applied to
resources, it can take up to 24 hours for the tag keys to appear on Cost Allocation tag page for
activation"; AWS Billing User Guide, "Activating user-defined cost allocation tags"). Activating
it on the first `pulumi up` fails (the key is unknown yet; hashicorp/terraform-provider-aws
issue 29068), and only the organization's management account may activate it. So the stack
activates it when `activate_cost_tag` is set, on a later `pulumi up`, and says so until then.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from planner import names

ALERT_PERCENTS = (80, 100)
# The tag every resource of the stack carries with the stack's name, and the budget counts by.
STACK_TAG = names.TAG_STACK
# What the management account runs to activate it where the stack does not.
ACTIVATE_COMMAND = (
    "aws ce update-cost-allocation-tags-status --cost-allocation-tags-status "
    f"TagKey={STACK_TAG},Status=Active"
)


@dataclass
class CostBudgetArgs:
    stack: str
    monthly_limit_usd: float
    subscriber_email: str | None
    tags: dict[str, str]
    # Activate the stack tag as a cost allocation tag (once AWS has seen it on usage).
    activate_tag: bool = False


class CostBudget(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: CostBudgetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(names.COST_BUDGET, name, None, opts)
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
        self.cost_tag: aws.costexplorer.CostAllocationTag | None = None
        if args.activate_tag:
            # Account-wide, shared by every stack of this program: a destroyed stack leaves it
            # active (retain_on_delete), so the other stacks' budgets keep counting.
            self.cost_tag = aws.costexplorer.CostAllocationTag(
                f"{name}-cost-tag",
                tag_key=STACK_TAG,
                status="Active",
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
        else:
            pulumi.log.warn(
                f"the budget counts nothing until the tag {STACK_TAG} is a cost allocation tag: "
                "up to 24 hours after the first `pulumi up`, run `pulumi config set "
                "activate_cost_tag true` and `pulumi up` in the management account (or there: "
                f"{ACTIVATE_COMMAND})",
                resource=self,
            )
        self.budget = aws.budgets.Budget(
            f"{name}-monthly",
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{args.monthly_limit_usd:.2f}",
            limit_unit="USD",
            # What the stack's resources cost, found by the stack tag they all carry.
            cost_filters=[{"name": "TagKeyValue", "values": [f"user:{STACK_TAG}${args.stack}"]}],
            notifications=notifications,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"limit_usd": self.budget.limit_amount})
