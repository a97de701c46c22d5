"""Where the nodes go (zones that offer the instance type, a capacity reservation's zone), the
instance types a workloads file allows, the budget's cost allocation tag, and what each
workload's callers are told in the stack outputs: the real program under Pulumi's mocks."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi import RunError

from planner.catalog import default_catalog
from planner.cli import main
from planner.graph import offline
from planner.graph.offline import OfflineRun, Registered, run_program, standard_invokes
from planner.graph.resources import graph_from_offline
from planner.inputs.loader import load_workloads
from planner.planfile import read_plan
from planner.planning.build import build_plan
from planner.render.verify_report import render_text
from planner.verification.expectations import Expectations
from planner.verification.run import verify
from stacks.addressing import service_dns_name
from tests.conftest import REPO, workload_yaml
from tests.test_stacks import CANARY, component, of_type, plain, plan_project

# The deploy-time constraints these tests hold the stacks to, with their sources:
# - DescribeInstanceTypeOfferings (Amazon EC2 API Reference,
#   docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypeOfferings.html): "Lists
#   the instance types that are offered for the specified location"; LocationType
#   availability-zone, filter instance-type. Not every zone offers every GPU type, and an
#   auto-scaling group with a subnet in a zone that does not offer its type fails to launch there.
# - "You can only launch an instance into a Capacity Reservation that: Has matching attributes
#   (instance type, platform, Availability Zone, and tenancy)" (Amazon EC2 User Guide,
#   docs.aws.amazon.com/AWSEC2/latest/UserGuide/capacity-reservations-launch.html). pulumi-aws
#   7.51 has no data source for an On-Demand Capacity Reservation (only
#   ec2.get_capacity_block_reservation, for Capacity Blocks alone), so the file names the zone.
# - "After the user-defined tags are created and applied to resources, it can take up to 24 hours
#   for the tag keys to appear on Cost Allocation tag page for activation" (pulumi-aws
#   costexplorer.CostAllocationTag; AWS Billing User Guide,
#   docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/activating-tags.html); activating a key
#   AWS has not seen yet fails the deploy (hashicorp/terraform-provider-aws issue 29068), and only
#   the management account may activate tags ("Linked account doesn't have access to cost
#   allocation tags", 2i2c-org/infrastructure pull request 4932).
POOL = "ai-infra-planner:index:InferencePool"
SUBNET = "aws:ec2/subnet:Subnet"
GROUP = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
COST_TAG = "aws:costexplorer/costAllocationTag:CostAllocationTag"
OFFERINGS = "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings"


def children(run: OfflineRun, name: str) -> list[Registered]:
    """Everything registered under one component, at any depth."""
    parents = {component(run, POOL, name).urn}
    found = []
    for resource in run.resources:  # registration order: a parent comes before its children
        if resource.parent in parents:
            parents.add(resource.urn)
            found.append(resource)
    return found


def zones_of(run: OfflineRun, pool: str) -> list[str]:
    return sorted(r.inputs["availabilityZone"] for r in children(run, pool) if r.type == SUBNET)


def subnets_zones(run: OfflineRun, subnet_ids: list[str]) -> list[str]:
    """The zones of the stack's subnets with these ids (the mocks' ids are `<name>-id`)."""
    subnets = {f"{r.name}-id": r.inputs["availabilityZone"] for r in of_type(run, SUBNET)}
    return sorted(subnets[subnet] for subnet in subnet_ids)


def group_zones(run: OfflineRun, group: Registered) -> list[str]:
    """The zones of an auto-scaling group's subnets."""
    return subnets_zones(run, group.inputs["vpcZoneIdentifiers"])


def balancer_of(run: OfflineRun, pool: str) -> Registered:
    [balancer] = [
        r for r in of_type(run, "aws:lb/loadBalancer:LoadBalancer") if r.name.startswith(pool)
    ]
    return balancer


def offered(
    only: dict[str, list[str]], subnets: dict[str, str] | None = None
) -> offline.InvokeAnswer:
    """The standard answers, with these instance types offered only in these zones (every
    other type of the catalog in every zone), and these consumer subnets in these zones (by
    suffix; the others in a or b)."""
    every = ["us-east-1a", "us-east-1b", "us-east-1c"]  # the offline region's zones
    types = default_catalog().instances
    return standard_invokes(
        "us-east-1", {kind: only.get(kind, every) for kind in types}, subnets or {}
    )


# The example's contract-review consumers' subnets (examples/workloads.yaml).
CONTRACT_SUBNETS = ("subnet-0c3d4e5f6a7b80912", "subnet-0d4e5f6a7b8c90a13")


