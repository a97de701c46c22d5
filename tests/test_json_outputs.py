"""Every JSON document the planner prints carries its output's schema version (issue 15), as
plan.json does, and plan.json's own JSON Schema is published beside the workloads file's."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from planner.catalog import default_catalog
from planner.cli.app import main
from planner.cli.schema import plan_schema_text
from planner.diff.compare import diff_plans
from planner.outputs import VERSIONS
from planner.planfile import SCHEMA_VERSION, read_plan
from planner.render.diff_report import render_json
from tests.test_stacks import plan_project

REPO = Path(__file__).resolve().parent.parent


def printed_json(capsys: pytest.CaptureFixture[str], argv: list[str], status: int = 0) -> dict:
    capsys.readouterr()
    assert main(argv) == status
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_the_commands_json_carries_its_schema_version(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_project(project, None)
    example = "examples/workloads.yaml"
    documents = {
        "preview": printed_json(capsys, ["preview", "--stack", "dev", "--json"]),
        "verify": printed_json(capsys, ["verify", "--stack", "dev", "--json"]),
        "crossover": printed_json(capsys, ["crossover", example, "--json"]),
        "throughput": printed_json(
            capsys,
            [
                *("throughput", "llama-3.1-8b", "--gpu", "h100", "--gpus", "1", "--json"),
                *("--input-tokens", "1000", "--output-tokens", "200"),
            ],
        ),
        "tco": printed_json(
            capsys,
            ["tco", "llama-3.1-8b", "--instance", "p5.4xlarge", "--utilization", "0.4", "--json"],
        ),
    }
    for output, document in documents.items():
        assert document["schema_version"] == VERSIONS[output], output
    assert set(VERSIONS) == {*documents, "diff"}
    # The preview stays in the shape `planner verify --preview` reads.
    assert documents["preview"]["steps"]


def test_the_diff_json_carries_its_schema_version(project: Path) -> None:
    plan_project(project, None)
    plan = read_plan(project / "plans" / "dev" / "plan.json")
    document = json.loads(render_json(diff_plans({"dev": plan}, {"dev": plan}, default_catalog())))
    assert document["schema_version"] == VERSIONS["diff"]


def test_crossover_json_with_a_chart_keeps_stdout_json(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_project(project, None)
    capsys.readouterr()
    argv = ["crossover", "examples/workloads.yaml", "support-faq", "--json"]
    assert main([*argv, "--chart", "c.svg"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    [report] = document["workloads"]
    assert report["workload"] == "support-faq" and report["rows"]
    assert "wrote c.svg" in captured.err and (project / "c.svg").exists()


def test_the_plan_schema_is_published_and_current() -> None:
    """schema/plan.schema.json is what `planner schema --plan` prints (`make schema` writes it)."""
    committed = (REPO / "schema" / "plan.schema.json").read_text(encoding="utf-8")
    assert committed == plan_schema_text()
    schema = json.loads(committed)
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_a_written_plan_validates_against_the_plan_schema(project: Path) -> None:
    plan_project(project, None, strategy="optimal")
    schema = json.loads(plan_schema_text())
    document = json.loads((project / "plans" / "dev" / "plan.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    # And the schema is not vacuous: a plan of another version, or a cost as text, fails.
    for broken in (
        {**document, "schema_version": SCHEMA_VERSION - 1},
        {**document, "totals": {**document["totals"], "monthly_cost_usd": "lots"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_crossover_of_a_workload_without_a_self_hosted_option_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asked by name, a workload with nothing to cross is said to be one, in the table and the
    JSON, instead of a blank line or an empty list; no chart is drawn for it."""
    plan_project(project, None)
    capsys.readouterr()
    argv = ["crossover", "examples/workloads.yaml", "code-review"]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("code-review: no self-hosted option")
    assert main([*argv, "--json", "--chart", "c.svg"]) == 0
    captured = capsys.readouterr()
    [entry] = json.loads(captured.out)["workloads"]
    assert entry["self_hosted"] is None and "no self-hosted option" in entry["reason"]
    assert not (project / "c.svg").exists() and "wrote" not in captured.err
