"""`planner verify` never passes what it cannot decide, nor crashes on what it cannot read (an
outside review of the gates): a malformed preview step or two steps of one URN are bad input
(exit 2, one line naming the step); values known only after `pulumi up` where a route's
destination or a rule's address should be are read as every address and reported UNKNOWN,
never dropped; a model endpoint's consumers are held to addresses it can prove; SARIF under
--fail-on-unknown says what the exit status says."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from planner.cli import main
from planner.errors import PlannerError
from planner.graph.resources import UNKNOWN, Graph, Resource, graph_from_preview
from planner.planfile import Plan
from planner.verification.aws_types import (
    EIGW,
    IGW,
    NACL,
    ROUTE,
    ROUTE_TABLE,
    SG,
    SG_EGRESS,
    SG_INGRESS,
    SUBNET,
)
from planner.verification.registry import Report, Status, Subject
from tests.test_verify import (
    POOL,
    added,
    changed,
    check,
    clean,
    find,
    pool_vpc,
    route_out,
    rule_failures,
)

example = clean  # the fixture: the example's graph, run under mocks

TYPE = "aws:ec2/securityGroup:SecurityGroup"
URN = f"urn:pulumi:dev::ai-infra-planner::ai-infra-planner:index:Pool${TYPE}::nodes"


def step(op: str = "create", **state: Any) -> dict[str, Any]:
    new = {"type": TYPE, "urn": URN, "custom": True, "inputs": {"name": "nodes"}}
    new.update(state)
    return {"op": op, "urn": URN, "newState": new}


def refused(steps: list[Any]) -> str:
    with pytest.raises(PlannerError) as raised:
        graph_from_preview({"steps": steps}, "p.json")
    [problem] = raised.value.problems
    return f"{problem.field}: {problem.message}"


def test_a_step_the_verifier_cannot_read_is_refused_naming_it() -> None:
    assert refused([step(), {"op": "create", "urn": URN, "newState": {"urn": URN}}]) == (
        "steps[1].newState.type: missing"
    )
    assert refused([step(type="SecurityGroup")]).startswith(
        "steps[0].newState.type: 'SecurityGroup' is not a resource type"
    )
    assert refused([step(inputs=["cidrIpv4", "0.0.0.0/0"])]) == (
        "steps[0].newState.inputs: a list, not an object"
    )
    assert refused([step(propertyDependencies={"vpcId": "urn:pulumi:x::y::vpc"})]) == (
        "steps[0].newState.propertyDependencies.vpcId: not a list of URNs"
    )
    assert refused([step(propertyDependencies=[])]) == (
        "steps[0].newState.propertyDependencies: a list, not an object"
    )
    assert refused([step(urn=7)]) == "steps[0].newState.urn: 7 is not a URN"
    assert refused([{"op": "create", "urn": URN}]).startswith("steps[0].newState: missing")
    assert refused([3]) == "steps[0]: not a preview step (an object)"
    # What leaves the stack is not read, however it is written; null inputs and dependencies
    # are none, as the engine writes them.
    gone = {"op": "delete", "urn": URN, "oldState": {"inputs": []}}
    graph = graph_from_preview(
        {"steps": [gone, step(inputs=None, propertyDependencies={"vpcId": None})]}
    )
    assert graph.resources[URN].inputs == {} and graph.resources[URN].deps == {"vpcId": ()}


def test_two_steps_of_one_urn_are_refused_unless_one_replacement() -> None:
    open_rule = step(inputs={"cidrIpv4": "0.0.0.0/0"})
    for first, last in ((step(), open_rule), (open_rule, step())):
        assert refused([first, last]).startswith(
            f"steps[1].urn: {URN} is also steps[0]'s: two steps declare one resource"
        )
    # The engine writes a replacement as create-replacement, replace and delete-replaced, one
    # URN: one resource, as long as both kept halves say the same.
    new = step("create-replacement", inputs={"name": "new"})
    graph = graph_from_preview(
        {"steps": [new, {**copy.deepcopy(new), "op": "replace"}, step("delete-replaced")]}
    )
    assert graph.resources[URN].inputs == {"name": "new"}
    assert refused([new, step("replace")]).startswith("steps[1].urn: ")
    # A read or imported resource's replacement: read-replacement / import-replacement, the
    # same way (pulumi's deploy.StepOp); two new halves are still two resources.
    for half in ("read-replacement", "import-replacement"):
        other = {**copy.deepcopy(new), "op": half}
        graph = graph_from_preview({"steps": [other, {**copy.deepcopy(new), "op": "replace"}]})
        assert graph.resources[URN].inputs == {"name": "new"}
    assert refused([new, {**copy.deepcopy(new), "op": "read-replacement"}]).startswith(
        "steps[1].urn: "
    )
    # A --refresh that finds the resource gone writes no newState: skipped, and the step that
    # makes it again is the resource.
    gone_outside = {"op": "refresh", "urn": URN}
    assert graph_from_preview({"steps": [gone_outside, new]}).resources[URN].inputs == {
        "name": "new"
    }
    # A --refresh read of what exists gives way to the step that says what it becomes.
    refresh = step("refresh", inputs={"cidrIpv4": "10.0.0.0/8"})
    for steps in ([refresh, open_rule], [open_rule, refresh]):
        assert (
            graph_from_preview({"steps": steps}).resources[URN].inputs
            == open_rule["newState"]["inputs"]
        )


def test_verify_refuses_a_malformed_step_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    preview = tmp_path / "preview.json"
    for steps, said in (
        ([step(), {"op": "same", "urn": URN, "newState": {"urn": URN, "inputs": {}}}], (
            "steps[1].newState.type: missing"
        )),
        ([step(inputs=[rpc.UNKNOWN])], "steps[0].newState.inputs: a list, not an object"),
        ([step(), step(inputs={"cidrIpv4": "0.0.0.0/0"})], f"steps[1].urn: {URN} is also"),
    ):  # fmt: skip
        preview.write_text(json.dumps({"steps": steps}))
        assert main(["verify", "--preview", str(preview)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"preview.json: {said}" in err, err
        assert "Traceback" not in err


# --- values known only after `pulumi up` where an address should be (on the example's graph)


def unknowns(report: Report, rule: str) -> list[str]:
    return [f"{f.resource}: {f.message}" for f in report.unknowns() if f.rule == rule]


def subject(report: Report, name: str) -> Subject:
    [found] = [s for s in report.subjects if s.name == name]
    return found


def with_gateway(graph: Graph, type_: str, key: str) -> tuple[Graph, Resource]:
    graph = added(graph, type_, "gw", {"vpcId": "v"}, {"vpcId": [pool_vpc(graph)]})
    return graph, find(graph, type_, "gw")


@pytest.mark.parametrize(
    ("destination", "key", "type_", "kind"),
    [
        ("destinationCidrBlock", "gatewayId", IGW, "an internet gateway"),
        (
            "destinationIpv6CidrBlock",
            "egressOnlyGatewayId",
            EIGW,
            "an egress-only internet gateway",
        ),
    ],
)
def test_a_route_to_an_unknown_destination_is_unknown_not_a_pass(
    example: tuple[Graph, Plan, dict[str, Any]], destination: str, key: str, type_: str, kind: str
) -> None:
    """Review: a route in a technical pool's private table with an unknown destination and an
    internet gateway target passed (`strings(Unknown)` is no address); 0.0.0.0/0 failed. An
    unknown destination, IPv4 or IPv6, is every address: the way out it opens is UNKNOWN (the
    run fails under --fail-on-unknown), and a known way out beside it still fails."""
    graph, plan, _ = example
    graph, gateway = with_gateway(graph, type_, key)
    table = find(graph, ROUTE_TABLE, f"{POOL}-net-private")
    unknown = added(
        graph, ROUTE, "computed", {destination: UNKNOWN, key: "x-id"},
        {"routeTableId": [table], key: [gateway]},
    )  # fmt: skip
    report = check(unknown, plan)
    pool = subject(report, f"pool {POOL}")
    assert pool.failures == [] and pool.status is Status.UNKNOWN
    assert any(
        f.message.startswith(f"reaches {kind}: ")
        and "known only after `pulumi up`" in f.message
        and f.witness[-1].startswith(gateway.label)
        for f in pool.unknowns
    ), pool.unknowns
    assert report.status == "UNKNOWN" and report.failures() == []
    assert report.passes() and not report.passes(fail_on_unknown=True)
    # The same route to every address, known: a failure, as before.
    world = "0.0.0.0/0" if destination == "destinationCidrBlock" else "::/0"
    known = changed(unknown, find(unknown, ROUTE, "computed"), **{destination: world})
    assert any(
        f.message.startswith(f"reaches {kind}")
        for f in subject(check(known, plan), f"pool {POOL}").failures
    )
    # A known way out beside the unknown one: the pool fails.
    both = route_out(unknown, f"{POOL}-net-private", world, key, gateway)
    assert subject(check(both, plan), f"pool {POOL}").failures
    # An unknown destination is every address of its own family, as a /0 route: it hides no
    # known route of the other family (a known way out stays a failure).
    other = ("::/0", "egressOnlyGatewayId", EIGW, "an egress-only internet gateway")
    if destination == "destinationIpv6CidrBlock":
        other = ("0.0.0.0/0", "gatewayId", IGW, "an internet gateway")
    cidr, other_key, other_type, other_kind = other
    mixed = added(unknown, other_type, "known-gw", {"vpcId": "v"}, {"vpcId": [pool_vpc(unknown)]})
    mixed = route_out(
        mixed, f"{POOL}-net-private", cidr, other_key, find(mixed, other_type, "known-gw")
    )
    pool = subject(check(mixed, plan), f"pool {POOL}")
    assert any(f.message.startswith(f"reaches {other_kind}: ") for f in pool.failures)
    assert any(f.message.startswith(f"reaches {kind}: ") for f in pool.unknowns)


@pytest.mark.parametrize("form", [{"cidrIpv4": UNKNOWN}, {"cidrBlocks": [UNKNOWN]}])
def test_an_unknown_address_in_a_nodes_egress_rule_is_unknown_not_dropped(
    example: tuple[Graph, Plan, dict[str, Any]], form: dict[str, Any]
) -> None:
    """Review: `cidrIpv4: U` crashed open-egress (TypeError iterating an Unknown) and
    `cidrBlocks: [U]` passed, the network model dropping it. The rule is UNKNOWN; the network
    model reads it as every address, so a way out that only it opens is UNKNOWN."""
    graph, plan, _ = example
    rule = find(graph, SG_EGRESS, f"{POOL}-nodes-to-vpc")
    inputs = {k: v for k, v in rule.inputs.items() if k != "cidrIpv4"}
    graph = Graph(
        {**graph.resources, rule.urn: dataclasses.replace(rule, inputs={**inputs, **form})}
    )
    report = check(graph, plan)
    assert report.failures() == []
    assert unknowns(report, "open-egress") == [
        f"{rule.label}: lets GPU nodes of {POOL}-nodes out to an address known only after "
        "`pulumi up`: it may be 0.0.0.0/0"
    ]
    assert not report.passes(fail_on_unknown=True)
    # With a route out for every address: the nodes' way out rests on the unknown address
    # (UNKNOWN), the load balancer's, to the nodes' group anywhere, does not (FAIL).
    graph, gateway = with_gateway(graph, IGW, "gatewayId")
    graph = route_out(graph, f"{POOL}-net-private", "0.0.0.0/0", "gatewayId", gateway)
    pool = subject(check(graph, plan), f"pool {POOL}")
    assert not any(f.resource.startswith("nodes of") for f in pool.failures)
    assert any(f.resource.startswith("loadBalancer") for f in pool.failures)
    assert any(
        f.resource.startswith("nodes of") and "reaches an internet gateway" in f.message
        for f in pool.unknowns
    ), pool.unknowns


@pytest.mark.parametrize("form", [{"cidrIpv4": UNKNOWN}, {"cidrBlocks": [UNKNOWN]}])
@pytest.mark.parametrize("group", ["lb", "nodes", "net-endpoints"])
def test_an_unknown_address_in_an_ingress_rule_is_unknown(
    example: tuple[Graph, Plan, dict[str, Any]], form: dict[str, Any], group: str
) -> None:
    """An ingress rule whose address is known only after `pulumi up`: a model endpoint's (the
    load balancer's, the nodes') is not proven to admit only consumers, another group's not
    proven closed to 0.0.0.0/0: UNKNOWN, never a pass nor a crash."""
    graph, plan, _ = example
    name = (
        f"{POOL}-{group}-consumer-0" if group != "net-endpoints" else f"{POOL}-net-endpoints-https"
    )
    rule = find(graph, SG_INGRESS, name)
    inputs = {k: v for k, v in rule.inputs.items() if k != "cidrIpv4"}
    graph = Graph(
        {**graph.resources, rule.urn: dataclasses.replace(rule, inputs={**inputs, **form})}
    )
    report = check(graph, plan)
    assert [f for f in report.failures() if f.rule == "open-ingress"] == []
    [found] = unknowns(report, "open-ingress")
    assert found.startswith(f"{rule.label}: admits an address known only after `pulumi up` ")
    if group == "net-endpoints":
        assert found.endswith("it may be 0.0.0.0/0")
    else:
        assert (
            f"to the model endpoint of pool {POOL}: that it is one of its consumers is not proven"
            in found
        )
    assert report.rule_status("open-ingress") == "UNKNOWN"
    assert not report.passes(fail_on_unknown=True)


# --- a model endpoint admits only its consumers: whatever field says who


def consumer_rule(graph: Graph, group: str, **inputs: Any) -> tuple[Graph, Resource]:
    """The pool's first consumer rule on its load balancer or nodes, changed."""
    rule = find(graph, SG_INGRESS, f"{POOL}-{group}-consumer-0")
    kept = {k: v for k, v in rule.inputs.items() if k not in ("cidrIpv4", *inputs)}
    new = dataclasses.replace(
        rule, inputs={**kept, **{k: v for k, v in inputs.items() if v is not None}}
    )
    return Graph({**graph.resources, rule.urn: new}), new


