"""The stack's network ranges: allocated at plan time, never overlapping each other or a
consumer's range, recorded in the plan, used by the program; a clear error when they run out."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi import RunError

from planner.catalog import Catalog, default_catalog
from planner.cli import main
from planner.errors import PlannerError
from planner.graph.offline import run_program
from planner.inputs.networks import API_NETWORKS, OutOfRanges, allocate, pool_limit
from planner.planfile import plan_problems
from tests.conftest import EXAMPLE, workload_yaml
from tests.helpers import plan_text
from tests.test_workloads import planned, refused

Net = ipaddress.IPv4Network
CATALOG = default_catalog()
CONFIG = {"ai-infra-planner:plan": "plans/dev/plan.json", "aws:region": "us-east-1"}


def _overlapping(ranges: list[Net]) -> list[tuple[Net, Net]]:
    """Pairs that overlap (sorted by address, a range can only overlap the next ones that start
    before it ends)."""
    ordered = sorted(ranges, key=lambda r: int(r.network_address))
    pairs = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b.network_address > a.broadcast_address:
                break
            pairs.append((a, b))
    return pairs


# --- The allocator alone, for any consumers and any number of pools up to its limit.

consumer_ranges = st.lists(
    st.builds(
        lambda address, prefix: str(Net((address, prefix), strict=False)),
        # Mostly inside 10.0.0.0/8, where the stack's ranges are, some anywhere.
        st.one_of(st.integers(0x0A000000, 0x0AFFFFFF), st.integers(0, 2**32 - 1)),
        st.integers(8, 28),
    ),
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(
    consumers=consumer_ranges,
    prefix=st.sampled_from([16, 17, 19, 22, 24]),
    wanted=st.integers(0, 300),
    needs=st.sets(st.sampled_from(API_NETWORKS)),
)
def test_no_range_overlaps_another_or_a_consumer_up_to_the_limit(
    consumers: list[str], prefix: int, wanted: int, needs: set[str]
) -> None:
    pools_start = str(Net((0x0A640000, prefix)))  # 10.100.0.0
    apis_start = str(Net((0x0AFA0000, prefix)))  # 10.250.0.0
    limit = pool_limit(consumers, "10.0.0.0/8", pools_start, apis_start)
    try:
        allocate(0, sorted(needs), consumers, "10.0.0.0/8", pools_start, apis_start)
        apis_fit = True
    except OutOfRanges as exc:
        assert exc.what == "the API networks" and exc.free < exc.needed <= len(API_NETWORKS)
        apis_fit = False
    # A share of the pools up to the limit, and sometimes one past it.
    pools = min(wanted, limit + 1) if wanted % 5 == 0 else min(wanted, limit)
    try:
        allocation = allocate(
            pools, sorted(needs), consumers, "10.0.0.0/8", pools_start, apis_start
        )
    except OutOfRanges as exc:
        # Only past the limit (or without room for the API networks), saying how many were
        # needed and how many were free.
        assert f"{exc.needed} needed, {exc.free} free" in str(exc)
        if apis_fit:
            assert pools > limit and (exc.what, exc.needed, exc.free) == ("the pools", pools, limit)
        return
    assert apis_fit and pools <= limit
    ranges = [Net(cidr) for cidr in allocation.pools + list(allocation.networks.values())]
    assert len(allocation.pools) == pools and set(allocation.networks) == needs
    assert _overlapping(ranges) == []
    taken = [ipaddress.ip_network(c) for c in consumers]
    assert not [(r, c) for r in ranges for c in taken if r.overlaps(c)]
    assert all(r.subnet_of(Net("10.0.0.0/8")) and r.prefixlen == prefix for r in ranges)


def test_todays_ranges_are_the_defaults() -> None:
    allocation = allocate(3, API_NETWORKS, ["10.20.0.0/16"])
    assert allocation.pools == ["10.100.0.0/16", "10.101.0.0/16", "10.102.0.0/16"]
    assert allocation.networks == {"private_link": "10.250.0.0/16", "egress": "10.251.0.0/16"}
    # With no consumer in 10.0.0.0/8: every /16 but the two API networks.
    assert pool_limit([]) == 254


def test_the_egress_network_keeps_its_place_without_private_link() -> None:
    """Adding a PrivateLink provider later must not move (replace) the egress network."""
    assert allocate(1, ["egress"], []).networks == {"egress": "10.251.0.0/16"}


def test_pools_skip_the_api_networks_and_consumers_and_wrap_round_the_space() -> None:
    allocation = allocate(4, [], ["10.255.0.0/16", "10.0.0.0/24"], pool_start="10.249.0.0/16")
    assert allocation.pools == ["10.249.0.0/16", "10.252.0.0/16", "10.253.0.0/16", "10.254.0.0/16"]
    wrapped = allocate(7, [], ["10.255.0.0/16", "10.0.0.0/24"], pool_start="10.249.0.0/16")
    assert wrapped.pools[4:] == ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]


# --- Through the workloads file and `planner plan`.


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["regulated", "confidential", "internal"]),
            st.sampled_from(["classification", "faq", "code_generation"]),
            st.lists(
                st.builds(
                    lambda address, prefix: str(Net((address, prefix), strict=False)),
                    st.integers(0x0A000000, 0x0AFFFFFF),
                    st.integers(9, 24),
                ),
                min_size=1,
                max_size=3,
            ),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_a_plans_ranges_never_overlap_or_the_plan_is_refused(
    workloads: list[tuple[str, str, list[str]]],
) -> None:
    """Any organization: its plan's ranges pass read_plan's checks (no overlap with each other
    or a consumer), or planning stops naming network.pools or network.apis."""
    doc = {
        "organization": "acme",
        "region": "us-east-1",
        "workloads": [
            {
                "name": f"w{i}",
                "task": task,
                "data": data,
                "monthly_tokens": {"input": "300M", "output": "30M"},
                "consumers": [{"cidr": cidr, "account": "111122223333"} for cidr in cidrs],
            }
            for i, (data, task, cidrs) in enumerate(workloads)
        ],
    }
    try:
        plan = plan_text(yaml.safe_dump(doc), CATALOG)
    except PlannerError as exc:
        assert [p.field for p in exc.problems] in (["network.pools"], ["network.apis"])
        return
    assert plan_problems(plan, CATALOG) == []
    ranges = [Net(p.cidr) for p in plan.pools] + [Net(c) for c in plan.networks.values()]
    consumers = [Net(c) for _, _, cidrs in workloads for c in cidrs]
    assert not [(r, c) for r in ranges for c in consumers if r.overlaps(c)]
    assert _overlapping(ranges) == []


def _regulated(count: int, network: str = "", consumer: str = "10.0.0.0/16") -> str:
    """count regulated workloads: one self-hosted pool each (the per-workload strategy)."""
    doc = {
        "organization": "acme",
        "region": "us-east-1",
        "workloads": [
            {
                "name": f"w{i}",
                "task": "classification",
                "data": "regulated",
                "monthly_tokens": {"input": "100M", "output": "1M"},
                "consumers": [{"cidr": consumer, "account": "111122223333"}],
            }
            for i in range(count)
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False) + network


def test_a_base_of_zero_is_honoured(catalog: Catalog) -> None:
    plan = plan_text(_regulated(2, "network: {pools: 10.0.0.0/16}\n", "10.1.0.0/16"), catalog)
    # 10.1.0.0/16 is a consumer's: skipped.
    assert [pool.cidr for pool in plan.pools] == ["10.0.0.0/16", "10.2.0.0/16"]


def test_a_pool_never_takes_a_consumers_range(catalog: Catalog) -> None:
    plan = plan_text(_regulated(2, consumer="10.100.0.0/15"), catalog)
    assert [pool.cidr for pool in plan.pools] == ["10.102.0.0/16", "10.103.0.0/16"]


def test_the_api_networks_are_in_the_plan_only_when_needed(catalog: Catalog) -> None:
    self_hosted = plan_text(_regulated(1), catalog)
    assert self_hosted.networks == {}
    example = plan_text(EXAMPLE.read_text(), catalog)
    assert example.networks == {"private_link": "10.250.0.0/16", "egress": "10.251.0.0/16"}
    assert [pool.cidr for pool in example.pools] == ["10.100.0.0/16", "10.101.0.0/16"]


def test_two_hundred_pools_plan_with_distinct_ranges(catalog: Catalog) -> None:
    """Past 156 pools the old 10.<100 + index> ranges crashed preview, verify and diff."""
    plan = plan_text(_regulated(200), catalog)
    ranges = [Net(pool.cidr) for pool in plan.pools]
    assert len(ranges) == 200 and _overlapping(ranges) == []
    assert not any(
        r.overlaps(Net("10.0.0.0/16")) or r.overlaps(Net("10.250.0.0/15")) for r in ranges
    )


def test_too_many_pools_for_the_space_are_refused_at_plan_time(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network = "network:\n  space: 10.0.0.0/12\n  pools: 10.0.0.0/16\n  apis: 10.8.0.0/16\n"
    path = write_workloads(_regulated(200, network))
    [line] = refused(capsys, project, str(path), "--strategy", "per-workload")
    line_of_pools = _regulated(200).count("\n") + 3
    assert line.startswith(f"{path}: network.pools (line {line_of_pools}): ran out of ranges")
    # What ran out, how many were needed and how many there were.
    assert "for the pools: 200 /16 range(s) needed" in line
    assert "only 13 are free" in line  # 16 in the /12, less the API networks and the consumer's


def test_consumers_that_fill_the_default_space_are_refused_naming_the_default(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workloads(_regulated(1, consumer="10.0.0.0/8"))
    [line] = refused(capsys, project, str(path))
    assert line.startswith(f"{path}: network.pools: ran out of ranges for the pools")
    assert "counting up from 10.100.0.0/16 (the default) round network.space 10.0.0.0/8" in line
    assert "only 0 are free" in line


def test_api_networks_that_do_not_fit_are_refused(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Gemini is reached over the egress network, whose place is the second; the space holds one.
    network = "network: {space: 10.9.0.0/16, pools: 10.9.0.0/16, apis: 10.9.0.0/16}\n"
    path = write_workloads(workload_yaml(model="gemini-2.5-pro") + network)
    [line] = refused(capsys, project, str(path))
    assert line.startswith(
        f"{path}: network.apis (line 10): ran out of ranges for the API networks"
    )
    assert "2 /16 range(s) needed" in line and "only 1 are free" in line


@pytest.mark.parametrize(
    ("network", "field", "needle"),
    [
        ("{space: 8.0.0.0/8}", "network.space", "8.0.0.0/8 is not private address space"),
        ("{pools: 172.16.0.0/16}", "network.pools", "outside network.space 10.0.0.0/8"),
        ("{apis: 10.250.0.0/25}", "network.apis", "is a /25: a network of the stack is /16 to /24"),
        ("{pools: 10.96.0.0/12}", "network.pools", "is a /12: a network of the stack is /16"),
        ("{pools: 10.100.0.1/16}", "network.pools", "is not a CIDR block"),
        ("{space: 'fd00::/8'}", "network.space", "is IPv6: a VPC's range is IPv4"),
        ("{pool: 10.100.0.0/16}", "network.pool", "unknown field; did you mean 'pools'?"),
    ],
)
def test_a_bad_network_is_refused_in_the_files_words(
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
    network: str,
    field: str,
    needle: str,
) -> None:
    path = write_workloads(workload_yaml() + f"network: {network}\n")
    lines = refused(capsys, project, str(path))
    [line] = [line for line in lines if line.startswith(f"{path}: {field} (line 9): ")]
    assert needle in line


# --- The program takes the plan's ranges, and refuses the old stack keys.


def _vpc_ranges(project: Path, config: dict[str, str]) -> dict[str, str]:
    run = run_program(project, "dev", config)
    return {r.name: r.inputs["cidrBlock"] for r in run.resources if r.type == "aws:ec2/vpc:Vpc"}


def test_the_program_builds_the_plans_ranges_past_the_top_of_the_space(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pools from 10.254.0.0/16: the third wraps to the bottom of 10.0.0.0/8, where the old
    10.<base + index> arithmetic made 10.256.0.0/16 and crashed preview and verify."""
    write_workloads(_regulated(3, "network: {pools: 10.254.0.0/16}\n"))
    planned(capsys, "workloads.yaml", "--strategy", "per-workload")
    plan = json.loads((project / "plans/dev/plan.json").read_text())
    ranges = [pool["cidr"] for pool in plan["pools"]]
    assert ranges == ["10.254.0.0/16", "10.255.0.0/16", "10.1.0.0/16"]  # 10.0 is the consumer's
    assert sorted(_vpc_ranges(project, CONFIG).values()) == sorted(ranges)
    assert main(["preview"]) == 0
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "verified: no failure" in out


