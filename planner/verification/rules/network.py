"""Network rules: flow logs, security groups open to the world (in, or out of a GPU node), and
public addresses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from planner import names
from planner.graph.resources import Graph, Resource, Unknown
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
from planner.verification.headers import protocol_set, within
from planner.verification.registry import Finding, rule
from planner.verification.values import items, truthy


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


CIDR_KEYS = ("cidrIpv4", "cidrIpv6", "cidrBlocks", "ipv6CidrBlocks")
WORLD = ("0.0.0.0/0", "::/0")
UNKNOWN_ADDRESS = "an address known only after `pulumi up`"


def _cidrs(values: dict[str, Any]) -> tuple[list[str], bool]:
    """A rule's CIDRs (scalar or list fields), and whether one of them is known only after
    `pulumi up` (the field itself or an item of its list): never iterated, never dropped."""
    found: list[str] = []
    unknown = False
    for key in CIDR_KEYS:
        listed = items(values.get(key))
        unknown = unknown or any(isinstance(v, Unknown) for v in listed)
        found += [v for v in listed if isinstance(v, str)]
    return found, unknown


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
        cidrs, unknown = _cidrs(values)
        for cidr in cidrs:
            if cidr in WORLD:
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
            found += _endpoint_peers(graph, group, entry, values, pool, cidrs, unknown)
        elif unknown:
            found.append(
                Finding.unknown(
                    "open-ingress",
                    entry.label,
                    f"admits {UNKNOWN_ADDRESS} into {group.name}: it may be 0.0.0.0/0",
                )
            )
    return found


def _endpoint_peers(
    graph: Graph,
    group: Resource,
    entry: Resource,
    values: dict[str, Any],
    pool: str,
    cidrs: list[str],
    unknown: bool,
) -> list[Finding]:
    """What else a rule of a model endpoint's group admits besides the consumers' ranges, read
    as the network model reads it (aws_components.Components._peer): an address known only
    after `pulumi up` (UNKNOWN), a prefix list (any address: FAIL), members of a security group
    other than the pool's own serving groups (they may sit anywhere: FAIL; UNKNOWN when the
    group is known only after `pulumi up`), and addresses admitted beyond one TCP port (every
    protocol, a port range: FAIL; the stack admits consumers to the serving port only)."""
    endpoint = f"the model endpoint of pool {pool}"
    found = []
    if unknown:
        found.append(
            Finding.unknown(
                "open-ingress",
                entry.label,
                f"admits {UNKNOWN_ADDRESS} to {endpoint}: that it is one of its consumers is "
                "not proven (it may be 0.0.0.0/0)",
            )
        )
    for key in ("prefixListId", "prefixListIds"):
        for listed in items(values.get(key)):
            name = "known only after `pulumi up`" if isinstance(listed, Unknown) else listed
            found.append(
                Finding(
                    "open-ingress",
                    entry.label,
                    f"admits prefix list {name} to {endpoint}: a prefix list is not one of its "
                    "consumers (it may hold any address)",
                )
            )
    peer_keys = ("referencedSecurityGroupId", "sourceSecurityGroupId", "securityGroups")
    peers = [v for key in peer_keys for v in items(values.get(key)) if v]
    self_ = [group] if truthy(values.get("self")) else []
    if entry is group:  # an inline rule: its groups' dependencies are the group's `ingress`
        refs = (graph.refs(group, "ingress", SG) if peers else []) + self_
    else:
        refs = [r for key in peer_keys for r in graph.refs(entry, key, SG)] + self_
    for ref in refs:
        if ref.tags().get(names.TAG_POOL) != pool or not _serves(graph, ref):
            found.append(
                Finding(
                    "open-ingress",
                    entry.label,
                    f"admits members of security group {ref.name} to {endpoint}: they may sit "
                    "anywhere, not only among its consumers",
                )
            )
    if peers and not refs:
        if any(isinstance(p, Unknown) for p in peers):
            found.append(
                Finding.unknown(
                    "open-ingress",
                    entry.label,
                    f"admits members of a security group known only after `pulumi up` to "
                    f"{endpoint}: that they are among its consumers is not proven",
                )
            )
        else:
            found.append(
                Finding(
                    "open-ingress",
                    entry.label,
                    f"admits members of security group {', '.join(map(str, peers))}, which the "
                    f"stack does not make, to {endpoint}: they may sit anywhere",
                )
            )
    protocols = protocol_set(
        values.get("ipProtocol", values.get("protocol")),
        values.get("fromPort"),
        values.get("toPort"),
    )
    if (cidrs or unknown) and not (
        len(protocols) == 1 and protocols[0][0] == "tcp" and protocols[0][1] == protocols[0][2]
    ):
        found.append(
            Finding(
                "open-ingress",
                entry.label,
                f"admits {', '.join(cidrs + ([UNKNOWN_ADDRESS] if unknown else []))} to "
                f"{endpoint} on {_protocols_text(protocols)}: its consumers are admitted to one "
                "TCP port, the serving port",
            )
        )
    return found


def _protocols_text(protocols: list[tuple[str, int, int]]) -> str:
    if len(protocols) > 1:
        return "every protocol and port"
    name, low, high = protocols[0]
    if name in ("tcp", "udp"):
        return f"{name} ports {low}-{high}" if low != high else f"{name} port {low}"
    return name if name != "other" else "another protocol"


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
        cidrs, unknown = _cidrs(values)
        if unknown:
            found.append(
                Finding.unknown(
                    "open-egress",
                    entry.label,
                    f"lets GPU nodes of {group.name} out to {UNKNOWN_ADDRESS}: it may be 0.0.0.0/0",
                )
            )
        for cidr in cidrs:
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