@pytest.mark.parametrize("group", ["lb", "nodes"])
def test_a_model_endpoint_admits_no_prefix_list_or_foreign_group(
    example: tuple[Graph, Plan, dict[str, Any]], group: str
) -> None:
    """Review: open-ingress read only CIDR fields, so a consumer's range replaced by a prefix
    list or another security group, or widened to every protocol, passed. The network model
    reads a prefix list the graph does not define, and a group's members, as any address: so
    does the rule (FAIL), and UNKNOWN where the group is known only after `pulumi up`."""
    graph, plan, _ = example
    endpoint = f"to the model endpoint of pool {POOL}"

    def failures(g: Graph) -> list[str]:
        return rule_failures(check(g, plan), "open-ingress")

    listed, rule = consumer_rule(graph, group, prefixListId="pl-0123456789abcdef0")
    assert failures(listed) == [
        f"{rule.label}: admits prefix list pl-0123456789abcdef0 {endpoint}: a prefix list is not "
        "one of its consumers (it may hold any address)"
    ]
    stranger, rule = consumer_rule(graph, group, referencedSecurityGroupId="sg-0fffffffffffffff0")
    assert failures(stranger) == [
        f"{rule.label}: admits members of security group sg-0fffffffffffffff0, which the stack "
        f"does not make, {endpoint}: they may sit anywhere"
    ]
    # A group the stack makes that is not one of the pool's serving groups.
    other = find(graph, SG, f"{POOL}-net-endpoints")
    foreign, rule = consumer_rule(graph, group, referencedSecurityGroupId="x")
    deps = {**rule.deps, "referencedSecurityGroupId": (other.urn,)}
    foreign = Graph({**foreign.resources, rule.urn: dataclasses.replace(rule, deps=deps)})
    assert failures(foreign) == [
        f"{rule.label}: admits members of security group {other.name} {endpoint}: they may sit "
        "anywhere, not only among its consumers"
    ]
    computed, rule = consumer_rule(graph, group, referencedSecurityGroupId=UNKNOWN)
    report = check(computed, plan)
    assert [f for f in report.failures() if f.rule == "open-ingress"] == []
    assert unknowns(report, "open-ingress") == [
        f"{rule.label}: admits members of a security group known only after `pulumi up` "
        f"{endpoint}: that they are among its consumers is not proven"
    ]


