"""Deployment targets: where a self-hosted pool's nodes come from and what they cost.

A target offers kinds of node (an EC2 instance type; a cluster's GPU node, to come), prices a
node an hour under a purchase option with the figures that price rests on, and says what a pool
costs on it whatever its size (staff, network pieces) and what its nodes cost under every
purchase option. Planning asks the targets for candidates and never names one; the stack builds
a pool with the builder registered for its target (stacks/targets.py) and `planner verify` reads
its network with the model registered for it (planner/verification/targets.py). AWS EC2 is the
first target (aws_ec2.py); a new one is a module here registered in TARGETS, its stack builder
and its network model, with its figures in planner/data.
"""

from __future__ import annotations

from planner.costing import Settings
from planner.targets.aws_ec2 import AWS_EC2
from planner.targets.base import Cited, Offer, Target

# Every target, by kind. A plan's pools are placed on the targets `pool_targets` returns.
TARGETS: dict[str, Target] = {AWS_EC2.kind: AWS_EC2}


def pool_targets(settings: Settings) -> list[Target]:
    """The targets a plan's pools may use, in the order their candidates are built. Today every
    plan self-hosts on AWS EC2 in its region; a workloads file naming its sites (issue 16) is
    where this chooses among them."""
    return [TARGETS["aws"]]


__all__ = ["TARGETS", "Cited", "Offer", "Target", "pool_targets"]