# ------------------------------------------------------------------ 1. zones offering the type
def test_pool_subnets_are_only_in_zones_offering_its_instance_type(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """us-east-1a does not offer the contract-review pool's instance type here: its network and
    nodes go to b and c, where name order alone would pick a and b. The consumer side (the
    egress network) still takes the region's first two zones."""
    config = plan_project(project, None)
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    [pool] = [p for p in plan.pools if p.name == "contract-review-pool"]
    run = run_program(
        project,
        "dev",
        config,
        answer_invoke=offered(
            {pool.instance_type: ["us-east-1b", "us-east-1c"]},
            dict(zip(CONTRACT_SUBNETS, "bc", strict=True)),  # the consumers: b and c too
        ),
    )
    assert OFFERINGS in run.invokes
    assert zones_of(run, "contract-review-pool") == ["us-east-1b", "us-east-1c"]
    [group] = [g for g in of_type(run, GROUP) if g.name.startswith("contract-review-pool")]
    assert group_zones(run, group) == ["us-east-1b", "us-east-1c"]
    balancer = balancer_of(run, "contract-review-pool")
    assert subnets_zones(run, balancer.inputs["subnets"]) == ["us-east-1b", "us-east-1c"]
    # The other pool's type is offered everywhere: the first two zones by name.
    assert zones_of(run, "patient-notes-pool") == ["us-east-1a", "us-east-1b"]
    egress = sorted(
        r.inputs["availabilityZone"] for r in of_type(run, SUBNET)
        if r.name.startswith("api-egress-private-")
    )  # fmt: skip
    assert egress == ["us-east-1a", "us-east-1b"]
    assert run.outputs["pools"]["contract-review-pool"]["node_zones"] == [
        "us-east-1b", "us-east-1c",
    ]  # fmt: skip
    # By name and AZ ID (getAvailabilityZones' zoneIds): a consumer's endpoint subnets must be
    # in these zones, and another account knows them by AZ ID only.
    assert run.outputs["pools"]["contract-review-pool"]["zones"] == {
        "us-east-1b": "use1-az2", "us-east-1c": "use1-az4",
    }  # fmt: skip


def test_the_load_balancer_is_in_every_zone_of_its_consumers_endpoints(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A consumer subnet in us-east-1a, which does not offer the pool's type: the load balancer
    gets a subnet there too (PrivateLink serves a consumer subnet only in a zone the load
    balancer is in, stacks/aws/lookups.py subnet_zones), forwarding across zones to the nodes in b
    and c; nodes and the pool's interface endpoints stay where the plan priced them."""
    config = plan_project(project, None)
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    [pool] = [p for p in plan.pools if p.name == "contract-review-pool"]
    run = run_program(
        project,
        "dev",
        config,
        answer_invoke=offered(
            {pool.instance_type: ["us-east-1b", "us-east-1c"]},
            dict(zip(CONTRACT_SUBNETS, "ab", strict=True)),
        ),
    )
    assert "aws:ec2/getSubnet:getSubnet" in run.invokes
    assert zones_of(run, "contract-review-pool") == ["us-east-1a", "us-east-1b", "us-east-1c"]
    balancer = balancer_of(run, "contract-review-pool")
    assert subnets_zones(run, balancer.inputs["subnets"]) == [
        "us-east-1a", "us-east-1b", "us-east-1c",
    ]  # fmt: skip
    assert balancer.inputs["enableCrossZoneLoadBalancing"] is True
    [group] = [g for g in of_type(run, GROUP) if g.name.startswith("contract-review-pool")]
    assert group_zones(run, group) == ["us-east-1b", "us-east-1c"]
    endpoints = [
        r for r in children(run, "contract-review-pool")
        if r.type == "aws:ec2/vpcEndpoint:VpcEndpoint"
        and r.inputs["vpcEndpointType"] == "Interface"
        and r.name.startswith("contract-review-pool-net-")  # the pool's own, not the consumers'
    ]  # fmt: skip
    assert endpoints and all(
        subnets_zones(run, e.inputs["subnetIds"]) == ["us-east-1b", "us-east-1c"] for e in endpoints
    )
    # The extra subnet is on the private route table (no way out), and the stack verifies.
    assert run.outputs["pools"]["contract-review-pool"]["zones"] == {
        "us-east-1a": "use1-az1", "us-east-1b": "use1-az2", "us-east-1c": "use1-az4",
    }  # fmt: skip
    graph = graph_from_offline(run)
    report = verify(graph, Expectations.of(plan, default_catalog()))
    assert report.passed, render_text(report)


def test_every_pool_balances_across_zones(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A multi-node replica or a capacity reservation puts every node in one zone, and the load
    balancer is in two or more: without cross-zone load balancing (off by default on a Network
    Load Balancer) the other zone's consumers would reach no node."""
    config = plan_project(project, None)
    capsys.readouterr()
    run = run_program(project, "dev", config)
    balancers = of_type(run, "aws:lb/loadBalancer:LoadBalancer")
    assert balancers and all(b.inputs["enableCrossZoneLoadBalancing"] is True for b in balancers)


@pytest.mark.parametrize("zones", [[], ["us-east-1c"]])
def test_fewer_offering_zones_than_a_pool_needs_is_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str], zones: list[str]
) -> None:
    config = plan_project(project, None)
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    [pool] = [p for p in plan.pools if p.name == "patient-notes-pool"]
    with pytest.raises(RunError) as raised:
        run_program(project, "dev", config, answer_invoke=offered({pool.instance_type: zones}))
    message = str(raised.value)
    assert message.startswith("pool patient-notes-pool: its network needs 2 availability zones")
    assert pool.instance_type in message
    where = f"({', '.join(zones)})" if zones else "no zone"
    assert where in message
    assert "assumptions.instance_types" in message


# ------------------------------------------------------------------ 5. a capacity reservation
RESERVED = workload_yaml(
    name="claims-notes",
    task="summarization",
    data="regulated",
    model="llama-4-scout",
    monthly_tokens="{input: 2B, output: 400M}",
    consumers=(
        "[{cidr: 10.60.0.0/16, vpc: vpc-0a1b2c3d4e5f60718, "
        "subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]}]"
    ),
    capacity_reservation_id="cr-0123456789abcdef0",
    capacity_reservation_zone="us-east-1c",
)


def test_a_capacity_reservation_puts_every_node_in_its_zone(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reservation is in us-east-1c: name order would never pick it (a, b). The pool's
    network spans the reservation's zone and one more offering zone, the nodes only the
    reservation's, and the launch template targets the reservation."""
    config = plan_project(project, RESERVED)
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    [pool] = plan.pools
    assert (pool.capacity_reservation_id, pool.capacity_reservation_zone) == (
        "cr-0123456789abcdef0", "us-east-1c",
    )  # fmt: skip
    # The consumers' subnets in a and c: the load balancer needs no other zone.
    consumer_zones = {"subnet-0a1b2c3d4e5f60718": "a", "subnet-0b1c2d3e4f5a60719": "c"}
    run = run_program(
        project, "dev", config, answer_invoke=standard_invokes("us-east-1", None, consumer_zones)
    )
    assert zones_of(run, "claims-notes-pool") == ["us-east-1a", "us-east-1c"]
    groups = [g for g in of_type(run, GROUP) if g.name.startswith("claims-notes-pool")]
    assert groups and sum(g.inputs["desiredCapacity"] for g in groups) == pool.nodes
    assert all(group_zones(run, g) == ["us-east-1c"] for g in groups)
    [template] = of_type(run, TEMPLATE)
    target = template.inputs["capacityReservationSpecification"]["capacityReservationTarget"]
    assert target == {"capacityReservationId": "cr-0123456789abcdef0"}
    assert all(g.inputs["launchTemplate"]["id"] == f"{template.name}-id" for g in groups)
    # Nothing buys capacity, and the stack verifies.
    assert not [r for r in run.resources if "capacity" in r.type.lower()]
    assert run.outputs["pools"]["claims-notes-pool"]["node_zones"] == ["us-east-1c"]
    assert main(["verify"]) == 0, capsys.readouterr().out


# The example's consumer VPCs, each given two subnets of one zone: a pool's endpoint
# (contract-review), Bedrock's PrivateLink endpoint (support-faq and ticket-triage) and the
# egress transit gateway's attachment (code-review). AWS takes one subnet per zone for each
# (stacks/aws/lookups.py one_subnet_per_zone).
ONE_ZONE = [
    (
        {"subnet-0c3d4e5f6a7b80912": "b", "subnet-0d4e5f6a7b8c90a13": "b"},
        "workload contract-review: the consumers' VPC vpc-0c3d4e5f6a7b80912 is given subnets "
        "subnet-0c3d4e5f6a7b80912 and subnet-0d4e5f6a7b8c90a13, both in us-east-1b, but an "
        "interface endpoint takes one subnet per availability zone: name one subnet per zone "
        "for vpc-0c3d4e5f6a7b80912 (consumers[].subnets in the workloads file) and plan again",
    ),
    (
        {"subnet-0a1b2c3d4e5f60718": "a", "subnet-0b1c2d3e4f5a60719": "a"},
        "workloads support-faq, ticket-triage: the consumers' VPC vpc-0a1b2c3d4e5f60718 is given "
        "subnets subnet-0a1b2c3d4e5f60718 and subnet-0b1c2d3e4f5a60719, both in us-east-1a, but "
        "an interface endpoint takes one subnet per availability zone",
    ),
    (
        {"subnet-0e5f6a7b8c9d0a1b2": "b", "subnet-0f6a7b8c9d0e1b2c3": "b"},
        "workload code-review: the consumers' VPC vpc-0e5f6a7b8c9d0a1b2 is given subnets "
        "subnet-0e5f6a7b8c9d0a1b2 and subnet-0f6a7b8c9d0e1b2c3, both in us-east-1b, but a "
        "transit gateway attachment takes one subnet per availability zone",
    ),
]


@pytest.mark.parametrize(("zones", "message"), ONE_ZONE)
def test_two_consumer_subnets_in_one_zone_are_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str], zones: dict[str, str], message: str
) -> None:
    """AWS refuses two subnets of one zone for an interface endpoint and a transit gateway
    attachment only during `pulumi up`: the program stops first, naming the workloads, the
    VPC, the two subnets and their zone. With the subnets in two zones the same plan runs."""
    config = plan_project(project, None)
    capsys.readouterr()
    kinds = {p.placement for p in read_plan(project / "plans/dev/plan.json").workloads}
    assert len(kinds) > 1  # the example has pools, a PrivateLink provider and an egress one
    with pytest.raises(RunError) as raised:
        run_program(
            project, "dev", config, answer_invoke=standard_invokes("us-east-1", None, zones)
        )
    assert str(raised.value).startswith(message), str(raised.value)
    apart = dict(zip(zones, "ab", strict=True))
    run = run_program(
        project, "dev", config, answer_invoke=standard_invokes("us-east-1", None, apart)
    )
    assert run.resources


