"""`planner plan`, `explain`, `tco` end to end: files written, golden plan, bad input."""

from __future__ import annotations

import argparse
import ctypes
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from planner import console
from planner.cli import app, main
from planner.cli import version as cli_version
from planner.errors import PlannerError
from planner.planfile import Warning
from planner.planning import optimize
from planner.render import plan_files
from tests.conftest import EXAMPLE, REPO, workload_yaml

GOLDEN = REPO / "tests" / "golden"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def example(project: Path) -> Path:
    target = project / "examples" / "workloads.yaml"
    target.parent.mkdir()
    shutil.copy(EXAMPLE, target)
    return Path("examples/workloads.yaml")


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_plan_writes_json_markdown_and_stack_config(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "plan", str(example))
    assert code == 0
    plan = json.loads((project / "plans/dev/plan.json").read_text())
    # 4: totals by kind, access shares; 5: consumers; 6: the networks' ranges; 7: connections;
    # 8: a pool's replicas per node, max model length and GPU memory share; 9: each
    # self-hosted option's throughput (the throughput model's answer at its request shape)
    assert plan["schema_version"] == 11
    assert [pool["cidr"] for pool in plan["pools"]] == ["10.100.0.0/16"]
    # The optimal plan (the default) moves every self-hosted and Bedrock workload into one
    # shared DeepSeek pool on p5en.48xlarge: only the egress network remains, in its own place
    # after the PrivateLink network's.
    assert plan["strategy"] == "optimal"
    assert plan["networks"] == {"egress": "10.251.0.0/16"}
    assert plan["organization"] == "acme" and plan["stack"] == "dev"
    assert plan["workloads_file"] == "examples/workloads.yaml"
    assert len(plan["inputs_sha256"]) == 64
    for workload in plan["workloads"]:
        assert set(workload["answers"]) == {"task_quality", "data_sensitivity", "volume_economics"}
        assert workload["placement"] in {"self_hosted", "cloud_api"}
    # Every dollar is allocated: the total is the sum of the workloads' costs to the cent.
    cents = sum(round(w["monthly_cost_usd"] * 100) for w in plan["workloads"])
    assert round(plan["totals"]["monthly_cost_usd"] * 100) == cents
    # Different workloads get different answers.
    assert {w["placement"] for w in plan["workloads"]} == {"self_hosted", "cloud_api"}
    # Each figure an option cites is in the plan, with a source and a date.
    for workload in plan["workloads"]:
        for option in workload["answers"]["volume_economics"]["options"]:
            for key in option["figures"]:
                assert plan["figures"][key]["source"]
    config = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    assert config == {
        "config": {"aws:region": "us-east-1", "ai-infra-planner:plan": "plans/dev/plan.json"}
    }
    assert "support-faq" in out and "total" in out and "wrote plans/dev/plan.json" in out


