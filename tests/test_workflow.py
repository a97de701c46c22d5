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

from planner.cli.app import build_parser
from planner.render.diff_report import MARKER
from planner.render.plan_files import plan_json
from tests.test_diff import BASE, SCENARIOS, plan_of

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "plan.yml"


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(job_id: str = "plan") -> dict[str, dict[str, Any]]:
    job = workflow()["jobs"][job_id]
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
    job = broken["jobs"]["plan"]
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
    assert names.index("Gates") > names.index("Comment on the pull request (one comment, updated)")
    assert found["Gates"]["if"] == "steps.diff.outputs.code == '1'"


def test_pulumi_preview_only_with_credentials() -> None:
    found = steps()
    preview = found["pulumi preview with the policy pack"]
    assert preview["uses"].startswith("pulumi/actions@")
    assert preview["if"] == "env.HAS_CLOUD_CREDENTIALS == 'true'"
    assert preview["with"]["policyPacks"] == "policy"
    assert found["Note the skipped preview"]["if"] == "env.HAS_CLOUD_CREDENTIALS != 'true'"


def test_the_flags_it_passes_exist() -> None:
    run = steps()["Diff"]["run"]
    assert "args=(--fail-on-verify)" in run  # on by default
    for flag in ("--fail-on-weaker-perimeter", "--fail-on-increase-pct", "--fail-above-usd"):
        assert flag in run
    args = build_parser().parse_args(
        ["diff", "base-plans", "head-plans", "--fail-on-increase-pct", "5", "--fail-above-usd", "9",
         "--fail-on-verify", "--fail-on-weaker-perimeter"]
    )  # fmt: skip
    assert (args.fail_on_increase_pct, args.fail_above_usd) == (5.0, 9.0)
    assert args.fail_on_verify and args.fail_on_weaker_perimeter


# A stand-in for .venv/bin/planner: FAILING_VERIFY finds a key that does not rotate, to see the
# step handle a failing HEAD.
HEADER = """\
import sys

import planner.diff.compare
from planner.cli import main
from planner.verification.registry import Finding

verify = planner.diff.compare.verify
"""
FAILING_VERIFY = """\


def failing(*args, **kwargs):
    report = verify(*args, **kwargs)
    report.findings.append(Finding("key-rotation", "key pool-key", "rotation is off"))
    return report


planner.diff.compare.verify = failing
"""