def test_offline_commands_put_a_vpcs_subnets_in_zones_of_their_own(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`planner preview`, `verify` and `diff` run the program on made-up zones: they give a
    VPC's subnets zones of their own (offline.plan_subnet_zones), so the stack's one-subnet-
    per-zone check never refuses a file for a zone it invented. The bare mocks put these two
    subnets (last digits a and c) in one zone: the check itself still stops that run."""
    text = workload_yaml(
        name="notes",
        consumers=(
            "[{cidr: 10.60.0.0/16, vpc: vpc-0a1b2c3d, subnets: [subnet-0000000a, subnet-0000000c]}]"
        ),
    )
    config = plan_project(project, text)
    plan = read_plan(project / "plans/dev/plan.json")
    assert offline.plan_subnet_zones(plan) == {"subnet-0000000a": "a", "subnet-0000000c": "b"}
    capsys.readouterr()
    assert main(["preview", "--stack", "dev"]) == 0, capsys.readouterr().err
    assert main(["verify", "--stack", "dev"]) == 0, capsys.readouterr().out
    with pytest.raises(RunError, match="both in us-east-1a"):
        run_program(project, "dev", config)


def test_a_reservation_in_a_zone_without_its_type_is_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = plan_project(project, RESERVED)
    capsys.readouterr()
    [pool] = read_plan(project / "plans/dev/plan.json").pools
    answer = offered({pool.instance_type: ["us-east-1a", "us-east-1b"]})
    with pytest.raises(RunError) as raised:
        run_program(project, "dev", config, answer_invoke=answer)
    assert str(raised.value) == (
        "pool claims-notes-pool: its capacity reservation is in us-east-1c, but us-east-1 "
        f"offers {pool.instance_type} in 2 available zone(s) (us-east-1a, us-east-1b): check "
        "capacity_reservation_zone in the workloads file and plan again"
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"capacity_reservation_id": "cr-0123456789abcdef0"},
            "workloads[0].capacity_reservation_id (line 9)",
            "cr-0123456789abcdef0 needs capacity_reservation_zone: the availability zone it is in",
        ),
        (
            {"capacity_reservation_zone": "us-east-1a"},
            "workloads[0].capacity_reservation_zone (line 9)",
            "a zone without capacity_reservation_id",
        ),
        (
            {
                "capacity_reservation_id": "cr-0123456789abcdef0",
                "capacity_reservation_zone": "eu-west-1a",
            },
            "workloads[0].capacity_reservation_zone (line 10)",
            "eu-west-1a is not an availability zone of us-east-1 (the file's region)",
        ),
        (
            {
                "capacity_reservation_id": "cr-0123456789abcdef0",
                "capacity_reservation_zone": "east",
            },
            "workloads[0].capacity_reservation_zone (line 10)",
            "'east' is not an availability zone name such as us-east-1a",
        ),
    ],
)
def test_a_reservation_needs_its_zone(
    write_workloads: Any,
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    path = write_workloads(workload_yaml(**fields))
    assert main(["plan", str(path), "--stack", "dev"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}: {message}" in err, err
    assert "Traceback" not in err
    assert not (path.parent / "plans").exists()
    assert not (path.parent / "Pulumi.dev.yaml").exists()


# Three small regulated workloads that one DeepSeek pool serves best (tests/test_optimum_default
# THREE_REGULATED), each with the reservation fields given.
def _three(*reservations: str) -> str:
    tasks = [("faq", "faq"), ("notes", "summarization"), ("legal", "legal_analysis")]
    lines = ["organization: acme", "region: us-east-1", "workloads:"]
    for number, ((name, task), reserved) in enumerate(zip(tasks, reservations, strict=True)):
        lines.append(
            f"  - {{name: {name}, task: {task}, data: regulated, "
            f"monthly_tokens: {{input: 10M, output: 1M}}, "
            f'consumers: [{{cidr: 10.{number + 1}.0.0/16, account: "111122223333"}}]'
            + (f", {reserved}" if reserved else "")
            + "}"
        )
    return "\n".join(lines) + "\n"


CR_A = "capacity_reservation_id: cr-0aaaaaaaaaaaaaaaa, capacity_reservation_zone: us-east-1a"
CR_B = "capacity_reservation_id: cr-0bbbbbbbbbbbbbbbb, capacity_reservation_zone: us-east-1b"


@pytest.mark.parametrize(
    ("reservations", "together"),
    [
        # No reservation: one shared pool (the optimum).
        (("", "", ""), [{"faq", "notes", "legal"}]),
        # One reservation named by two: they share a pool launching into it; the third is kept
        # out of it (its nodes would launch into a reservation sized for the others).
        ((CR_A, CR_A, ""), [{"faq", "notes"}, {"legal"}]),
        # Two reservations: never one pool (a launch template targets one reservation).
        ((CR_A, CR_B, ""), [{"faq"}, {"notes"}, {"legal"}]),
    ],
)
def test_a_shared_pool_holds_one_capacity_reservation(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    reservations: tuple[str, ...],
    together: list[set[str]],
) -> None:
    (project / "w.yaml").write_text(_three(*reservations))
    assert main(["plan", "w.yaml", "--no-stack-config"]) == 0
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    text = (project / "plans/dev/plan.md").read_text()
    named = {
        w: line.split("capacity_reservation_id: ")[1].split(",")[0]
        for w, line in zip(["faq", "notes", "legal"], reservations, strict=True)
        if line
    }
    assert sorted(sorted(p.workloads) for p in plan.pools) == sorted(map(sorted, together))
    for pool in plan.pools:
        # Every member names the pool's reservation, or none does: never a mix, never two.
        assert {named.get(w) for w in pool.workloads} == {pool.capacity_reservation_id}
        if pool.capacity_reservation_id:
            assert pool.name.endswith(f"-{pool.capacity_reservation_id}")
            zone = "us-east-1a" if "aaaa" in pool.capacity_reservation_id else "us-east-1b"
            assert pool.capacity_reservation_zone == zone
            # plan.md says where the nodes go and what the reservation must hold.
            assert (
                f"Pool {pool.name} launches its nodes into capacity reservation "
                f"{pool.capacity_reservation_id} in {zone}, which "
            ) in text
            assert f"must be for {pool.instance_type} and hold its {pool.nodes} node" in text
        else:
            assert pool.capacity_reservation_zone is None


def test_one_reservation_in_two_zones_is_an_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_zone = CR_A.replace("us-east-1a", "us-east-1b")
    (project / "w.yaml").write_text(_three(CR_A, "", other_zone))
    assert main(["plan", "w.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: w.yaml: workloads[2].capacity_reservation_zone (line 6): us-east-1b, but "
        "workloads[0] (faq) puts cr-0aaaaaaaaaaaaaaaa in us-east-1a: a capacity reservation "
        "is in one zone"
    ]
    assert not (project / "plans").exists() and not (project / "Pulumi.dev.yaml").exists()


# ---------------------------------------------------------- 4. the instance types a file allows
DEEP = """\
organization: acme
region: us-east-1
assumptions:
  instance_types: [p5.48xlarge]
workloads:
  - name: deep-notes
    task: chat
    data: regulated
    model: deepseek-v3.2
    monthly_tokens: {input: 3B, output: 600M}
    availability: high
    consumers:
      - cidr: 10.60.0.0/16
        vpc: vpc-0a1b2c3d4e5f60718
        subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]