def test_plan_markdown_matches_golden(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reviewer's view of the example. Regenerate with UPDATE_GOLDEN=1 after a deliberate
    change and review the diff."""
    assert run(capsys, "plan", str(example))[0] == 0
    text = (project / "plans/dev/plan.md").read_text()
    golden = GOLDEN / "example-plan.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_plan_markdown_tells_the_reviewer_everything(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "plan", str(example))[0] == 0
    text = (project / "plans/dev/plan.md").read_text()
    assert "| workload | placement | model | perimeter | monthly cost |" in text
    for name in ("support-faq", "contract-review", "ticket-triage", "code-review"):
        assert f"### {name}" in text
    assert "1. **Task quality:" in text and "2. **Data sensitivity:" in text
    assert "3. **Volume economics:" in text
    assert "instances.vantage.sh" in text  # sources of the figures
    assert "quality_ceiling" in text
    assert "pulumi config set --secret openai_api_key" in text


def test_outputs_are_byte_identical_across_runs(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "plan", str(example))[0] == 0
    first = snapshot(project / "plans")
    shutil.rmtree(project / "plans")
    assert run(capsys, "plan", str(example))[0] == 0
    assert snapshot(project / "plans") == first


def test_stack_config_keeps_every_other_key(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = {
        "secretsprovider": "passphrase",
        "encryptedkey": "",
        "encryptionsalt": "v1:abc123:v1:def:ghi",
        "config": {
            "aws:region": "eu-west-1",
            "ai-infra-planner:openai_api_key": {"secure": "v1:AAAABBBB:ccccdddd"},
            "ai-infra-planner:alert_email": "ops@example.com",
        },
    }
    (project / "Pulumi.prod.yaml").write_text(yaml.safe_dump(existing, sort_keys=False))
    assert run(capsys, "plan", str(example), "--stack", "prod")[0] == 0
    after = yaml.safe_load((project / "Pulumi.prod.yaml").read_text())
    assert after["encryptionsalt"] == existing["encryptionsalt"]
    assert after["secretsprovider"] == "passphrase"
    assert after["config"]["ai-infra-planner:openai_api_key"] == {"secure": "v1:AAAABBBB:ccccdddd"}
    assert after["config"]["ai-infra-planner:alert_email"] == "ops@example.com"
    assert after["config"]["aws:region"] == "us-east-1"
    assert after["config"]["ai-infra-planner:plan"] == "plans/prod/plan.json"


def test_stack_config_found_upward_from_cwd(
    example: Path,
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sub = project / "team"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert run(capsys, "plan", "../examples/workloads.yaml", "--out", "out")[0] == 0
    config = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    assert config["config"]["ai-infra-planner:plan"] == "team/out/plan.json"
    assert json.loads((sub / "out/plan.json").read_text())["workloads_file"] == (
        "examples/workloads.yaml"
    )


BAD_INPUTS = {
    "malformed": "organization: acme\nworkloads: [\n",
    "unknown-task": workload_yaml(task="poetry"),
    "unknown-model": workload_yaml(model="gpt-9"),
    "negative": workload_yaml(monthly_tokens="{input: -1, output: 5}"),
    "unparseable": workload_yaml(monthly_tokens="{input: lots, output: 5}"),
    "bad-cidr": workload_yaml(consumers='["10.0.0.0/33"]'),
    "duplicate": workload_yaml(name="dup") + "\n".join(workload_yaml(name="dup").splitlines()[3:]),
    "pinned-across-perimeter": workload_yaml(data="regulated", model="gpt-4.1"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_and_changes_nothing(
    case: str,
    example: Path,
    project: Path,
    write_workloads: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "plan", str(example), "--out", "plans/dev")[0] == 0
    before = snapshot(project)
    path = write_workloads(BAD_INPUTS[case], name="bad.yaml")
    before["bad.yaml"] = path.read_bytes()
    code, out, err = run(capsys, "plan", "bad.yaml", "--out", "plans/dev")
    assert code == 2
    assert err.startswith("error: bad.yaml")
    assert "Traceback" not in err and out == ""
    assert snapshot(project) == before


def test_missing_file_and_bad_stack_name(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "nowhere.yaml")
    assert code == 2 and "nowhere.yaml: no such file" in err
    code, _, err = run(capsys, "plan", "nowhere.yaml", "--stack", "no spaces")
    assert code == 2 and "not a stack name" in err
    assert not (project / "plans").exists()


@pytest.mark.parametrize("command", ["plan", "verify", "preview"])
@pytest.mark.parametrize("stack", [".", ".."])
def test_dot_stacks_are_refused_before_anything_is_written(
    command: str, stack: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--stack ..` matched the stack name's characters, and `planner plan` wrote plan.json,
    plan.md and `Pulumi....yaml` into the project's root; the public API refused it already."""
    (project / "examples").mkdir()
    shutil.copy(EXAMPLE, project / "examples" / "workloads.yaml")
    before = sorted(p.name for p in project.rglob("*"))
    args = ["examples/workloads.yaml"] if command == "plan" else []
    code, out, err = run(capsys, command, *args, "--stack", stack)
    assert code == 2 and f"{stack!r} is not a stack name" in err and out == ""
    assert sorted(p.name for p in project.rglob("*")) == before


def test_outside_a_pulumi_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(EXAMPLE, tmp_path / "w.yaml")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "plan", "w.yaml")
    assert code == 2 and "no Pulumi.yaml" in err


