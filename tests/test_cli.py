"""`planner plan`, `explain`, `tco` end to end: files written, golden plan, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from planner import render
from planner.cli import main
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
    assert plan["schema_version"] == 3
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
    assert "pulumi config set --secret google_api_key" in text


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


def test_outside_a_pulumi_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(EXAMPLE, tmp_path / "w.yaml")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "plan", "w.yaml")
    assert code == 2 and "no Pulumi.yaml" in err


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
    write_workloads(workload_yaml())
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

    monkeypatch.setattr(render.os, "replace", failing_replace)
    with pytest.raises(OSError):
        render.write_all({first: "new a", second: "new b"})
    assert first.read_text() == "old a" and second.read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # no temp files left


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
    if gap:  # stopped by the limit: the plan says so, with the bound
        assert f"at most {gap:,.2f} USD above the optimum" in text
    else:
        assert "(the exact optimum)" in text
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