"""


def test_instance_types_restrict_the_candidates(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Left free, DeepSeek V3.2 goes to one p5en.48xlarge a replica (H200); restricted to
    p5.48xlarge it needs two nodes a replica, and only that type is priced."""
    free = DEEP.replace("assumptions:\n  instance_types: [p5.48xlarge]\n", "")
    plan_project(project, free)
    [pool] = read_plan(project / "plans/dev/plan.json").pools
    assert pool.instance_type != "p5.48xlarge"
    plan_project(project, DEEP)
    capsys.readouterr()
    data = json.loads((project / "plans/dev/plan.json").read_text())
    assert data["assumptions"]["instance_types"] == "p5.48xlarge"
    [workload] = data["workloads"]
    economics = workload["answers"]["volume_economics"]
    hosted = [o["id"] for o in economics["options"] if o["id"].startswith("self_hosted/")]
    assert hosted == ["self_hosted/deepseek-v3.2/p5.48xlarge"]
    assert all(
        o["id"].split("/")[2] == "p5.48xlarge"
        for o in economics["alternatives"]
        if o["id"].startswith("self_hosted/")
    )


def test_a_multi_node_pool_of_two_replicas_builds(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DeepSeek V3.2 on p5.48xlarge: two nodes a replica (pipeline parallel 2), two replicas for
    availability: high, four nodes; each replica is a group of its own in one zone."""
    config = plan_project(project, DEEP)
    capsys.readouterr()
    [pool] = read_plan(project / "plans/dev/plan.json").pools
    assert (pool.instance_type, pool.nodes, pool.pipeline_parallel) == ("p5.48xlarge", 4, 2)
    assert pool.tensor_parallel * pool.pipeline_parallel == 16
    run = run_program(project, "dev", config)
    [template] = of_type(run, TEMPLATE)
    assert template.inputs["instanceType"] == "p5.48xlarge"
    groups = sorted(of_type(run, GROUP), key=lambda g: g.name)
    assert [g.name for g in groups] == ["deep-notes-pool-replica-0", "deep-notes-pool-replica-1"]
    assert [g.inputs["desiredCapacity"] for g in groups] == [2, 2]
    assert all(g.inputs["minSize"] == g.inputs["maxSize"] == 2 for g in groups)
    assert all(len(group_zones(run, g)) == 1 for g in groups)
    assert run.outputs["workloads"]["deep-notes"]["model"] == "deepseek-v3.2"
    assert main(["verify"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize(
    ("types", "line", "message"),
    [
        (
            "[p5.48xl]",
            4,
            "unknown instance type 'p5.48xl'; the catalog has: ",
        ),
        ("[]", 4, "must have at least 1 item(s)"),
    ],
)
def test_an_unknown_instance_type_names_file_field_and_line(
    write_workloads: Any,
    capsys: pytest.CaptureFixture[str],
    types: str,
    line: int,
    message: str,
) -> None:
    text = workload_yaml().replace(
        "region: us-east-1\n", f"region: us-east-1\nassumptions:\n  instance_types: {types}\n"
    )
    path = write_workloads(text)
    assert main(["plan", str(path), "--stack", "dev"]) == 2
    err = capsys.readouterr().err
    field = "assumptions.instance_types[0]" if types != "[]" else "assumptions.instance_types"
    assert f"{path}: {field} (line {line}): {message}" in err, err
    if types == "[p5.48xl]":
        assert "did you mean 'p5.48xlarge'?" in err
    assert not (path.parent / "plans").exists()


def test_the_schema_file_lists_instance_types() -> None:
    schema = json.loads((REPO / "schema/workloads.schema.json").read_text())
    definitions = schema["$defs"]
    assert "instance_types" in definitions["Assumptions"]["properties"]
    assert "capacity_reservation_zone" in definitions["Workload"]["properties"]


# ------------------------------------------------------------------ 2. the budget's cost tag
def test_the_budgets_tag_is_activated_as_a_cost_allocation_tag(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = plan_project(project, None)
    config["ai-infra-planner:activate_cost_tag"] = "true"
    capsys.readouterr()
    run = run_program(project, "dev", config)
    [tag] = of_type(run, COST_TAG)
    assert tag.inputs == {"tagKey": "ai-infra-planner:stack", "status": "Active"}
    # Shared by every stack of the account: destroying one leaves it active.
    assert tag.retain_on_delete
    # The tag activated is the one the budget counts by.
    [budget] = of_type(run, "aws:budgets/budget:Budget")
    [values] = [f["values"] for f in budget.inputs["costFilters"] if f["name"] == "TagKeyValue"]
    assert values == [f"user:{tag.inputs['tagKey']}$dev"]
    assert not [line for line in run.logs if "cost allocation tag" in line]


def test_without_the_setting_the_stack_says_how_to_activate_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """AWS activates a tag key only once it has seen it on usage (up to 24 hours after the first
    `pulumi up`): activating it on the first `up` would fail it."""
    config = plan_project(project, None)
    capsys.readouterr()
    run = run_program(project, "dev", config)
    assert not of_type(run, COST_TAG)
    [warning] = [line for line in run.logs if "cost allocation tag" in line]
    assert "pulumi config set activate_cost_tag true" in warning
    assert "24 hours" in warning
    assert "TagKey=ai-infra-planner:stack,Status=Active" in warning
    readme = (REPO / "README.md").read_text()
    assert "activate_cost_tag" in readme and "24 hours" in readme


# ------------------------------------------------------------- 3. what each workload's callers get
@pytest.fixture
def secret_run(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> OfflineRun:
    """The example, with the provider's key a canary and each pool's generated key a known
    value (the mocks otherwise leave it unknown), to look for both everywhere."""
    computed = offline.computed_outputs

    def with_keys(token: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
        state = computed(token, name, inputs, region)
        if token == "random:index/randomPassword:RandomPassword":
            state["result"] = f"{POOL_KEY}-{name}"
        return state

    monkeypatch.setattr(offline, "computed_outputs", with_keys)
    config = plan_project(project, None)
    config["ai-infra-planner:openai_api_key"] = CANARY
    capsys.readouterr()
    return run_program(project, "dev", config, secret_keys=["ai-infra-planner:openai_api_key"])


POOL_KEY = "pool-key-canary-3c9d"


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")
    else:
        yield path, value


def policy_of(run: OfflineRun, arn: str) -> dict[str, Any]:
    [policy] = [
        p for p in of_type(run, "aws:iam/policy:Policy") if arn.endswith(f":{p.name}")
    ]  # fmt: skip
    document: dict[str, Any] = json.loads(policy.inputs["policy"])
    return document


def test_every_workload_tells_its_callers_what_to_call(
    secret_run: OfflineRun, project: Path
) -> None:
    plan = read_plan(project / "plans/dev/plan.json")
    callers = secret_run.outputs["workloads"]
    assert sorted(callers) == sorted(w.name for w in plan.workloads)
    providers = {p.provider: p for p in plan.providers}
    for workload in plan.workloads:
        given = callers[workload.name]
        assert all(value not in (None, "", [], {}) for _, value in walk(given)), given
        document = policy_of(secret_run, given["policy_arn"])
        if workload.pool is not None:
            pool = next(p for p in plan.pools if p.name == workload.pool)
            assert given["kind"] == "pool"
            dns = service_dns_name(pool.name, "dev")
            assert given["dns_name"] == dns
            assert given["endpoint"] == f"https://{dns}:8000/v1"
            assert given["endpoint_service_name"] == (
                f"com.amazonaws.vpce.us-east-1.vpce-svc-{pool.name}-service"
            )
            assert given["model"] == pool.model
            assert given["api_key_secret_arn"].endswith(f":{pool.name}-api-key")
            # The policy reads that key and decrypts it through Secrets Manager: nothing else.
            read, decrypt = document["Statement"]
            assert read["Resource"] == given["api_key_secret_arn"]
            assert decrypt["Resource"] == f"arn:aws:kms:us-east-1:123456789012:{pool.name}-key"
            assert decrypt["Condition"] == {
                "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
            }
            continue
        access = providers[str(workload.provider)]
        if access.secret_config_key is None:
            assert given["kind"] == "bedrock"
            # Claude Haiku 5.5 is served only through inference profiles: call the global one.
            assert given["model_id"] == "global.anthropic.claude-haiku-5-5"
            assert given["endpoint_dns_name"] == "bedrock-runtime.us-east-1.amazonaws.com"
            [invoke] = document["Statement"]
            assert any(given["model_id"] in arn for arn in invoke["Resource"])
        else:
            assert given["kind"] == "api"
            assert given["hosts"] == access.hosts == ["api.openai.com"]
            assert given["api_key_secret_arn"].endswith(":openai-access-api-key")
            assert document["Statement"][0]["Resource"] == given["api_key_secret_arn"]
    kinds = sorted(callers[w]["kind"] for w in callers)
    assert kinds == ["api", "bedrock", "bedrock", "pool", "pool"]


def test_the_outputs_name_the_image_repository_and_the_weights(secret_run: OfflineRun) -> None:
    """README: push the image to each pool's ECR repository and upload the weights to
    s3://<weights bucket>/weights/<model repository>/; "the stack outputs name both"."""
    pool = secret_run.outputs["pools"]["contract-review-pool"]
    assert pool["repository_url"] == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/contract-review-pool-serving"
    )
    assert pool["weights_uri"] == (
        "s3://contract-review-pool-weights/weights/deepseek-ai/DeepSeek-V3.2/"
    )
    assert pool["access_policy_arns"] == {
        "contract-review": secret_run.outputs["workloads"]["contract-review"]["policy_arn"]
    }