@pytest.mark.parametrize(
    "args",
    [("verify",), ("verify", "plans/dev/plan.json"), ("preview",), ("preview", "--json")],
)
def test_preview_and_verify_without_the_program_say_so(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    # A Pulumi.yaml with no __main__.py beside it (another project, or the file copied alone):
    # one message naming the missing program, exit 2, no traceback, nothing written.
    assert run(capsys, "plan", str(example))[0] == 0
    (project / "__main__.py").unlink()
    before = snapshot(project)
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"error: {project / '__main__.py'}: no such file: the Pulumi program (this "
        "repository's __main__.py) must be beside Pulumi.yaml; run the planner in the "
        "ai-infra-planner project"
    ]
    assert snapshot(project) == before


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("verify",), "no Pulumi.yaml here or above"),
        (("verify", "plan.json"), "no Pulumi.yaml here or above"),
        (("preview",), "no Pulumi.yaml here or above"),
        (("verify", "--preview", "nowhere/preview.json"), "nowhere/preview.json: no such"),
        (("diff", "nowhere", "."), "nowhere: no such plan file or directory"),
        (("diff", ".", "."), ".: no plan.json here or in its stack directories"),
    ],
)
def test_preview_verify_and_diff_outside_a_project(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    named: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *args)
    assert code == 2 and out == "" and "Traceback" not in err
    [line] = err.splitlines()
    assert named in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [("verify",), ("preview",), ("plan", "w.yaml")])
def test_a_removed_working_directory_is_one_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the shell's directory, removed under it
    code, out, err = run(capsys, *args)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "error: .: the working directory no longer exists: cd into the project and run again"
    ]
    assert list(tmp_path.iterdir()) == []


def test_strict_fails_on_warnings_and_writes_nothing(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "plan", str(example), "--strict")
    assert code == 1
    assert "quality_ceiling" in err and "nothing was written" in err
    assert not (project / "plans").exists() and not (project / "Pulumi.dev.yaml").exists()


