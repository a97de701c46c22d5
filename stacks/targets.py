"""Each deployment target's stack builder, by the target's kind (planner/targets names the
targets and prices them): the program builds a pool with its target's builder and never names
a target itself. A new target's builder is registered here."""

from __future__ import annotations

from collections.abc import Callable

from planner.planfile import ClusterSite, Plan, Pool
from stacks.aws.target import build_pool as build_aws_pool
from stacks.kubernetes.target import build_pool as build_kubernetes_pool
from stacks.pools import BuiltPool, PoolRequest

POOL_BUILDERS: dict[str, Callable[[PoolRequest], BuiltPool]] = {
    "aws": build_aws_pool,
    "kubernetes": build_kubernetes_pool,
}


def pool_site(plan: Plan, pool: Pool) -> ClusterSite | None:
    """The cluster site a pool of the plan runs on, or None: a pool on any other site (the
    default `aws`, or an `aws` site of the workloads file) runs on AWS EC2 in the plan's region."""
    return next((site for site in plan.sites if site.name == pool.site), None)


def pool_target(plan: Plan, pool: Pool) -> str:
    """The kind of target a plan's pool is built on: its site's, from the plan's `sites`."""
    site = pool_site(plan, pool)
    return site.kind if site is not None else "aws"