def test_no_output_holds_a_secret_value(secret_run: OfflineRun) -> None:
    # The keys are there to be found: each in its secret's version, as a secret.
    versions = {
        r.name: plain(r.inputs["secretString"])
        for r in of_type(secret_run, "aws:secretsmanager/secretVersion:SecretVersion")
    }
    assert versions["openai-access-api-key"] == CANARY
    assert versions["contract-review-pool-api-key"] == f"{POOL_KEY}-contract-review-pool-api-key"
    leaked = [
        path
        for path, value in walk(secret_run.outputs)
        if CANARY in str(value) or POOL_KEY in str(value)
    ]
    assert not leaked
    # Where a secret is named, it is by its ARN.
    named = [(p, v) for p, v in walk(secret_run.outputs["workloads"]) if "secret" in p]
    assert len(named) == 3  # two pool workloads and the OpenAI one
    assert all(str(v).startswith("arn:aws:secretsmanager:") for _, v in named)


def test_every_output_the_readme_names_exists(secret_run: OfflineRun) -> None:
    """The README tells callers to run `pulumi stack output NAME`: each NAME is an output."""
    readme = (REPO / "README.md").read_text()
    named = set(re.findall(r"pulumi\s+stack\s+output\s+([a-z_]+)", readme))
    assert {"pools", "workloads", "pool_ca_certificates", "network_access_scopes"} <= named
    assert named <= set(secret_run.outputs), named - set(secret_run.outputs)