@pytest.mark.parametrize(
    ("protocol", "said"),
    [
        ({"ipProtocol": "-1", "fromPort": None, "toPort": None}, "every protocol and port"),
        ({"ipProtocol": "tcp", "fromPort": 0, "toPort": 65535}, "tcp ports 0-65535"),
        ({"ipProtocol": "udp", "fromPort": 8000, "toPort": 8000}, "udp port 8000"),
    ],
)
def test_a_model_endpoint_admits_its_consumers_to_one_tcp_port(
    example: tuple[Graph, Plan, dict[str, Any]], protocol: dict[str, Any], said: str
) -> None:
    graph, plan, _ = example
    rule = find(graph, SG_INGRESS, f"{POOL}-nodes-consumer-0")
    cidr = rule.inputs["cidrIpv4"]
    wide, rule = consumer_rule(graph, "nodes", cidrIpv4=cidr, **protocol)
    assert rule_failures(check(wide, plan), "open-ingress") == [
        f"{rule.label}: admits {cidr} to the model endpoint of pool {POOL} on {said}: its "
        "consumers are admitted to one TCP port, the serving port"
    ]


@pytest.mark.parametrize("action", ["allow", "deny"])
def test_a_network_acl_rule_of_unknown_address_is_unknown_either_way(
    example: tuple[Graph, Plan, dict[str, Any]], action: str
) -> None:
    """A network ACL on the pool's subnets with a rule whose address is known only after
    `pulumi up`, beside a route to an internet gateway: an allowing rule may let every address
    out, a denying one may stop none (the rest allowed), so the way out is UNKNOWN, not shut
    (an allowing rule's unknown address was dropped, and the pool passed) nor a failure."""
    graph, plan, _ = example
    graph, gateway = with_gateway(graph, IGW, "gatewayId")
    graph = route_out(graph, f"{POOL}-net-private", "0.0.0.0/0", "gatewayId", gateway)
    entry = {"protocol": "-1", "fromPort": 0, "toPort": 0}
    rules = [{**entry, "ruleNo": 100, "action": action, "cidrBlock": UNKNOWN}]
    if action == "deny":
        rules.append({**entry, "ruleNo": 200, "action": "allow", "cidrBlock": "0.0.0.0/0"})
    subnets = [s for s in graph.of_type(SUBNET) if s.name.startswith(f"{POOL}-net-private")]
    graph = added(
        graph, NACL, "computed", {"vpcId": "v", "subnetIds": ["a", "b"], "egress": rules},
        {"vpcId": [pool_vpc(graph)], "subnetIds": subnets},
    )  # fmt: skip
    pool = subject(check(graph, plan), f"pool {POOL}")
    assert pool.failures == [] and pool.status is Status.UNKNOWN
    assert any(f.message.startswith("reaches an internet gateway: ") for f in pool.unknowns)
    # Known, the same rules decide: every address allowed fails, denied passes.
    known = "0.0.0.0/0"
    acl = find(graph, NACL, "computed")
    decided = changed(graph, acl, egress=[{**r, "cidrBlock": known} for r in rules])
    pool = subject(check(decided, plan), f"pool {POOL}")
    assert bool(pool.failures) == (action == "allow") and pool.unknowns == []
