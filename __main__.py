"""The Pulumi program: deploy what the reviewed plan says, and refuse a stale plan."""

from __future__ import annotations

from pathlib import Path

import pulumi

from planner.errors import PlannerError
from planner.model import check_fresh, read_plan

config = pulumi.Config()
plan_file = Path(config.require("plan"))
try:
    plan = read_plan(plan_file)
    check_fresh(plan, plan_file, Path.cwd())
except PlannerError as exc:
    # RunError prints the message alone, without a Python traceback.
    raise pulumi.RunError(exc.render()) from None

pulumi.export("monthly_cost_usd", plan.totals.monthly_cost_usd)
pulumi.export("workload_monthly_cost_usd", {w.name: w.monthly_cost_usd for w in plan.workloads})
pulumi.export("placements", {w.name: w.placement for w in plan.workloads})
