"""`planner preview`: the offline preview, in text and in the shape of `pulumi preview --json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from planner.catalog import default_catalog
from planner.cli import main
from planner.costing import pieces_cost, pool_fixed_cost
from planner.planfile import read_plan
from tests.test_stacks import plan_project

CIPHERTEXT = "v1:c2VjcmV0LWNpcGhlcnRleHQ="


@pytest.fixture
def planned(project: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    plan_project(project, None)
    config_file = project / "Pulumi.dev.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["config"]["ai-infra-planner:openai_api_key"] = {"secure": CIPHERTEXT}
    config_file.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    return project


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["preview", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_preview(planned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("OFFLINE PREVIEW") and lines[-1].startswith("OFFLINE PREVIEW")
    assert "+ pulumi:pulumi:Stack  ai-infra-planner-dev" in lines
    assert "    + ai-infra-planner:index:InferencePool  contract-review-pool" in lines
    assert "        + aws:kms/key:Key  contract-review-pool-key" in lines
    assert "     2  aws:autoscaling/group:Group" in lines
    plan = read_plan(planned / "plans/dev/plan.json")
    fixed = pool_fixed_cost(default_catalog())
    staff = fixed.monthly_usd - pieces_cost(default_catalog(), ("self_hosted_pool",)).monthly_usd
    for pool in plan.pools:
        [row] = [line for line in lines if line.strip().startswith(f"{pool.name}-nodes ")]
        assert f"{pool.monthly_cost_usd - fixed.monthly_usd:,.2f} USD" in row
    [total] = [line for line in lines if line.strip().startswith("resources total")]
    resources_total = float(total.split()[2].replace(",", ""))
    # The plan prices the network and security pieces from operations.yaml; the preview prices
    # the resources the program registers. They agree: the pools' cost less their staff, plus
    # each provider's access, the egress network and the connections in the consumers' VPCs is
    # the preview's total.
    planned_total = (
        sum(p.monthly_cost_usd - staff for p in plan.pools)
        + sum(a.fixed_monthly_usd for a in plan.providers)
        + plan.totals.egress_network_usd
        + sum(c.monthly_cost_usd for c in plan.connections)
    )
    assert resources_total == pytest.approx(planned_total, abs=0.005)
    # Each pool's endpoint in its consumer VPC (two subnets) and its private zone there; the
    # Bedrock endpoint in its consumer VPC (two subnets); the egress path's attachment of
    # code-review's VPC to the transit gateway.
    expected = {
        "self_hosted_pool": ["0.50", "14.60"],
        "private_link": ["14.60"],
        "egress": ["36.50"],
    }
    names = {"private_link": "bedrock-link-{vpc}-", "egress": "api-egress-tgw-consumer-"}
    for connection in plan.connections:
        name = names.get(connection.kind, "{service}-{vpc} ").format(
            service=connection.service, vpc=connection.vpc
        )
        rows = sorted(
            line.split()[1]
            for line in lines
            if line.strip().startswith(name) and line.split()[1] != "0.00"
        )
        assert rows == expected[connection.kind], connection
    [row] = [line for line in lines if line.strip().startswith("consumer connections' resources")]
    assert f"{plan.totals.connections_usd:,.2f} USD" in row and plan.totals.connections_usd == 81.30
    # One firewall endpoint per availability zone.
    assert any("api-egress-firewall" in line and "576.70 USD" in line for line in lines)


def test_preview_is_deterministic(planned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys) == run(capsys)
    assert run(capsys, "--json") == run(capsys, "--json")


def test_json_has_the_shape_of_pulumi_preview(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--json")
    assert code == 0
    document = json.loads(out)
    steps = document["steps"]
    assert steps[0]["newState"]["type"] == "pulumi:pulumi:Stack"
    urns = {step["urn"] for step in steps}
    for step in steps:
        assert step["op"] == "create"
        state = step["newState"]
        assert {"type", "urn", "parent", "inputs", "propertyDependencies"} <= set(state)
        assert state["urn"] == step["urn"]
        if state["type"] != "pulumi:pulumi:Stack":
            assert state["parent"] in urns
        for dependencies in state["propertyDependencies"].values():
            assert set(dependencies) <= urns
    versions = {
        s["urn"].rsplit("::", 1)[1]: s["newState"]["inputs"]["secretString"]
        for s in steps
        if s["newState"]["type"].endswith("secretVersion:SecretVersion")
    }
    # The provider's key from config, and the pools' serving keys the stack generates (known
    # only at `pulumi up`): both masked.
    assert versions == {
        "openai-access-api-key": "[secret]",
        "contract-review-pool-api-key": "[secret]",
        "patient-notes-pool-api-key": "[secret]",
    }
    assert CIPHERTEXT not in out
    [group] = [
        s for s in steps
        if s["newState"]["type"] == "aws:autoscaling/group:Group"
        and s["urn"].endswith("contract-review-pool-nodes")
    ]  # fmt: skip
    assert any(
        urn.endswith("launchTemplate:LaunchTemplate::contract-review-pool-nodes")
        for urn in group["newState"]["propertyDependencies"]["launchTemplate"]
    )
    assert document["costs"]["resourcesMonthlyUsd"] > 110_000
    assert document["offline"].startswith("OFFLINE PREVIEW")


def test_preview_of_a_plan_file(planned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plans/dev/plan.json")
    assert code == 0 and "contract-review-pool" in out


def test_preview_refuses_a_stale_plan(planned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workloads = planned / "examples/workloads.yaml"
    workloads.write_text(workloads.read_text().replace("400M", "401M"))
    code, out, err = run(capsys)
    assert code == 2 and out == ""
    assert "stale plan" in err and "Traceback" not in err


def test_a_stale_plan_file_is_blamed_not_the_stack_config(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`preview PLAN.json` reads no stack config: the error names the plan file."""
    workloads = planned / "examples/workloads.yaml"
    workloads.write_text(workloads.read_text().replace("400M", "401M"))
    code, out, err = run(capsys, "plans/dev/plan.json")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("error: plans/dev/plan.json: inputs_sha256: stale plan: ")
    assert "Pulumi.dev.yaml" not in err


def test_preview_without_a_stack(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--stack", "prod")
    assert code == 2 and "Pulumi.prod.yaml" in err and "planner plan" in err
