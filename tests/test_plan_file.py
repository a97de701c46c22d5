"""plan.json is checked whole where it is read: `preview`, `verify`, `diff` and the Pulumi
program refuse a corrupted plan with exit status 2, naming every bad field, never a traceback."""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pulumi import RunError

from planner.cli import main
from planner.graph.offline import run_program
from planner.planfile import SCHEMA_VERSION, read_plan
from tests.conftest import EXAMPLE, REPO

Plan = dict[str, Any]


@pytest.fixture(scope="module")
def example_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """The example's plan, planned once for the module (per workload: pools and providers)."""
    project = tmp_path_factory.mktemp("example")
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    (project / "examples").mkdir()
    shutil.copy(EXAMPLE, project / "examples" / "workloads.yaml")
    with contextlib.chdir(project):
        assert main(["plan", "examples/workloads.yaml", "--strategy", "per-workload"]) == 0
    loaded: Plan = json.loads((project / "plans/dev/plan.json").read_text())
    return loaded


def _index(plan: Plan, placement: str) -> int:
    return next(i for i, w in enumerate(plan["workloads"]) if w["placement"] == placement)


def _set(path: str, value: Any) -> Callable[[Plan], None]:
    """A corruption: set one field, by its dotted path (a number indexes a list)."""

    def corrupt(plan: Plan) -> None:
        *parents, last = path.split(".")
        node: Any = plan
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return corrupt


DELETE = object()
SELF = 1  # contract-review, self-hosted in the example
API = 0  # support-faq, through Bedrock

