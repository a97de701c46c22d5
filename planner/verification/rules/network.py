"""Network rules: flow logs, security groups open to the world (in, or out of a GPU node), and
public addresses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from planner import names
from planner.graph.resources import Graph, Resource
from planner.verification.aws_network import Network
from planner.verification.aws_types import (
    EIP,
    FLOW_LOG,
    INSTANCE,
    KMS_KEY,
    LAUNCH_TEMPLATE,
    LB,
    LOG_GROUP,
    SG,
    SG_EGRESS,
    SG_INGRESS,
    SG_RULE,
    SUBNET,
    VPC,
)
from planner.verification.expectations import Expectations
from planner.verification.headers import within
from planner.verification.registry import Finding, rule
from planner.verification.values import truthy


@rule(
    "flow-logs",
    "every VPC has a flow log to a KMS-encrypted log group",
    VPC,
    FLOW_LOG,
    LOG_GROUP,
)
def _flow_logs(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    found = []
    for vpc in graph.of_type(VPC):
        logs = [f for f in graph.users(vpc, FLOW_LOG) if graph.ref(f, "vpcId") is vpc]
        if not logs:
            found.append(Finding("flow-logs", vpc.label, "no flow log"))
            continue
        for log in logs:
            groups = graph.refs(log, "logDestination", LOG_GROUP)
            if not groups:
                found.append(
                    Finding("flow-logs", log.label, "does not log to a CloudWatch log group")
                )
            for group in groups:
                if not graph.refs(group, "kmsKeyId", KMS_KEY):
                    found.append(
                        Finding("flow-logs", group.label, "not encrypted with a customer key")
                    )
    return found


def _rules_of(graph: Graph, direction: str) -> Iterator[tuple[Resource, Resource, dict[str, Any]]]:
    """(security group, rule resource or the group, rule values) of every rule, inline or not."""
    for group in graph.of_type(SG):
        for entry in group.inputs.get(direction) or []:
            if isinstance(entry, dict):
                yield group, group, entry
    kind = SG_INGRESS if direction == "ingress" else SG_EGRESS
    for entry in graph.of_type(kind, SG_RULE):
        if entry.type == SG_RULE and entry.inputs.get("type") != direction:
            continue
        owner = graph.ref(entry, "securityGroupId")
        if owner is not None:
            yield owner, entry, entry.inputs


def _cidrs(values: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for key in ("cidrIpv4", "cidrIpv6", "cidrBlocks", "ipv6CidrBlocks"):
        value = values.get(key)
        found += (
            [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]
        )
    return found


@rule(
    "open-ingress",
    "no rule admits 0.0.0.0/0 or ::/0; model endpoints admit only their consumers",
    SG,
    SG_INGRESS,
    SG_RULE,
)
def _open_ingress(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    found = []
    for group, entry, values in _rules_of(graph, "ingress"):
        cidrs = _cidrs(values)
        for cidr in cidrs:
            if cidr in ("0.0.0.0/0", "::/0"):
                found.append(
                    Finding("open-ingress", entry.label, f"admits {cidr} into {group.name}")
                )
        pool = group.tags().get(names.TAG_POOL)
        if pool in expect.pools and _serves(graph, group):
            consumers = expect.pools[pool][2]
            vpc = network.vpc_of(group)
            allowed = consumers + (network.vpc_cidrs(vpc) if vpc else [])
            for cidr in cidrs:
                if not any(within(cidr, c) for c in allowed):
                    found.append(
                        Finding(
                            "open-ingress",
                            entry.label,
                            f"admits {cidr} to the model endpoint of pool {pool}, "
                            "which is not one of its consumers",
                        )
                    )
    return found


def _serves(graph: Graph, group: Resource) -> bool:
    """The group guards a model endpoint: the nodes' launch template or the load balancer."""
    return bool(graph.users(group, LAUNCH_TEMPLATE, LB, INSTANCE))


def _node_groups(graph: Graph) -> set[str]:
    """Security groups of GPU nodes: those of launch templates and instances."""
    urns: set[str] = set()
    for holder in graph.of_type(LAUNCH_TEMPLATE, INSTANCE):
        for values in holder.deps.values():
            urns.update(u for u in values if u in graph.resources and graph.resources[u].type == SG)
    return urns


@rule(
    "open-egress",
    "no egress to 0.0.0.0/0 or ::/0 from a GPU node",
    SG,
    SG_EGRESS,
    SG_RULE,
)
def _open_egress(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    nodes = _node_groups(graph)
    found = []
    for group, entry, values in _rules_of(graph, "egress"):
        if group.urn not in nodes:
            continue
        for cidr in _cidrs(values):
            if cidr in ("0.0.0.0/0", "::/0"):
                found.append(
                    Finding(
                        "open-egress", entry.label, f"lets GPU nodes of {group.name} out to {cidr}"
                    )
                )
    return found


@rule(
    "public-ip",
    "no instance, launch template, subnet or load balancer hands out public addresses",
    SUBNET,
    LAUNCH_TEMPLATE,
    INSTANCE,
    LB,
    EIP,
)
def _public_ip(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    found = []
    for subnet in graph.of_type(SUBNET):
        if truthy(subnet.inputs.get("mapPublicIpOnLaunch")):
            found.append(Finding("public-ip", subnet.label, "hands out public addresses"))
    for holder in graph.of_type(LAUNCH_TEMPLATE, INSTANCE):
        interfaces = holder.inputs.get("networkInterfaces") or []
        if truthy(holder.inputs.get("associatePublicIpAddress")) or any(
            isinstance(i, dict) and truthy(i.get("associatePublicIpAddress")) for i in interfaces
        ):
            found.append(Finding("public-ip", holder.label, "gives its nodes public addresses"))
    for balancer in graph.of_type(LB):
        if balancer.inputs.get("internal") is not True:
            found.append(Finding("public-ip", balancer.label, "is internet-facing"))
    for address in graph.of_type(EIP):
        if graph.refs(address, "instance") or graph.refs(address, "networkInterface"):
            found.append(Finding("public-ip", address.label, "gives an instance a public address"))
    return found