ZONES = [f"us-east-1{suffix}" for suffix in "abcdef"]


@settings(max_examples=200, deadline=None)
@given(
    offered_zones=st.sets(st.sampled_from(ZONES)),
    reservation=st.none() | st.sampled_from(ZONES),
)
def test_pool_zones_offer_the_type_and_hold_the_reservation(
    offered_zones: set[str], reservation: str | None
) -> None:
    """For any offering and reservation: two zones, all offering the type, the reservation's
    among them; or an error saying why, never a crash or a zone that does not offer it."""
    from stacks.aws.lookups import Lookups, pool_zones  # here: main's has no pool_zones

    lookups = Lookups(
        region="us-east-1",
        account_id="123456789012",
        partition="aws",
        dns_suffix="amazonaws.com",
        availability_zones=ZONES[:2],
        ami_id="ami-0123456789abcdef0",
        zone_names=tuple(ZONES),
        offerings={"p5.48xlarge": sorted(offered_zones)},  # as looked up already
    )
    possible = len(offered_zones) >= 2 and (reservation is None or reservation in offered_zones)
    if not possible:
        with pytest.raises(RunError, match=r"^pool p: "):
            pool_zones(lookups, "p", "p5.48xlarge", reservation)
        return
    zones = pool_zones(lookups, "p", "p5.48xlarge", reservation)
    assert len(zones) == 2 and zones == sorted(set(zones))
    assert set(zones) <= offered_zones
    assert reservation is None or reservation in zones
    if reservation is None:
        assert zones == sorted(offered_zones)[:2]