def run_diff_step(
    tmp_path: Path, base_text: str, head_text: str, env: dict[str, str], failing: bool = False
) -> tuple[subprocess.CompletedProcess[str], str, str]:
    """The step's own script, with the planner as .venv/bin/planner: (result, code, comment)."""
    for name, text in (("base-plans", base_text), ("head-plans", head_text)):
        (tmp_path / name / "dev").mkdir(parents=True)
        (tmp_path / name / "dev" / "plan.json").write_text(plan_json(plan_of(tmp_path, text)))
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    planner = tmp_path / ".venv" / "bin" / "planner"
    script = HEADER + (FAILING_VERIFY if failing else "") + "sys.exit(main())\n"
    planner.write_text(f"#!{sys.executable}\n{script}")
    planner.chmod(0o755)
    output = tmp_path / "github-output"
    variables = {"FAIL_ON_INCREASE_PCT": "", "FAIL_ABOVE_USD": "", "FAIL_ON_WEAKER_PERIMETER": ""}
    result = subprocess.run(
        ["bash", "-e", "-c", steps()["Diff"]["run"]], cwd=tmp_path,
        env={**os.environ, "GITHUB_OUTPUT": str(output), **variables, **env},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    code = output.read_text().removeprefix("code=").strip()
    return result, code, (tmp_path / "comment.md").read_text()


@pytest.mark.parametrize(("limit", "code"), [("5", "1"), ("", "0")])
def test_the_diff_step_in_bash(tmp_path: Path, limit: str, code: str) -> None:
    """A volume increase, with and without a budget limit."""
    head = SCENARIOS["volume-flip"]()
    _, found, comment = run_diff_step(
        tmp_path,
        head.replace("{input: 100B, output: 20B}", "{input: 2B, output: 400M}"),
        head,
        {"FAIL_ON_INCREASE_PCT": limit},
    )
    assert found == code
    assert comment.startswith(MARKER)
    assert ("Budget gate failed" in comment) == (code == "1")
    # --fail-on-verify is always on: the comment says HEAD passed it.
    assert "**✅ Perimeter gate passed**: HEAD verified." in comment


def test_the_diff_step_fails_when_head_fails_verification(tmp_path: Path) -> None:
    _, code, comment = run_diff_step(tmp_path, BASE, BASE, {}, failing=True)
    assert code == "1"
    assert "**❌ Perimeter gate failed:** HEAD fails verification (1 failure(s))." in comment


@pytest.mark.parametrize(("variable", "code"), [("true", "1"), ("", "0")])
def test_the_diff_step_and_a_weaker_perimeter(tmp_path: Path, variable: str, code: str) -> None:
    _, found, comment = run_diff_step(
        tmp_path, BASE, SCENARIOS["weakened"](), {"FAIL_ON_WEAKER_PERIMETER": variable}
    )
    assert found == code
    assert ("the perimeter of lab-notes got weaker" in comment) == (code == "1")
    assert "⚠️ `lab-notes`: perimeter **technical → contractual**" in comment


def test_the_verify_findings_go_to_code_scanning() -> None:
    """The plan job writes the SARIF and keeps it; a job of its own, the only one that may write
    security events, uploads it and runs none of the pull request's code."""
    found = steps()
    names = list(found)
    kept = found["Keep the findings for code scanning"]
    assert kept["uses"].startswith("actions/upload-artifact@")
    assert kept["with"]["path"] == "verify.sarif"
    assert names.index("Verify the head for code scanning") < names.index(
        "Keep the findings for code scanning"
    )
    assert "security-events" not in workflow()["permissions"]
    scanning = workflow()["jobs"]["code-scanning"]
    assert scanning["needs"] == "plan" and "always()" in scanning["if"]
    assert scanning["permissions"]["security-events"] == "write"
    assert not any("run" in step for step in scanning["steps"])  # no code of the change runs
    upload = steps("code-scanning")["Upload the findings to code scanning"]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["with"]["sarif_file"] == "verify.sarif"
    # A repository without code scanning still gets its plan check.
    assert upload["continue-on-error"] is True
    args = build_parser().parse_args(["verify", "--stack", "dev", "--format", "sarif"])
    assert args.format == "sarif"


@pytest.mark.parametrize("failing", [False, True])
def test_the_verify_step_in_bash(project: Path, failing: bool) -> None:
    """The step's own script in a planned project: SARIF written whether HEAD passes or not (the
    Gates step fails the check), and the step itself fails only on bad input (exit 2)."""
    import json

    from tests.test_stacks import plan_project

    plan_project(project, None)
    (project / ".venv" / "bin").mkdir(parents=True)
    planner = project / ".venv" / "bin" / "planner"
    fault = (
        "import planner.verification.run as v\n"
        "real = v.verify\n"
        "def failing(*a, **k):\n"
        "    report = real(*a, **k)\n"
        "    report.findings.append(v.Finding('key-rotation', 'key pool-key', 'rotation is off'))\n"
        "    return report\n"
        "v.verify = failing\n"
    )
    script = "import sys\nfrom planner.cli.app import main\n" + (fault if failing else "")
    planner.write_text(f"#!{sys.executable}\n{script}sys.exit(main())\n")
    planner.chmod(0o755)
    run = steps()["Verify the head for code scanning"]["run"]
    result = subprocess.run(
        ["bash", "-e", "-c", run], cwd=project, env={**os.environ, "STACK": "dev"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [sarif_run] = json.loads((project / "verify.sarif").read_text())["runs"]
    assert [r["ruleId"] for r in sarif_run["results"]] == (["key-rotation"] if failing else [])
    # A stack with no config is bad input: the step fails with it.
    bad = subprocess.run(
        ["bash", "-e", "-c", run], cwd=project, env={**os.environ, "STACK": "nowhere"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