@pytest.mark.parametrize(
    ("key", "value", "instead"),
    [
        ("pool_cidr_base", "0", "network: {pools: 10.0.0.0/16}"),
        ("api_vpc_cidr", "10.200.0.0/16", "network: {apis: 10.200.0.0/16}"),
    ],
)
def test_the_program_refuses_the_old_stack_keys_saying_where_they_moved(
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: str,
    instead: str,
) -> None:
    write_workloads(workload_yaml())
    planned(capsys, "workloads.yaml")
    with pytest.raises(RunError) as raised:
        run_program(project, "dev", {**CONFIG, f"ai-infra-planner:{key}": value})
    message = str(raised.value)
    assert f"stack config {key} moved to the workloads file" in message
    assert f"`pulumi config rm {key}`" in message and instead in message
    # preview reads the stack's config file: exit 2, the same words, no traceback.
    stack = project / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text() + f"  ai-infra-planner:{key}: '{value}'\n")
    assert main(["preview"]) == 2
    err = capsys.readouterr().err
    assert f"stack config {key} moved to the workloads file" in err and "Traceback" not in err


# --- Consumers inside the stack's own network.


def test_a_plain_range_consumer_is_warned_about(catalog: Catalog) -> None:
    plan = plan_text(workload_yaml(consumers='["10.0.0.0/16"]'), catalog)
    [warning] = [w for w in plan.workloads[0].warnings if w.code == "consumers_inside"]
    assert "nothing outside the stack reaches this workload" in warning.message
    assert "{cidr, vpc, subnets}" in warning.message