@settings(max_examples=15, deadline=None)
@given(allowed=st.sets(st.sampled_from(sorted(default_catalog().instances)), min_size=1))
def test_plans_price_only_the_allowed_instance_types(
    tmp_path_factory: pytest.TempPathFactory, allowed: set[str]
) -> None:
    listed = ", ".join(sorted(allowed))
    text = workload_yaml(task="chat", monthly_tokens="{input: 3B, output: 600M}").replace(
        "region: us-east-1\n", f"region: us-east-1\nassumptions:\n  instance_types: [{listed}]\n"
    )
    path = tmp_path_factory.mktemp("types") / "workloads.yaml"
    path.write_text(text)
    catalog = default_catalog()
    plan = build_plan(load_workloads(path, catalog), catalog, "dev", "workloads.yaml")
    for workload in plan.workloads:
        economics = workload.answers.volume_economics
        for option in [*economics.options, *economics.alternatives]:
            assert option.instance_type is None or option.instance_type in allowed
    assert all(pool.instance_type in allowed for pool in plan.pools)


def test_a_pool_range_too_small_for_its_zones_is_a_clear_error() -> None:
    """A /22 holds four /24 subnets: a network over more zones (its nodes' and its consumers')
    stops with the range and the count, instead of a StopIteration deep in the program."""
    from stacks.aws.network import subnet_cidrs

    assert subnet_cidrs("10.100.0.0/22", 4)[-1] == "10.100.3.0/24"
    with pytest.raises(RunError, match=r"10.100.0.0/22 holds 4 subnets of /24, but it needs 5"):
        subnet_cidrs("10.100.0.0/22", 5)


