"""The rules whose verdicts are the networks (subjects) and workloads of a report: the perimeter
property, the resolver's way out, and every consumer's way in (planner.verification.perimeter
judges them)."""

from __future__ import annotations

from planner.graph.resources import Graph
from planner.verification.aws_network import Network
from planner.verification.expectations import Expectations
from planner.verification.registry import Finding, rule
from planner.verification.verdicts import perimeter_verdicts

# Rules whose verdicts are held by the networks (subjects) and workloads of a report.
SUBJECT_RULES = ("perimeter", "dns", "way-in")


def _subject_findings(network: Network, expect: Expectations, rule_id: str) -> list[Finding]:
    subjects, workloads = perimeter_verdicts(network, expect)
    held = [*(f for s in subjects for f in s.failures), *(f for w in workloads for f in w.failures)]
    return [f for f in held if f.rule == rule_id]


@rule(
    "perimeter", "the perimeter property: no way out of a workload's network but the allowed ones"
)
def _perimeter(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    return _subject_findings(network, expect, "perimeter")


@rule(
    "dns",
    "the resolver of every technical and private_link network answers only AWS service names: "
    "a DNS Firewall allow-list, then a block-all rule, failing closed",
)
def _dns(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    return _subject_findings(network, expect, "dns")


@rule(
    "way-in",
    "every consumer of every workload has a path to it: security groups, interface endpoint, "
    "endpoint service, load balancer (a pool); the planned Bedrock endpoint (private_link); the "
    "firewall's egress path (contractual)",
)
def _way_in(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    return _subject_findings(network, expect, "way-in")
