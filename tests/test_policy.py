"""The CrossGuard policy pack's validator, called as `pulumi preview --policy-pack policy` would
call it: with the stack's resources as PolicyResource objects (the CLI is not available here)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyResource, PolicyResourceOptions
from pulumi_policy.policy import PolicyCustomTimeouts

from planner.catalog import default_catalog
from planner.graph.resources import UNKNOWN, Graph, Resource, graph_from_policy
from planner.planfile import Plan
from planner.render.plan_files import plan_json
from planner.verification.aws_types import SG
from planner.verification.expectations import Expectations
from planner.verification.registry import RULES
from planner.verification.run import verify
from policy.checks import stack_validation, validate_stack
from tests import test_verify
from tests.test_verify import FAULTS, POOL, added, find, reachable

reachable_graph = reachable  # the fixture: the example with its consumers' ways in built

clean = test_verify.clean  # the fixture: the example's graph


def policy_resources(graph: Graph) -> list[PolicyResource]:
    """The graph as CrossGuard hands it over: props, options, property dependencies."""
    made: dict[str, PolicyResource] = {}
    for resource in graph.resources.values():
        made[resource.urn] = PolicyResource(
            resource_type=resource.type,
            props=resource.inputs,
            urn=resource.urn,
            name=resource.name,
            opts=PolicyResourceOptions(
                protect=resource.protect,
                ignore_changes=[],
                delete_before_replace=None,
                aliases=[],
                custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
                additional_secret_outputs=[],
            ),
            provider=None,
            parent=None,
            dependencies=[],
            property_dependencies={},
        )
    for resource in graph.resources.values():
        made[resource.urn].property_dependencies = {
            key: [made[u] for u in urns if u in made] for key, urns in resource.deps.items()
        }
    return list(made.values())


class Args:
    def __init__(self, resources: list[PolicyResource], config: dict[str, Any]) -> None:
        self.resources = resources
        self.config = config

    def get_config(self) -> dict[str, Any]:
        return self.config


def violations(graph: Graph, config: dict[str, Any] | None = None) -> list[str]:
    found: list[str] = []
    stack_validation(Args(policy_resources(graph), config or {}),
                     lambda message, urn: found.append(message))  # fmt: skip
    return found


def test_clean_stack_has_no_violation(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, _, _ = clean
    assert violations(graph) == []


def test_open_egress_and_a_way_out_are_violations(
    clean: tuple[Graph, Plan, dict[str, Any]],
) -> None:
    graph, _, _ = clean
    group = find(graph, SG, f"{POOL}-nodes")
    graph = added(
        graph,
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "anywhere",
        {"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"},
        {"securityGroupId": [group]},
    )
    vpc = find(graph, "aws:ec2/vpc:Vpc", f"{POOL}-net-vpc")
    graph = added(
        graph, "aws:ec2/internetGateway:InternetGateway", "igw", {"vpcId": "v"}, {"vpcId": [vpc]}
    )
    graph = added(
        graph,
        "aws:ec2/route:Route",
        "out",
        {"destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw-id"},
        {
            "routeTableId": [find(graph, "aws:ec2/routeTable:RouteTable", f"{POOL}-net-private")],
            "gatewayId": [find(graph, "aws:ec2/internetGateway:InternetGateway", "igw")],
        },
    )
    found = violations(graph)
    assert any(v.startswith("[open-egress]") and f"{POOL}-nodes" in v for v in found)
    assert any(v.startswith("[perimeter]") and "internet gateway" in v and "path: " in v
               for v in found)  # fmt: skip


def test_protection_can_be_waived_for_a_dev_stack(
    clean: tuple[Graph, Plan, dict[str, Any]],
) -> None:
    graph, _, _ = clean
    bare = Graph({u: dataclasses.replace(r, protect=False) for u, r in graph.resources.items()})
    assert any(v.startswith("[deletion]") for v in violations(bare))
    assert violations(bare, {"allow_unprotected": True}) == []


def test_the_count_matches_the_reports(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, _, _ = clean
    key = find(graph, "aws:kms/key:Key", f"{POOL}-key")
    broken = Graph({**graph.resources, key.urn: Resource(
        key.urn, key.type, key.name, {**key.inputs, "enableKeyRotation": False}, key.deps,
        key.protect, key.retain_on_delete)})  # fmt: skip
    found: list[str] = []
    assert validate_stack(policy_resources(broken), {}, lambda m, u: found.append(m)) == 1
    assert found == [f"[key-rotation] key {POOL}-key: rotation is off"]
    assert json.dumps(found)  # plain strings: what the CLI prints


def test_an_unknown_is_no_violation_of_the_pack(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    """A policy known only after `pulumi up` is an UNKNOWN of its rule in `planner verify`; the
    pack, as before unknowns were results, reports only failures (CrossGuard has no third
    verdict), so it is no violation, while a failure beside it still is."""
    graph, _, _ = clean
    policy = find(graph, "aws:s3/bucketPolicy:BucketPolicy", f"{POOL}-weights")
    unknown = test_verify.changed(graph, policy, policy=UNKNOWN)
    expect = Expectations.of(None, default_catalog())
    report = verify(graph_from_policy(policy_resources(unknown)), expect)
    assert [(f.rule, f.resource) for f in report.unknowns()] == [
        ("buckets", f"bucket {POOL}-weights")
    ]
    assert violations(unknown) == []
    key = find(unknown, "aws:kms/key:Key", f"{POOL}-key")
    broken = test_verify.changed(unknown, key, enableKeyRotation=False)
    assert violations(broken) == [f"[key-rotation] key {POOL}-key: rotation is off"]


def test_the_pack_serves_one_mandatory_stack_policy(monkeypatch: Any) -> None:
    """policy/__main__.py as the CLI runs it, with the server replaced by a recorder."""
    import runpy

    import pulumi_policy

    made: dict[str, Any] = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: made.update(kwargs))
    runpy.run_path(str(Path(__file__).resolve().parent.parent / "policy" / "__main__.py"))
    assert made["name"] == "ai-infra-planner"
    assert made["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    [policy] = made["policies"]
    assert isinstance(policy, pulumi_policy.StackValidationPolicy)
    # The pack's validation is the checks' entry point: it reports what they find.
    calls: list[Any] = []
    policy.validate(Args([], {}), lambda message, urn: calls.append(message))
    assert calls == []  # an empty stack breaks no rule
    assert policy._StackValidationPolicy__validate is stack_validation  # type: ignore[attr-defined]


@pytest.mark.parametrize("rule_id", list(RULES))
def test_every_rule_is_a_violation_of_the_pack(
    clean: tuple[Graph, Plan, dict[str, Any]], rule_id: str, tmp_path: Path
) -> None:
    """The pack runs the registry's checks: each rule's injected fault is reported under its id,
    and the count returned is the number of failures `planner verify` finds."""
    graph, plan, _ = clean
    # With the plan, as the workflow runs the pack: the way in needs the plan's consumers.
    path = tmp_path / "plan.json"
    path.write_text(plan_json(plan))
    config: dict[str, Any] = {"plan": str(path)}
    expect = Expectations.of(plan, default_catalog())
    assert verify(graph, expect).failures() == []  # the example is clean, so the fault is the cause
    faulty = FAULTS[rule_id](graph)
    found: list[str] = []
    count = validate_stack(policy_resources(faulty), config, lambda m, u: found.append(m))
    assert any(v.startswith(f"[{rule_id}] ") for v in found), found
    assert count == len(found) == len(verify(faulty, expect).failures())


def test_with_the_plan_an_unserved_workload_is_a_violation(
    clean: tuple[Graph, Plan, dict[str, Any]], tmp_path: Path
) -> None:
    """An empty stack against a plan with workloads: each workload no network serves (and each
    pool with no network) is a violation, as in `planner verify`."""
    _, plan, _ = clean
    path = tmp_path / "plan.json"
    path.write_text(plan_json(plan))
    found: list[str] = []
    validate_stack([], {"plan": str(path)}, lambda m, u: found.append(m))
    served_by_pools = {name for pool in plan.pools for name in pool.workloads}
    expected = [
        f"[perimeter] workload {w.name}: no network of the stack serves it"
        for w in plan.workloads
        if w.name not in served_by_pools
    ]
    assert expected and set(expected) <= set(found)
    assert sum(v.startswith("[perimeter] pool ") for v in found) == len(plan.pools)


def test_dns_and_the_way_in_are_violations_of_the_pack(
    reachable_graph: tuple[Graph, Expectations],
) -> None:
    """The pack holds the DNS proof: a pool's VPC whose DNS Firewall association is gone is a
    [dns] violation naming the VPC, with the resolver in its path (the way-in rule, which needs
    the plan's consumers, is test_every_rule_is_a_violation_of_the_pack[way-in])."""
    graph, _ = reachable_graph
    found = violations(FAULTS["dns"](graph))
    assert any(v.startswith(f"[dns] vpc {POOL}-net-vpc: no DNS Firewall rule group") and
               f"Route 53 Resolver of vpc {POOL}-net-vpc" in v for v in found), found  # fmt: skip
    assert violations(graph) == []