def test_a_restarting_node_is_not_replaced(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """systemd restarts vLLM in place (the load and the engine's start, minutes), far longer
    than the target group's unhealthy window: groups judged by the load balancer's check would
    terminate every restarting node, so every group is judged by EC2 status."""
    from stacks.boot import boot_time

    config = plan_project(project, None)
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    run = run_program(project, "dev", config)
    for pool in plan.pools:
        [group_ts] = [
            r for r in of_type(run, "aws:lb/targetGroup:TargetGroup")
            if r.name == f"{pool.name}-serving"
        ]  # fmt: skip
        check = group_ts.inputs["healthCheck"]
        window = check["unhealthyThreshold"] * check["interval"]
        assert boot_time(default_catalog(), pool).restart_s > window  # why ELB checks would kill
        groups = [g for g in of_type(run, GROUP) if g.name.startswith(pool.name)]
        assert groups and all(g.inputs["healthCheckType"] == "EC2" for g in groups)


# The example's consumer VPCs whose names must resolve privately: a pool's (contract-review,
# its private hosted zone) and Bedrock's PrivateLink endpoint (support-faq and ticket-triage,
# private DNS). The egress network's attachment (code-review) needs neither.
DNS_OFF = [
    (
        "vpc-0c3d4e5f6a7b80912",
        "workload contract-review: the consumers' VPC vpc-0c3d4e5f6a7b80912 has "
        "enableDnsHostnames off, but the pool's name resolves there through a private hosted "
        "zone",
    ),
    (
        "vpc-0a1b2c3d4e5f60718",
        "workloads support-faq, ticket-triage: the consumers' VPC vpc-0a1b2c3d4e5f60718 has "
        "enableDnsHostnames off, but the provider's endpoint there uses private DNS",
    ),
]


@pytest.mark.parametrize(("vpc", "message"), DNS_OFF)
def test_a_consumer_vpc_without_dns_hostnames_is_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str], vpc: str, message: str
) -> None:
    """AWS refuses an interface endpoint with private DNS in a VPC whose DNS hostnames or DNS
    support is off, only during `pulumi up` (CreateVpcEndpoint, PrivateDnsEnabled), and a
    private hosted zone never answers in one: the program stops first, naming the workloads,
    the VPC and the attribute (a VPC made with `aws ec2 create-vpc` has DNS hostnames off)."""
    config = plan_project(project, None)
    capsys.readouterr()
    standard = standard_invokes("us-east-1")

    def answer(token: str, args: dict[str, Any]) -> dict[str, Any]:
        found = standard(token, args)
        if token == "aws:ec2/getVpc:getVpc" and args.get("id") == vpc:
            return {**found, "enableDnsHostnames": False}
        return found

    with pytest.raises(RunError) as raised:
        run_program(project, "dev", config, answer_invoke=answer)
    assert str(raised.value).startswith(message), str(raised.value)
    assert "aws ec2 modify-vpc-attribute --vpc-id " + vpc in str(raised.value)

    # The egress network's VPC needs no private DNS: with its DNS off the program runs.
    def egress_off(token: str, args: dict[str, Any]) -> dict[str, Any]:
        found = standard(token, args)
        if token == "aws:ec2/getVpc:getVpc" and args.get("id") == "vpc-0e5f6a7b8c9d0a1b2":
            return {**found, "enableDnsHostnames": False, "enableDnsSupport": False}
        return found

    assert run_program(project, "dev", config, answer_invoke=egress_off).resources


def test_a_consumer_vpc_in_four_zones_previews_and_verifies(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One subnet in each of four zones is what AWS takes (us-east-1 has six): the offline
    commands give each its own zone. With three made-up zones the fourth wrapped into the
    first's and `preview` and `verify` refused the file, 'both in us-east-1a' (an outside
    review)."""
    subnets = ", ".join(f"subnet-0000000{d}" for d in "1234")
    text = workload_yaml(
        name="notes",
        consumers=f"[{{cidr: 10.60.0.0/16, vpc: vpc-0a1b2c3d, subnets: [{subnets}]}}]",
    )
    plan_project(project, text)
    plan = read_plan(project / "plans/dev/plan.json")
    zones = offline.plan_subnet_zones(plan)
    assert sorted(zones.values()) == ["a", "b", "c", "d"]
    capsys.readouterr()
    assert main(["preview", "--stack", "dev"]) == 0, capsys.readouterr().err
    assert main(["verify", "--stack", "dev"]) == 0, capsys.readouterr().out
