"""What a deployment target's stack builder takes and gives for one self-hosted pool, whatever
the target: the plan's pool with what the stack knows of its callers, and what the stack exports
of the pool it built (stacks/targets.py registers each target's builder)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from planner.catalog import Catalog
from planner.planfile import ClusterSite, Pool, WorkloadPlan
from stacks.addressing import WorkloadCost
from stacks.aws.lookups import Lookups
from stacks.settings import StackSettings


@dataclass(frozen=True)
class PoolRequest:
    """One pool of the plan to build, with its workloads (consumers and cost tags)."""

    pool: Pool
    # The cluster the pool runs on (the plan's `sites`), or None on AWS EC2.
    site: ClusterSite | None
    catalog: Catalog
    settings: StackSettings
    lookups: Lookups
    # The plan's workloads the pool serves, by name, and their costs and tags.
    workloads: dict[str, WorkloadPlan]
    costs: list[WorkloadCost]


@dataclass(frozen=True)
class BuiltPool:
    """What the stack exports of a pool it built."""

    # How callers reach the pool (stack output `pools`).
    connection: dict[str, object]
    # Workload -> what its callers need to call it (stack output `workloads`).
    callers: dict[str, dict[str, object]]
    # The CA its callers trust (an EC2 pool's private CA, a cluster pool's own CA; None: a
    # target whose pools serve no TLS of their own).
    ca_certificate: pulumi.Output[str] | None
    monthly_cost_usd: pulumi.Output[float]
    # The pool network's Network Access Analyzer scope, to analyze after `pulumi up` (None:
    # not an AWS network; a cluster pool's boundary is its NetworkPolicy).
    access_scope_id: pulumi.Output[str] | None
    # The address its load balancer got, known once `pulumi up` made it (stack output
    # `load_balancer_addresses`, apart from `pools` so that a preview still shows those): where
    # a cluster pool's <namespace>.<dns_suffix> points. None: no such address to give.
    load_balancer_address: pulumi.Output[str | None] | None = None
