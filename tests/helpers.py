"""Plan a workloads text in memory, without touching the file system."""

from __future__ import annotations

import hashlib
from pathlib import Path

from planner.catalog import Catalog
from planner.loader import LoadedWorkloads, parse_workloads
from planner.model import Plan, WorkloadPlan
from planner.plan import build_plan


def plan_text(text: str, catalog: Catalog, stack: str = "dev") -> Plan:
    spec = parse_workloads(text, "workloads.yaml", catalog)
    loaded = LoadedWorkloads(
        Path("workloads.yaml"), spec, hashlib.sha256(text.encode()).hexdigest()
    )
    return build_plan(loaded, catalog, stack, "workloads.yaml")


def only(plan: Plan) -> WorkloadPlan:
    [workload] = plan.workloads
    return workload


def consumer_pieces_usd(plan: Plan) -> float:
    """What the stack's API boundaries add per consumer VPC that the plan does not price yet
    (its fixed pieces are per kind, planner/data/operations.yaml): the transit gateway
    attachments of the egress path (the egress VPC's and one per consumer VPC, 36.50 each),
    Bedrock endpoints by the consumers' subnets rather than two zones (7.30 each), and no log
    key where no caller is a plain CIDR (no network of its own to log). `planner preview` says
    the difference."""
    by_name = {w.name: w for w in plan.workloads}
    gap = 0.0
    egress = {
        c.vpc
        for a in plan.providers
        if not a.private_link
        for n in a.workloads
        for c in by_name[n].consumers
        if c.vpc
    }
    if egress:
        gap += 36.50 * (len(egress) + 1)
    for access in plan.providers:
        if not access.private_link:
            continue
        consumers = [c for n in access.workloads for c in by_name[n].consumers]
        subnets = {c.vpc: len(c.subnets) for c in consumers if c.vpc}
        own = any(c.vpc is None and c.account is None for c in consumers)
        endpoints = sum(subnets.values()) + (2 if own else 0)
        gap += 7.30 * (endpoints - 2) - (0.0 if own else 1.00)
    return round(gap, 2)