def test_strict_passes_without_warnings(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A frontier task on a Gemini API, nothing to warn about (unpinned, Claude through Bedrock's
    # global profile is cheaper, and warns that it processes data in other regions).
    write_workloads(workload_yaml(task="code_generation", model="gemini-3.1-pro"))
    assert run(capsys, "plan", "workloads.yaml", "--strict")[0] == 0
    assert (project / "plans/dev/plan.json").exists()


def test_a_failed_write_leaves_the_old_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("old a")
    second.write_text("old b")
    real_replace = os.replace
    calls = []

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        calls.append(dst)
        if len(calls) == 1:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(plan_files.os, "replace", failing_replace)
    with pytest.raises(
        PlannerError, match=r"a\.txt: cannot write it: disk full; nothing was written"
    ):
        plan_files.write_all({first: "new a", second: "new b"})
    assert first.read_text() == "old a" and second.read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # no temp files left


def test_a_directory_in_the_way_is_found_before_anything_is_replaced(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan.md is a directory: an error before plan.json is touched, not a half-written plan."""
    (project / "od" / "plan.md").mkdir(parents=True)
    before = snapshot(project)
    code, out, err = run(capsys, "plan", str(example), "--out", "od", "--no-stack-config")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.splitlines()[-1] == (
        "error: od/plan.md: cannot write it: od/plan.md is a directory, in the way of the file; "
        "nothing was written"
    )
    assert snapshot(project) == before and not (project / "od/plan.json").exists()


def test_explain_prints_the_three_answers(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "explain", str(example), "contract-review")
    assert code == 0
    assert "1. Task quality: frontier" in out
    assert "2. Data sensitivity: technical" in out
    assert "3. Volume economics: self_hosted/deepseek-v3.2/" in out
    assert "WARNING (quality_ceiling)" in out
    # The lower-precision alternative, side by side and marked as a comparison.
    assert "~ self_hosted/deepseek-v3.2/p5.48xlarge/int4" in out and "comparison only" in out
    code, _, err = run(capsys, "explain", str(example), "nobody")
    assert code == 2 and "no workload named 'nobody'" in err
    code, out, err = run(capsys, "explain", str(example), "suport-faq")
    assert code == 2 and out == ""
    assert f"{example}: workloads[].name: no workload named 'suport-faq'; did you mean " in err
    assert "'support-faq'?" in err


@pytest.mark.parametrize(
    "args",
    [
        ["tco", "deepseek-v3.2", "--instance", "p5.48xlarge", "--utilization", "0.5",
         "--tokens-per-second", "nan"],
        ["tco", "deepseek-v3.2", "--instance", "p5.48xlarge", "--utilization", "0.5",
         "--tokens-per-second", "inf"],
        ["tco", "deepseek-v3.2", "--instance", "p5.48xlarge", "--utilization", "nan"],
        ["diff", "a", "b", "--fail-above-usd", "nan"],
    ],
)  # fmt: skip
def test_a_number_option_is_a_finite_number(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(args)
    out, err = capsys.readouterr()
    assert raised.value.code == 2 and out == "" and "Traceback" not in err
    flag, value = args[-2:]
    assert f"argument {flag}: '{value}' is not a finite number" in err


def test_python_dash_m_planner(example: Path, project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "planner", "tco", "deepseek-v3.2", "--instance", "p5.48xlarge",
         "--utilization", "1", "--tokens-per-second", "2673.55", "--json"],
        capture_output=True, text=True, check=False, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["usd_per_million_tokens"] == 5.72


def test_time_limit_plans_the_best_found_and_says_how_far_from_the_optimum(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.plan_bench import organization

    (project / "org.yaml").write_text(organization(300, seed=3))
    code, _, err = run(capsys, "plan", "org.yaml", "--strategy", "optimal", "--time-limit", "0.5")
    assert code == 0, err
    plan = json.loads((project / "plans/dev/plan.json").read_text())
    gap = plan["totals"]["optimality_gap_usd"]
    assert gap >= 0
    text = (project / "plans/dev/plan.md").read_text()
    if gap:  # the plan says how far from the optimum it may be, with the bound
        assert f"at most {gap:,.2f} USD (" in text and "above the optimum" in text
    else:
        assert "the exact optimum" in text
    if plan["totals"]["optimizer_stopped_by_time_limit"]:
        assert "the time limit of 0.5 s stopped the solve (a rerun may differ)" in text
    # The plan is whole either way: every dollar allocated, every workload placed.
    cents = sum(round(w["monthly_cost_usd"] * 100) for w in plan["workloads"])
    assert cents == round(plan["totals"]["monthly_cost_usd"] * 100)
    assert plan["totals"]["monthly_cost_usd"] <= plan["totals"]["per_workload_usd"] + 0.01


def test_time_limit_must_be_positive(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", str(example), "--strategy", "optimal", "--time-limit", "0")
    assert code == 2
    assert "--time-limit" in err and "positive" in err


def test_stack_config_keeps_the_users_comments(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pulumi.<stack>.yaml is the user's file too: comments and layout survive a plan, and a
    plan that changes nothing there leaves it byte for byte."""
    text = (
        "# production: owned by the platform team\n"
        "secretsprovider: passphrase\n"
        "config:\n"
        "  aws:region: eu-west-1  # moved by the planner\n"
        "  # where budget alerts go\n"
        "  ai-infra-planner:budget_email: ops@example.com\n"
        "  ai-infra-planner:openai_api_key:\n"
        "    secure: v1:AAAABBBB:ccccdddd\n"
    )
    config = project / "Pulumi.prod.yaml"
    config.write_text(text)
    assert run(capsys, "plan", str(example), "--stack", "prod")[0] == 0
    after = config.read_text()
    assert after.startswith("# production: owned by the platform team\n")
    assert "  # where budget alerts go\n  ai-infra-planner:budget_email: ops@example.com\n" in after
    assert (
        "aws:region: us-east-1" in after and "ai-infra-planner:plan: plans/prod/plan.json" in after
    )
    assert yaml.safe_load(after)["config"]["ai-infra-planner:openai_api_key"] == {
        "secure": "v1:AAAABBBB:ccccdddd"
    }
    assert run(capsys, "plan", str(example), "--stack", "prod")[0] == 0
    assert config.read_text() == after


# --- Command-line behaviour: version, help, unwritable outputs, quiet solver, progress, grouped
# warnings, and a stack config that is not repointed behind the user's back.


def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"planner {importlib.metadata.version('ai-infra-planner')}\n"

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    # Run from a checkout that is not installed: the version its pyproject.toml declares.
    monkeypatch.setattr(cli_version.importlib.metadata, "version", not_installed)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert cli_version.version() == f"{declared} (source checkout, not installed)"


def test_every_argument_has_help() -> None:
    parsers = [("planner", app.build_parser())]
    seen = 0
    while parsers:
        name, parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            seen += 1
            assert action.help, f"{name} {action.dest}: no help text"
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{name} {choice.dest}: no help text"
                parsers += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
    assert seen > 30  # every subcommand was walked


def _unwritable_cases(project: Path) -> dict[str, tuple[str, str]]:
    """flag value -> (what the message must say, a path that must not appear)"""
    (project / "a-file").write_text("not a directory\n")
    root = f"/nonexistent-planner-{os.getpid()}"
    cases = {
        "a-file": ("a-file is a file, not a directory", ""),
        "a-file/sub": ("a-file is a file, not a directory", ""),
        f"{root}/x": (f"{root} does not exist", root),
    }
    if os.geteuid() != 0:  # root writes in a read-only directory anyway
        (project / "read-only").mkdir()
        (project / "read-only").chmod(0o555)
        cases["read-only/out"] = ("read-only is not writable", "")
    return cases


def test_an_unwritable_out_is_a_clear_error(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _unwritable_cases(project)
    before = snapshot(project)
    for out, (says, absent) in cases.items():
        code, stdout, err = run(capsys, "plan", str(example), "--out", out)
        assert code == 2, out
        assert err.startswith(f"error: --out: cannot write in {out}: ") and says in err, err
        assert "Traceback" not in err and stdout == ""
        assert snapshot(project) == before  # nothing written, not even Pulumi.dev.yaml
        if absent:
            assert not Path(absent).exists()  # no directory made at the filesystem root


def test_a_directory_without_write_permission(
    example: Path,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What a read-only directory does for a user who is not root (root may write anywhere, so
    the permission check is stood in for)."""
    (project / "locked").mkdir()
    real_access = os.access
    monkeypatch.setattr(
        plan_files.os,
        "access",
        lambda path, mode: Path(path).name != "locked" and real_access(path, mode),
    )
    before = snapshot(project)
    for out, says in (
        ("locked", "locked is not writable (permission denied)"),
        (
            "locked/new/out",
            "locked/new does not exist and locked is not writable (permission denied)",
        ),
    ):
        code, stdout, err = run(capsys, "plan", str(example), "--out", out)
        assert code == 2 and stdout == ""
        assert err == f"error: --out: cannot write in {out}: {says}\n"
        assert snapshot(project) == before and not (project / "locked/new").exists()


def test_an_unwritable_chart_is_a_clear_error(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _unwritable_cases(project)
    before = snapshot(project)
    for directory, (says, absent) in cases.items():
        code, stdout, err = run(
            capsys, "crossover", str(example), "support-faq", "--chart", f"{directory}/c.svg"
        )
        assert code == 2, directory
        assert err.startswith(f"error: --chart: cannot write in {directory}: ") and says in err
        assert "Traceback" not in err and stdout == ""
        assert snapshot(project) == before
        if absent:
            assert not Path(absent).exists()
    (project / "charts").mkdir()
    code, _, err = run(capsys, "crossover", str(example), "--chart", "charts")
    assert code == 2 and "--chart" in err and "give a .svg or .png file name" in err
    (project / "charts.svg").mkdir()
    code, _, err = run(capsys, "crossover", str(example), "--chart", "charts.svg")
    assert code == 2 and "--chart: charts.svg is a directory" in err


def test_charts_are_written_all_together(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "crossover", str(example), "--chart", "new/dir/c.svg")
    assert code == 0
    written = sorted(p.name for p in (project / "new/dir").iterdir())
    assert len(written) > 1 and all(name.startswith("c-") for name in written)
    assert all(f"wrote new/dir/{name}" in out for name in written)


def test_a_failed_write_removes_what_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename that fails (a full or vanished disk) leaves no temporary file and no directory
    made for the new files, and is an error naming the file."""
    real_replace = os.replace
    target = tmp_path / "new" / "deeper" / "plan.json"

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == target:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(plan_files.os, "replace", failing_replace)
    with pytest.raises(PlannerError) as error:
        plan_files.write_all({target: "{}", tmp_path / "new" / "other" / "plan.md": "text"})
    assert str(error.value) == (
        f"{target}: cannot write it: No space left on device; nothing was written"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_solver_prints_nothing_on_stdout(
    example: Path,
    project: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HiGHS writes debugging lines from C to file descriptor 1 (scipy 1.17.1, when a time limit
    stops a large solve): here a stand-in solver writes there, from C and from the OS, and none
    of it reaches stdout, which is the summary alone."""
    real_milp = optimize.milp
    libc = ctypes.CDLL(None)

    def noisy_milp(*args: Any, **kwargs: Any) -> Any:
        libc.printf(b"HighsMipSolverData::transformNewIntegerFeasibleSolution (buffered)\n")
        os.write(1, b"solver noise on fd 1\n")
        return real_milp(*args, **kwargs)

    monkeypatch.setattr(optimize, "milp", noisy_milp)
    print("before", flush=True)  # what was printed before the solve stays, in order
    capfd.readouterr()
    assert main(["plan", str(example), "--strategy", "optimal"]) == 0
    libc.fflush(None)
    out, err = capfd.readouterr()
    assert out.startswith("Plan for acme (stack dev, us-east-1)\n"), out[:200]
    assert "noise" not in out + err and "Highs" not in out + err
    print("after", flush=True)  # fd 1 is back where it was
    assert capfd.readouterr().out == "after\n"


def test_a_long_solve_says_so_on_stderr_and_only_the_plan_on_stdout(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from bench.plan_bench import organization

    (project / "org.yaml").write_text(organization(300, seed=3))
    code = main(["plan", "org.yaml", "--strategy", "optimal", "--time-limit", "0.5"])
    out, err = capfd.readouterr()
    assert code == 0
    assert out.startswith("Plan for bench (stack dev, us-east-1)\n")
    first, *_ = err.splitlines()
    assert first.startswith("optimizer: 300 workloads, ") and first.endswith(", or 0.5 s...")
    assert re.search(r"^optimizer: (done|stopped by the time limit) after ", err, re.M)
    # Warnings of many workloads are grouped: one line per distinct warning.
    lines = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(lines) == len(set(lines)) < 30
    assert any(re.match(r"warning: quality_ceiling \(\d+ workloads: ", line) for line in lines)
    # H200 has its own throughput now: no H100 figure stands in for it.
    assert not any("throughput_stand_in" in line for line in lines)


def test_a_short_run_is_quiet(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", str(example), "--strategy", "optimal")
    assert code == 0
    assert all(line.startswith("warning: ") for line in err.splitlines())


def test_a_long_preview_says_so_on_stderr(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The threshold is lowered to the example's five workloads: the preview of a plan of
    a hundred takes seconds, which a unit test should not spend."""
    assert run(capsys, "plan", str(example))[0] == 0
    code, out, err = run(capsys, "preview")
    assert code == 0 and err == ""
    monkeypatch.setattr(console, "LONG_RUN_WORKLOADS", 5)
    code, long_out, err = run(capsys, "preview")
    assert code == 0 and long_out == out  # stdout is the same preview
    created = re.search(r"Stack \S+: (\d+) to create", out)
    assert created is not None
    assert err.splitlines() == [
        "running the program under Pulumi's mocks for 5 workloads...",
        f"pricing {int(created.group(1)) - 1:,} resources...",  # all but the stack itself
    ]


def test_equal_warnings_of_several_workloads_are_grouped(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["legal-a", "legal-b", "legal-c", "legal-d", "legal-e"]
    spec = "organization: acme\nregion: us-east-1\nworkloads:\n" + "".join(
        f"  - {{name: {name}, task: legal_analysis, data: regulated,"
        f" monthly_tokens: {{input: 100M, output: 20M}}, consumers: ['10.0.0.0/16']}}\n"
        for name in names
    )
    write_workloads(spec)
    code, _, err = run(capsys, "plan", "workloads.yaml")
    assert code == 0
    [line] = [line for line in err.splitlines() if "quality_ceiling" in line]
    assert line.startswith(
        "warning: quality_ceiling (5 workloads: legal-a, legal-b, legal-c and 2 more): "
        "the task needs a frontier model"
    )
    text = (project / "plans/dev/plan.md").read_text()
    section = text.split("\n## Warnings\n", 1)[1].split("\n## ", 1)[0]
    [item] = [line for line in section.splitlines() if "quality_ceiling" in line]
    assert item.startswith(
        "- **legal-a**, **legal-b**, **legal-c**, **legal-d** and **legal-e** "
        "(quality_ceiling, 5 workloads): the task needs a frontier model"
    )
    # Each workload's own section still carries its warning.
    assert text.count("> **Warning (quality_ceiling):**") == 5


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.sampled_from(["x", "y"]),
            st.sampled_from(["m1", "m2"]),
        ),
        max_size=12,
    )
)
def test_grouping_keeps_every_warning_once(items: list[tuple[str, str, str]]) -> None:
    pairs = [(name, Warning(code=code, message=message)) for name, code, message in items]
    groups = console.group_warnings(pairs)
    regrouped = sorted(
        (name, group.code, group.message) for group in groups for name in group.names
    )
    assert regrouped == sorted(items)
    assert len({(g.code, g.message) for g in groups}) == len(groups)
    lines = console.warning_lines(pairs)
    assert len(lines) == len(groups)
    for group, line in zip(groups, lines, strict=True):
        assert group.code in line and line.endswith(group.message)


def _config(project: Path, stack: str = "dev") -> Path:
    return project / f"Pulumi.{stack}.yaml"


def test_another_out_does_not_silently_repoint_the_stack(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "plan", str(example))[0] == 0
    config = _config(project)
    text = "# the team's stack\n" + config.read_text() + "  ai-infra-planner:budget_email: a@b.c\n"
    config.write_text(text)
    before = snapshot(project)
    code, out, err = run(capsys, "plan", str(example), "--out", "whatif")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "error: Pulumi.dev.yaml: config.ai-infra-planner:plan (line 4): is plans/dev/plan.json;"
        " this plan would change it to whatif/plan.json",
        "error: Pulumi.dev.yaml: the stack already points at a plan: pass --repoint to point it "
        "at this one, or --no-stack-config to write only plan.json and plan.md (a what-if plan);"
        " nothing was written",
    ]
    assert snapshot(project) == before

    # A what-if plan: plan.json and plan.md, the stack config byte for byte as it was.
    code, out, err = run(capsys, "plan", str(example), "--out", "whatif", "--no-stack-config")
    assert code == 0
    assert "wrote whatif/plan.json" in out and "Pulumi.dev.yaml" not in out + err
    assert config.read_text() == text
    assert (project / "whatif/plan.md").exists()

    # Repointed on purpose: the file says so, and so does stderr; the rest is kept.
    code, out, err = run(capsys, "plan", str(example), "--out", "whatif", "--repoint")
    assert code == 0 and "wrote Pulumi.dev.yaml" in out
    assert "Pulumi.dev.yaml: ai-infra-planner:plan plans/dev/plan.json -> whatif/plan.json\n" in err
    assert config.read_text() == text.replace("plans/dev/plan.json", "whatif/plan.json")


def test_a_region_change_is_refused_then_said(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "config:\n"
        "  aws:region: eu-west-1\n"
        "  ai-infra-planner:plan: ./plans/dev/plan.json  # same path, other spelling\n"
    )
    config = _config(project)
    config.write_text(text)
    code, out, err = run(capsys, "plan", str(example))
    assert code == 2 and out == ""
    assert err.startswith(
        "error: Pulumi.dev.yaml: config.aws:region (line 2): is eu-west-1; this plan would "
        "change it to us-east-1\n"
    )
    assert "ai-infra-planner:plan" not in err.splitlines()[0] and "--repoint" in err
    assert config.read_text() == text and not (project / "plans").exists()
    code, _, err = run(capsys, "plan", str(example), "--repoint")
    assert code == 0
    assert "Pulumi.dev.yaml: aws:region eu-west-1 -> us-east-1\n" in err
    assert config.read_text() == text.replace("eu-west-1", "us-east-1")
    # Now in place: a replan changes nothing and says nothing about the stack config.
    code, _, err = run(capsys, "plan", str(example))
    assert code == 0 and "Pulumi.dev.yaml" not in err
    assert config.read_text() == text.replace("eu-west-1", "us-east-1")


def test_the_first_plan_of_a_stack_sets_its_keys_and_says_what_moved(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stack file without the plan key was never deployed by this program (it reads that
    key first), so the first plan sets both keys without --repoint, and says what it changed."""
    text = "secretsprovider: passphrase\nconfig:\n  aws:region: eu-west-1\n"
    config = _config(project, "prod")
    config.write_text(text)
    code, _, err = run(capsys, "plan", str(example), "--stack", "prod")
    assert code == 0
    assert "Pulumi.prod.yaml: ai-infra-planner:plan set to plans/prod/plan.json\n" in err
    assert "Pulumi.prod.yaml: aws:region eu-west-1 -> us-east-1\n" in err
    assert config.read_text() == (
        "secretsprovider: passphrase\nconfig:\n  aws:region: us-east-1\n"
        "  ai-infra-planner:plan: plans/prod/plan.json\n"
    )


def _bad_directory(path: Path) -> None:
    path.mkdir()


# A stack file `plan` cannot read or parse, and the one message each gives (with its line).
BAD_STACK_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "a directory": (_bad_directory, ": a directory, not a stack config file"),
    "not UTF-8": (lambda p: p.write_bytes(b"config:\n  aws:region: \xff\xfe\n"), ": not UTF-8"),
    "malformed YAML": (
        lambda p: p.write_text("config:\n  aws:region: us-east-1\n  bad: [open\n"),
        " (line 4): malformed YAML",
    ),
    "a repeated key": (
        lambda p: p.write_text("config:\n  aws:region: a\n  aws:region: b\n"),
        " (line 3): malformed YAML",
    ),
    "not a mapping": (lambda p: p.write_text("- config\n"), ": expected a mapping"),
    "config not a mapping": (lambda p: p.write_text("config: 5\n"), ": config: expected a mapping"),
}


@pytest.mark.parametrize("bad", sorted(BAD_STACK_FILES))
def test_a_bad_stack_file_is_one_clear_error(
    bad: str, example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan, verify and preview each say in one line what is wrong with Pulumi.<stack>.yaml
    (its line where YAML gives one), exit 2, and plan writes nothing: no traceback, no
    parser's five lines of context."""
    make, says = BAD_STACK_FILES[bad]
    make(_config(project, "bad"))
    before = snapshot(project)
    for command in (["plan", str(example)], ["verify"], ["preview"]):
        code, out, err = run(capsys, *command, "--stack", "bad")
        assert code == 2 and out == "", (command, out, err)
        assert "Traceback" not in err
        [line] = err.splitlines()
        assert line.startswith("error: ") and f"Pulumi.bad.yaml{says}" in line, (command, line)
    assert snapshot(project) == before and not (project / "plans").exists()


def test_no_stack_config_creates_none_and_excludes_repoint(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "plan", str(example), "--no-stack-config")
    assert code == 0 and "Pulumi.dev.yaml" not in out
    assert not _config(project).exists() and (project / "plans/dev/plan.json").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["plan", str(example), "--no-stack-config", "--repoint"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_workflow_repoints_the_head_and_not_the_base() -> None:
    """In CI the stack config follows the head's plan (which `pulumi preview` checks); the base,
    planned with the head's planner for comparison, is a what-if plan."""
    workflow = yaml.safe_load((REPO / ".github/workflows/plan.yml").read_text())
    job = workflow["jobs"]["plan"]
    runs = {step.get("name"): step.get("run", "") for step in job["steps"]}
    commands = {
        step: [
            line.strip()
            for line in runs[step].replace("\\\n", " ").splitlines()
            if line.strip().startswith(".venv/bin/planner plan")
        ]
        for step in ("Plan the head", "Plan the base")
    }
    [head] = commands["Plan the head"]
    [base] = commands["Plan the base"]
    assert "--repoint" in head.split() and "--no-stack-config" in base.split()
    for command in (head, base):
        app.build_parser().parse_args(shlex.split(command)[1:])
