"""The public API (issue 15): `load_workloads`, `build_plan`, `read_plan` and `verify` from
`planner` do what the CLI commands do, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import planner
from planner.cli import main
from planner.errors import PlannerError
from planner.render.plan_files import plan_json
from tests.test_stacks import plan_project


def test_the_four_calls_are_the_package_s_public_api() -> None:
    assert planner.__all__ == ["build_plan", "load_workloads", "read_plan", "verify"]
    for name in planner.__all__:
        assert callable(getattr(planner, name)), name
    with pytest.raises(AttributeError):
        _ = planner.plan_everything  # type: ignore[attr-defined]


def test_build_plan_makes_the_plan_planner_plan_writes(project: Path) -> None:
    """The same plan.json, byte for byte, as `planner plan` of the same file and stack."""
    plan_project(project, None, strategy="optimal")
    written = (project / "plans" / "dev" / "plan.json").read_text(encoding="utf-8")
    loaded = planner.load_workloads("examples/workloads.yaml")
    assert plan_json(planner.build_plan(loaded)) == written
    # read_plan gives back what was written.
    assert plan_json(planner.read_plan("plans/dev/plan.json")) == written


def test_build_plan_per_workload_and_a_bad_strategy(project: Path) -> None:
    plan_project(project, None, strategy="per-workload")
    written = (project / "plans" / "dev" / "plan.json").read_text(encoding="utf-8")
    loaded = planner.load_workloads(project / "examples" / "workloads.yaml")
    # An absolute path is recorded relative to the project, as `planner plan` records it.
    assert plan_json(planner.build_plan(loaded, strategy="per-workload")) == written
    with pytest.raises(ValueError, match="optimal or per-workload"):
        planner.build_plan(loaded, strategy="cheapest")
    # What the CLI refuses, the API refuses.
    for bad in ({"stack": "Not A Stack!"}, {"stack": ".."}, {"time_limit": -5.0}):
        with pytest.raises(PlannerError):
            planner.build_plan(loaded, **bad)  # type: ignore[arg-type]


def test_a_bad_workloads_file_raises_the_cli_s_problems(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("organization: acme\nregion: us-east-1\nworkloads: []\n", encoding="utf-8")
    with pytest.raises(PlannerError) as raised:
        planner.load_workloads(path)
    [problem] = raised.value.problems
    assert problem.field == "workloads" and problem.line == 3


def test_verify_agrees_with_planner_verify(project: Path) -> None:
    plan_project(project, None)
    report = planner.verify(project, stack="dev")
    assert report.passed
    assert main(["verify", "--stack", "dev"]) == 0
    # A plan the stack's config does not name: the program cannot run, as the CLI says.
    with pytest.raises(PlannerError):
        planner.verify(project, stack="prod")


def test_importing_a_module_of_the_package_does_not_load_the_api() -> None:
    """The Pulumi program imports planner modules: the package's public names load only when
    used (the optimizer and its solver are not imported for the catalog)."""
    code = (
        "import sys, planner.catalog; "
        "print('planner.api' in sys.modules, 'planner.planning.optimize' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"], out


def test_the_readme_s_example_runs(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Scripting the planner", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    plan_project(project, None, strategy="optimal")
    capsys.readouterr()
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "True []"
