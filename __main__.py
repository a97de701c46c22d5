"""The Pulumi program: deploy what the reviewed plan says, and refuse a stale plan."""

from __future__ import annotations

from pathlib import Path

import pulumi

from planner.catalog import default_catalog
from planner.errors import PlannerError
from planner.planfile import check_fresh, read_plan
from stacks.program import run

config = pulumi.Config()
plan_file = Path(config.require("plan"))
try:
    plan = read_plan(plan_file)
    check_fresh(plan, plan_file, Path.cwd(), default_catalog())
except PlannerError as exc:
    # RunError prints the message alone, without a Python traceback.
    raise pulumi.RunError(exc.render()) from None

run(plan, default_catalog())
