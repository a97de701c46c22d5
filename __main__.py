"""The Pulumi program: deploy what the reviewed plan says, and refuse a stale plan."""

from __future__ import annotations

from pathlib import Path

import pulumi

from planner.catalog import default_catalog
from planner.errors import PlannerError
from planner.planfile.schema import check_fresh, read_plan
from stacks.aws.lookups import lookup
from stacks.program import build_stack
from stacks.settings import read_settings

config = pulumi.Config()
plan_file = Path(config.require("plan"))
try:
    plan = read_plan(plan_file)
    check_fresh(plan, plan_file, Path.cwd())
except PlannerError as exc:
    # RunError prints the message alone, without a Python traceback.
    raise pulumi.RunError(exc.render()) from None

settings = read_settings(config, [p.provider for p in plan.providers if p.secret_config_key])
build_stack(plan, default_catalog(), settings, lookup())