@pytest.mark.parametrize(
    "consumers",
    [
        '[{cidr: 10.0.0.0/16, account: "111122223333"}]',
        "[{cidr: 10.0.0.0/16, vpc: vpc-0a1b2c3d, subnets: [subnet-0a1b2c3d]}]",
    ],
)
def test_a_consumer_that_names_where_it_runs_is_not_warned_about(
    catalog: Catalog, consumers: str
) -> None:
    plan = plan_text(workload_yaml(consumers=consumers), catalog)
    assert not [w for w in plan.workloads[0].warnings if w.code == "consumers_inside"]


def test_the_example_names_its_consumers(catalog: Catalog) -> None:
    plan = plan_text(EXAMPLE.read_text(), catalog)
    assert not [w for p in plan.workloads for w in p.warnings if w.code == "consumers_inside"]


@pytest.mark.parametrize(
    ("second", "needle"),
    [
        (
            "{cidr: 10.1.0.0/16, vpc: vpc-0a1b2c3d, subnets: [subnet-0000000b]}",
            "vpc-0a1b2c3d is given subnets subnet-0000000a at workloads[0].consumers[0]: name "
            "the same subnets wherever a VPC is named",
        ),
        (
            "{cidr: 10.1.0.0/16, vpc: vpc-0e0e0e0e, subnets: [subnet-0000000a]}",
            "subnet-0000000a is in vpc-0a1b2c3d at workloads[0].consumers[0]: a subnet is in one "
            "VPC",
        ),
    ],
)
def test_a_vpc_and_its_subnets_are_named_alike_everywhere(
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
    second: str,
    needle: str,
) -> None:
    first = "{cidr: 10.0.0.0/16, vpc: vpc-0a1b2c3d, subnets: [subnet-0000000a]}"
    path = write_workloads(workload_yaml(consumers=f"[{first}, {second}]"))
    [line] = refused(capsys, project, str(path))
    assert line.startswith(f"{path}: workloads[0].consumers[1].subnets (line 8): {needle}"), line
