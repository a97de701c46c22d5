"""The pull-request workflow (.github/workflows/plan.yml): valid against the GitHub workflow
schema check-jsonschema vendors, wired to `planner diff`'s marker and budget gate, and its diff
step run for real in bash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from planner.cli import build_parser
from planner.diff import MARKER
from planner.render import plan_json
from tests.test_diff import SCENARIOS, plan_of

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "plan.yml"


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> dict[str, dict[str, Any]]:
    [job] = workflow()["jobs"].values()
    return {step.get("name", step.get("uses")): step for step in job["steps"]}


def test_valid_against_the_github_workflow_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_a_broken_workflow_is_caught(tmp_path: Path) -> None:
    """The schema check is not vacuous: a step with neither `run` nor `uses` fails it."""
    broken = workflow()
    [job] = broken["jobs"].values()
    job["steps"].append({"name": "nothing to do"})
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-workflows", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1


def test_runs_on_the_changes_that_move_the_plan() -> None:
    # PyYAML reads the key `on` as True.
    paths = workflow()[True]["pull_request"]["paths"]
    for needed in ("**/workloads*.yaml", "planner/**", "stacks/**", "templates/**"):
        assert needed in paths


def test_one_comment_found_by_the_marker_and_the_gate_after_it() -> None:
    found = steps()
    script = found["Comment on the pull request (one comment, updated)"]["with"]["script"]
    assert f'const marker = "{MARKER}";' in script
    assert "updateComment" in script and "createComment" in script
    names = list(found)
    assert names.index("Budget gate") > names.index(
        "Comment on the pull request (one comment, updated)"
    )
    assert found["Budget gate"]["if"] == "steps.diff.outputs.code == '1'"


def test_pulumi_preview_only_with_credentials() -> None:
    found = steps()
    preview = found["pulumi preview with the policy pack"]
    assert preview["uses"].startswith("pulumi/actions@")
    assert preview["if"] == "env.HAS_CLOUD_CREDENTIALS == 'true'"
    assert preview["with"]["policyPacks"] == "policy"
    assert found["Note the skipped preview"]["if"] == "env.HAS_CLOUD_CREDENTIALS != 'true'"


def test_the_flags_it_passes_exist() -> None:
    run = steps()["Diff"]["run"]
    assert "--fail-on-increase-pct" in run and "--fail-above-usd" in run
    args = build_parser().parse_args(
        ["diff", "base-plans", "head-plans", "--fail-on-increase-pct", "5", "--fail-above-usd", "9"]
    )
    assert (args.fail_on_increase_pct, args.fail_above_usd) == (5.0, 9.0)


@pytest.mark.parametrize(("limit", "code"), [("5", "1"), ("", "0")])
def test_the_diff_step_in_bash(tmp_path: Path, limit: str, code: str) -> None:
    """The step's own script, with the planner as .venv/bin/planner, on a volume increase."""
    base = plan_of(tmp_path, SCENARIOS["volume-flip"]().replace("100B", "2B"))
    (tmp_path / "base-plans" / "dev").mkdir(parents=True)
    (tmp_path / "base-plans" / "dev" / "plan.json").write_text(plan_json(base))
    head = plan_of(tmp_path, SCENARIOS["volume-flip"]())
    (tmp_path / "head-plans" / "dev").mkdir(parents=True)
    (tmp_path / "head-plans" / "dev" / "plan.json").write_text(plan_json(head))
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "planner").symlink_to(Path(sys.executable).parent / "planner")
    output = tmp_path / "github-output"
    env = {**os.environ, "GITHUB_OUTPUT": str(output), "FAIL_ON_INCREASE_PCT": limit,
           "FAIL_ABOVE_USD": ""}  # fmt: skip
    result = subprocess.run(
        ["bash", "-e", "-c", steps()["Diff"]["run"]], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert output.read_text() == f"code={code}\n"
    comment = (tmp_path / "comment.md").read_text()
    assert comment.startswith(MARKER)
    assert ("Budget gate failed" in comment) == (code == "1")
