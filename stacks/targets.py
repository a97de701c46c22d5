"""Each deployment target's stack builder, by the target's kind (planner/targets names the
targets and prices them): the program builds a pool with its target's builder and never names
a target itself. A new target's builder is registered here."""

from __future__ import annotations

from collections.abc import Callable

from planner.planfile import Pool
from stacks.aws.target import build_pool as build_aws_pool
from stacks.pools import BuiltPool, PoolRequest

POOL_BUILDERS: dict[str, Callable[[PoolRequest], BuiltPool]] = {"aws": build_aws_pool}


def pool_target(pool: Pool) -> str:
    """The target a plan's pool is built on. Every pool of a plan is on AWS EC2 in the plan's
    region until the workloads file names sites (issue 16), which the pool will then record."""
    return "aws"
