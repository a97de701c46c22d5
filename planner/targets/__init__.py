"""Deployment targets: where a self-hosted pool's nodes come from and what they cost.

A target offers kinds of node (an EC2 instance type; a cluster's GPU node, to come), prices a
node an hour under a purchase option with the figures that price rests on, and says what a pool
costs on it whatever its size (staff, network pieces) and what its nodes cost under every
purchase option. Planning asks the targets `pool_targets` returns for candidates and never names
one; the stack builds a pool with the builder registered for its kind (stacks/targets.py), and
`planner verify` reads the network with its model (planner/verification/aws_network.py for AWS).
AWS EC2 is the first target (aws_ec2.py). A new one is a module here implementing base.Target,
its kind listed in TARGET_KINDS and returned by pool_targets, its stack builder and network
model, and its figures in planner/data.
"""

from __future__ import annotations

from planner.costing import Settings
from planner.inputs.sites import KubernetesSite
from planner.targets.aws_ec2 import AWS_EC2, AwsEc2
from planner.targets.base import Cited, Offer, Target
from planner.targets.kubernetes import KubernetesTarget

# The kinds of target, each with its stack builder (stacks/targets.py POOL_BUILDERS).
TARGET_KINDS = (AWS_EC2.kind, KubernetesTarget.kind)


def pool_targets(settings: Settings) -> list[Target]:
    """The targets a plan's pools may use, in the order their candidates are built: the file's
    `sites` in its order, or AWS EC2 in the region without them."""
    if settings.sites is None:
        return [AWS_EC2]
    return [
        KubernetesTarget(site, index, settings.amortization_months)
        if isinstance(site, KubernetesSite)
        else AwsEc2(name=site.name)
        for index, site in enumerate(settings.sites)
    ]


__all__ = ["TARGET_KINDS", "Cited", "Offer", "Target", "pool_targets"]
