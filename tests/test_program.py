"""The Pulumi program (__main__.py), run for real under Pulumi's mocks: no CLI, no cloud."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pulumi import RunError

from planner.cli import main
from planner.graph.offline import run_program
from planner.planfile import SCHEMA_VERSION
from tests.conftest import EXAMPLE


@pytest.fixture
def planned(project: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    (project / "examples").mkdir()
    shutil.copy(EXAMPLE, project / "examples" / "workloads.yaml")
    # Per workload: the example then uses every kind of component (as tests/test_stacks.py).
    assert main(["plan", "examples/workloads.yaml", "--strategy", "per-workload"]) == 0
    capsys.readouterr()
    return project


ALLOWED_INVOKES = [
    "aws:index/getAvailabilityZones:getAvailabilityZones",
    "aws:index/getRegion:getRegion",
    "aws:index/getCallerIdentity:getCallerIdentity",
    "aws:index/getPartition:getPartition",
    "aws:ssm/getParameter:getParameter",
    # The deploying principal, the weights' default uploader (stacks/aws/lookups.py).
    "aws:iam/getSessionContext:getSessionContext",
    # The route table of each consumer subnet the egress path attaches (stacks/aws/egress.py).
    "aws:ec2/getRouteTable:getRouteTable",
    "aws:ec2/getSubnet:getSubnet",
    # Each consumer VPC's DNS attributes (stacks/aws/lookups.py private_dns_on).
    "aws:ec2/getVpc:getVpc",
    # The zones that offer each pool's instance type (stacks/aws/lookups.py).
    "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings",
]
CONFIG = {"ai-infra-planner:plan": "plans/dev/plan.json", "aws:region": "us-east-1"}


def test_program_exports_the_plans_costs(planned: Path) -> None:
    run = run_program(planned, "dev", CONFIG)
    plan = json.loads((planned / "plans/dev/plan.json").read_text())
    # Nodes, staff, network and security pieces, the connections in the consumer VPCs (the
    # pools' endpoints, Bedrock's endpoint, the egress attachment) and API usage: 141,416.34
    # USD for the example.
    assert run.outputs["monthly_cost_usd"] == plan["totals"]["monthly_cost_usd"] == 140927.54
    costs = run.outputs["workload_monthly_cost_usd"]
    assert set(costs) == {
        "support-faq", "contract-review", "ticket-triage", "code-review", "patient-notes",
    }  # fmt: skip
    assert sum(costs.values()) == pytest.approx(run.outputs["monthly_cost_usd"])
    assert run.outputs["placements"]["contract-review"] == "self_hosted"
    assert sorted(set(run.invokes)) == sorted(ALLOWED_INVOKES)


def test_program_refuses_a_stale_plan(planned: Path) -> None:
    workloads = planned / "examples" / "workloads.yaml"
    workloads.write_text(workloads.read_text().replace("400M", "500M"))
    with pytest.raises(
        RunError, match=r"stale plan: examples/workloads.yaml changed.*planner plan"
    ):
        run_program(planned, "dev", CONFIG)


def test_program_refuses_a_missing_plan(project: Path) -> None:
    with pytest.raises(RunError, match="no such plan: run `planner plan` first"):
        run_program(project, "dev", CONFIG)


def test_program_refuses_another_schema_version(planned: Path) -> None:
    plan = planned / "plans/dev/plan.json"
    text = plan.read_text().replace(f'"schema_version": {SCHEMA_VERSION}', '"schema_version": 99')
    plan.write_text(text)
    with pytest.raises(RunError, match=f"schema_version: expected {SCHEMA_VERSION}, found 99"):
        run_program(planned, "dev", CONFIG)


def test_program_requires_the_plan_config(planned: Path) -> None:
    with pytest.raises(Exception, match="ai-infra-planner:plan"):
        run_program(planned, "dev", {"aws:region": "us-east-1"})
