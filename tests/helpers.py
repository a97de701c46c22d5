"""Plan a workloads text in memory, without touching the file system."""

from __future__ import annotations

import hashlib
from pathlib import Path

from planner.catalog import Catalog
from planner.inputs.loader import LoadedWorkloads, parse_workloads
from planner.planfile import Plan, WorkloadPlan
from planner.planning.build import build_plan


def plan_text(text: str, catalog: Catalog, stack: str = "dev") -> Plan:
    spec = parse_workloads(text, "workloads.yaml", catalog)
    loaded = LoadedWorkloads(
        Path("workloads.yaml"), spec, hashlib.sha256(text.encode()).hexdigest()
    )
    return build_plan(loaded, catalog, stack, "workloads.yaml")


def only(plan: Plan) -> WorkloadPlan:
    [workload] = plan.workloads
    return workload