# (corruption, the field the message must name)
FAULTS: dict[str, tuple[Callable[[Plan], None], str]] = {
    "negative nodes": (_set("pools.0.nodes", -1), "pools[0].nodes"),
    "zero nodes": (_set("pools.0.nodes", 0), "pools[0].nodes"),
    "nodes not a number": (_set("pools.0.nodes", "two"), "pools[0].nodes"),
    "negative workload cost": (
        _set(f"workloads.{API}.monthly_cost_usd", -5.0),
        f"workloads[{API}].monthly_cost_usd",
    ),
    "negative pool cost": (_set("pools.1.monthly_cost_usd", -1.0), "pools[1].monthly_cost_usd"),
    "negative access cost": (
        _set("providers.0.fixed_monthly_usd", -15.6),
        "providers[0].fixed_monthly_usd",
    ),
    "negative option cost": (
        _set(f"workloads.{API}.answers.volume_economics.options.2.monthly_cost_usd", -1.0),
        f"workloads[{API}].answers.volume_economics.options[2].monthly_cost_usd",
    ),
    "unknown instance type": (
        _set("pools.0.instance_type", "p9.96xlarge"),
        "pools[0].instance_type",
    ),
    "unknown open model": (_set("pools.0.model", "llama-99"), "pools[0].model"),
    # A pool serves its workloads' model from that model's checkpoint: another catalog model's
    # name, or other weights, would serve something else under the reviewed name.
    "pool model not its workloads'": (_set("pools.0.model", "llama-3.1-8b"), "pools[0].model"),
    "pool weights not its model's checkpoint": (
        _set("pools.0.weights", "evil/model"),
        "pools[0].weights",
    ),
    "pool weights another model's checkpoint": (
        _set("pools.0.weights", "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8"),
        "pools[0].weights",
    ),
    "unknown API model": (_set(f"workloads.{API}.model", "gpt-99"), f"workloads[{API}].model"),
    "unknown provider": (_set("providers.0.provider", "acme-ai"), "providers[0].provider"),
    "total off by a cent": (_set("totals.monthly_cost_usd", 138988.50), "totals.monthly_cost_usd"),
    "pool cost off its workloads": (
        _set("pools.0.monthly_cost_usd", 1000.0),
        "pools[0].monthly_cost_usd",
    ),
    "staff off": (_set("totals.staff_usd", 0.0), "totals.staff_usd"),
    "shared access off": (_set("totals.shared_access_usd", 1.0), "totals.shared_access_usd"),
    "pool names no workload": (_set("pools.0.workloads", []), "pools[0].workloads"),
    "pool names a workload that is not there": (
        _set("pools.0.workloads", ["ghost"]),
        "pools[0].workloads[0]",
    ),
    "workload names a pool that is not there": (
        _set(f"workloads.{SELF}.pool", "ghost-pool"),
        f"workloads[{SELF}].pool",
    ),
    "workload names a provider that is not there": (
        _set(f"workloads.{API}.provider", "openai"),
        f"workloads[{API}].provider",
    ),
    "chosen option is not an option": (
        _set(f"workloads.{API}.answers.volume_economics.chosen", "cloud_api/nothing"),
        f"workloads[{API}].answers.volume_economics.chosen",
    ),
    "negative tokens": (
        _set(f"workloads.{API}.answers.volume_economics.monthly_input_tokens", -1),
        f"workloads[{API}].answers.volume_economics.monthly_input_tokens",
    ),
    "missing total": (_set("totals.api_tokens_usd", DELETE), "totals.api_tokens_usd"),
    # The example's pools are 10.100.0.0/16 and 10.101.0.0/16, its consumers 10.20-50.0.0/16.
    "pool range overlaps another pool's": (
        _set("pools.1.cidr", "10.100.128.0/17"),
        "pools[1].cidr",
    ),
    "pool range overlaps a consumer's": (_set("pools.0.cidr", "10.20.0.0/16"), "pools[0].cidr"),
    "pool range overlaps an API network": (
        _set("networks.egress", "10.101.0.0/16"),
        "pools[1].cidr",
    ),
    "pool range not a CIDR": (_set("pools.0.cidr", "10.300.0.0/16"), "pools[0].cidr"),
    "pool range missing": (_set("pools.0.cidr", DELETE), "pools[0].cidr"),
    "pool range too small for a VPC": (_set("pools.0.cidr", "10.100.0.0/28"), "pools[0].cidr"),
    "API network missing": (_set("networks.egress", DELETE), "networks.egress"),
    "API network not needed": (_set("networks.spare", "10.252.0.0/16"), "networks.spare"),
    "unknown field": (_set("totals.discount_usd", 5.0), "totals.discount_usd"),
    # The example's connections: contract-review-pool and patient-notes-pool, 15.10 USD each.
    "connections total off": (_set("totals.connections_usd", 0.0), "totals.connections_usd"),
    "connection cost off the total": (
        _set("connections.0.monthly_cost_usd", 99.0),
        "totals.connections_usd",
    ),
    "connection in a VPC its workloads do not name": (
        _set("connections.0.vpc", "vpc-0123456789abcdef0"),
        "connections[0].vpc",
    ),
    "connection names a workload that is not there": (
        _set("connections.0.workloads", ["ghost"]),
        "connections[0].workloads[0]",
    ),
    "negative connection share": (
        _set(f"workloads.{SELF}.connection_share_usd", -15.1),
        f"workloads[{SELF}].connection_share_usd",
    ),
    # The share moved out of the workload's cost: its pool no longer adds up.
    "connection share not in the workload's cost": (
        _set(f"workloads.{SELF}.connection_share_usd", 0.0),
        "totals.connections_usd",
    ),
    "connections missing": (_set("connections", DELETE), "connections"),
    # Consumers: a public range on regulated data would open the pool to the internet.
    "public consumer of regulated data": (
        _set(f"workloads.{SELF}.consumers.0.cidr", "8.8.8.0/24"),
        f"workloads[{SELF}].consumers[0].cidr",
    ),
    "consumer not a CIDR": (
        _set(f"workloads.{API}.consumers.0.cidr", "not-a-cidr"),
        f"workloads[{API}].consumers[0].cidr",
    ),
    "consumer admits everyone": (
        _set(f"workloads.{API}.consumers.0.cidr", "0.0.0.0/0"),
        f"workloads[{API}].consumers[0].cidr",
    ),
    # Numbers JSON does not have (Python's json reads and writes them).
    "NaN total": (_set("totals.monthly_cost_usd", float("nan")), "totals.monthly_cost_usd"),
    "infinite total": (_set("totals.monthly_cost_usd", float("inf")), "totals.monthly_cost_usd"),
    "NaN node count": (_set("pools.0.nodes", float("nan")), "pools[0].nodes"),
    # Node counts agree with the costs; a count is a whole number, not text or a flag.
    "nodes changed alone": (_set("pools.0.nodes", 2), "pools[0].monthly_cost_usd"),
    "absurd nodes": (_set("pools.0.nodes", 10**12), "pools[0].monthly_cost_usd"),
    "nodes as text": (_set("pools.0.nodes", "2"), "pools[0].nodes"),
    "nodes as a flag": (_set("pools.0.nodes", True), "pools[0].nodes"),
    "fractional nodes": (_set("pools.0.nodes", 1.5), "pools[0].nodes"),
    "flag as a number": (_set("providers.0.private_link", 1), "providers[0].private_link"),
    "purchase option off its nodes": (
        _set("pools.0.purchase_options.1.monthly_cost_usd", 1.0),
        "pools[0].purchase_options[1].monthly_cost_usd",
    ),
    "unknown pricing": (_set("pools.0.pricing", "on_demandd"), "pools[0].pricing"),
    "unknown region": (_set("region", "xx-moon-1"), "region"),
    "stack is a path": (_set("stack", "../../etc"), "stack"),
    # Perimeters at least as strong as the data classes need (planner/data/data_classes.yaml).
    "pool perimeter weaker than its workloads'": (
        _set("pools.0.perimeter", "contractual"),
        "pools[0].perimeter",
    ),
    "workload perimeter weaker than its data": (
        _set(f"workloads.{SELF}.answers.data_sensitivity.perimeter", "private_link"),
        f"workloads[{SELF}].answers.data_sensitivity.perimeter",
    ),
    "regulated data on an API": (
        _set(f"workloads.{API}.data", "regulated"),
        f"workloads[{API}].placement",
    ),
    "unknown data class": (_set(f"workloads.{API}.data", "secret"), f"workloads[{API}].data"),
}


def _write(project: Path, plan: Plan, corrupt: Callable[[Plan], None] | None) -> Path:
    broken = copy.deepcopy(plan)
    if corrupt is not None:
        corrupt(broken)
    path = project / "plans" / "dev" / "plan.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(broken, indent=2))
    return path


def _refused(
    capsys: pytest.CaptureFixture[str], args: list[str], file: Path, fields: list[str]
) -> None:
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2, (args, out, err)
    assert out == "" and "Traceback" not in err
    assert "Input should" not in err  # the file's words, not pydantic's
    lines = err.splitlines()
    for field in fields:
        assert any(
            line.startswith(f"error: {file}: {field}: ") or f"{file}: {field}: " in line
            for line in lines
        ), (field, err)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_corrupted_plan_is_refused_by_every_reader(
    fault: str, example_plan: Plan, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt, field = FAULTS[fault]
    good = _write(project, example_plan, None).rename(project / "base.json")
    path = _write(project, example_plan, corrupt)
    relative = Path("plans/dev/plan.json")
    _refused(capsys, ["preview", str(relative)], relative, [field])
    _refused(capsys, ["verify", str(relative)], relative, [field])
    _refused(capsys, ["diff", str(good), str(relative)], relative, [field])
    _refused(capsys, ["diff", str(relative), str(good)], relative, [field])
    assert path.read_text() != good.read_text()  # nothing was rewritten


def test_the_example_plan_passes(
    example_plan: Plan, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(project, example_plan, None)
    assert read_plan(path).totals.monthly_cost_usd == example_plan["totals"]["monthly_cost_usd"]


def test_every_problem_is_listed(
    example_plan: Plan, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def corrupt(plan: Plan) -> None:
        for fault in ("negative nodes", "unknown API model", "pool names no workload"):
            FAULTS[fault][0](plan)

    _write(project, example_plan, corrupt)
    relative = Path("plans/dev/plan.json")
    _refused(
        capsys,
        ["preview", str(relative)],
        relative,
        ["pools[0].nodes", f"workloads[{API}].model", "pools[0].workloads"],
    )


def test_type_errors_are_all_listed(
    example_plan: Plan, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def corrupt(plan: Plan) -> None:
        plan["pools"][0]["nodes"] = "two"
        plan["totals"]["staff_usd"] = "a lot"

    _write(project, example_plan, corrupt)
    relative = Path("plans/dev/plan.json")
    _refused(capsys, ["verify", str(relative)], relative, ["pools[0].nodes", "totals.staff_usd"])


@pytest.mark.parametrize(
    "fault",
    [
        "negative nodes",
        "unknown instance type",
        "total off by a cent",
        "pool range overlaps a consumer's",
        "API network missing",
        "NaN total",
        "nodes as text",
    ],
)
def test_the_pulumi_program_refuses_a_corrupted_plan(
    fault: str, example_plan: Plan, project: Path
) -> None:
    corrupt, field = FAULTS[fault]
    _write(project, example_plan, corrupt)
    # Fresh against the workloads file it names, so only the corruption can stop it.
    (project / "examples").mkdir()
    shutil.copy(EXAMPLE, project / "examples" / "workloads.yaml")
    config = {"ai-infra-planner:plan": "plans/dev/plan.json", "aws:region": "us-east-1"}
    with pytest.raises(RunError) as raised:
        run_program(project, "dev", config)
    assert f"plans/dev/plan.json: {field}: " in str(raised.value)
    assert "Traceback" not in str(raised.value)


def test_another_schema_version_is_refused(
    example_plan: Plan, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(project, example_plan, _set("schema_version", SCHEMA_VERSION - 1))
    relative = Path("plans/dev/plan.json")
    _refused(capsys, ["preview", str(relative)], relative, ["schema_version"])
