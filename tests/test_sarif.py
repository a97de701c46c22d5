"""`planner verify --format sarif` (issue 15): SARIF 2.1.0 that GitHub code scanning reads.

Every document is validated against the SARIF 2.1.0 JSON Schema of the OASIS technical
committee, tests/data/sarif-schema-2.1.0.json (github.com/oasis-tcs/sarif-spec
sarif-2.1/schema/sarif-schema-2.1.0.json, last changed in commit a560296c, 2024-05-02). GitHub's
own requirements ("SARIF support for code scanning", docs.github.com/en/code-security/reference/
code-scanning/sarif-files/sarif-support-for-code-scanning): a result needs `ruleId`,
`message.text` and a physical location (a repository-relative `uri` and `region.startLine`);
`partialFingerprints` keep one alert per result across runs.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema
import pytest
from hypothesis import given, settings

from planner.cli import main
from planner.render.sarif import NOTHING_VERIFIED, artifact_uri, render_sarif
from planner.verification.registry import RULES, Finding, Report, Subject, WorkloadVerdict
from tests.test_stacks import plan_project
from tests.test_verify import reports

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")
)
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)


def valid(document: dict[str, Any]) -> dict[str, Any]:
    VALIDATOR.validate(document)
    [run] = document["runs"]
    listed = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert listed == [*RULES, NOTHING_VERIFIED]
    notes = " ".join(
        n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]
    )
    for result in run["results"]:  # what GitHub needs of each result
        assert result["ruleId"] == listed[result["ruleIndex"]] and result["message"]["text"]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        # Relative to the repository's root, or a file URI the run says it cannot place.
        assert not uri.startswith("/") and (not uri.startswith("file:") or "cannot place" in notes)
        assert physical["region"]["startLine"] >= 1
        assert result["partialFingerprints"]
    return document


def test_a_passing_stack_is_every_rule_and_no_result(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_project(project, None)
    capsys.readouterr()
    assert main(["verify", "--stack", "dev", "--format", "sarif"]) == 0
    document = valid(json.loads(capsys.readouterr().out))
    [run] = document["runs"]
    assert run["results"] == []
    assert run["invocations"][0]["executionSuccessful"] is True


def test_a_finding_lands_on_its_workload_s_line(project: Path) -> None:
    """A network's finding goes on the line naming its first workload; a workload's own on its
    line; one naming no workload on line 1."""
    lines = {"support-faq": 12, "patient-notes": 40}
    pool = Finding("perimeter", "patient-notes-pool-vpc", "reaches the internet", ("a", "b"))
    own = Finding("way-in", "support-faq", "no way in for 10.1.0.0/16")
    loose = Finding("secrets", "plan file plan.json", "holds a key, in plain text")
    unknown = Finding.unknown("iam", "policy x", "the policy is known only after `pulumi up`")
    report = Report(
        [Subject("pool", "patient-notes-pool", "technical", ["patient-notes"], [pool])],
        [loose, unknown],
        [WorkloadVerdict("support-faq", "contractual", None, [own])],
    )
    document = valid(json.loads(render_sarif(report, "examples/workloads.yaml", lines)))
    [run] = document["runs"]
    placed = {
        r["ruleId"]: r["locations"][0]["physicalLocation"]["region"]["startLine"]
        for r in run["results"]
    }
    assert placed == {"perimeter": 40, "way-in": 12, "secrets": 1, "iam": 1}
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run[
        "results"]} == {"examples/workloads.yaml"}  # fmt: skip
    perimeter = next(r for r in run["results"] if r["ruleId"] == "perimeter")
    assert "(witness: a -> b)" in perimeter["message"]["text"]
    # An unknown is a result of its rule to review (SARIF 2.1.0 3.27.9: the tool could not
    # decide pass or fail), level none as 3.27.10 requires; never a result that passes, nor a
    # failure; failures are kind fail. Not a notification of the run any more.
    kinds = {r["ruleId"]: (r["kind"], r["level"]) for r in run["results"]}
    assert kinds == {
        "perimeter": ("fail", "error"), "way-in": ("fail", "error"), "secrets": ("fail", "error"),
        "iam": ("review", "none"),
    }  # fmt: skip
    iam = next(r for r in run["results"] if r["ruleId"] == "iam")
    assert iam["message"]["text"] == (
        "unknown: policy x: the policy is known only after `pulumi up`"
    )
    assert run["invocations"][0]["toolExecutionNotifications"] == []
    # The same finding keeps its fingerprint; another gets another.
    again = json.loads(render_sarif(report, "examples/workloads.yaml", lines))["runs"][0]
    assert [r["partialFingerprints"] for r in again["results"]] == [
        r["partialFingerprints"] for r in run["results"]
    ]
    assert len({json.dumps(r["partialFingerprints"]) for r in run["results"]}) == 4


@settings(max_examples=60, deadline=None)
@given(reports())
def test_exit_status_and_results_agree_for_any_report(report: Report) -> None:
    with (
        mock.patch("planner.verification.run.verify_preview_file", return_value=report),
        mock.patch("planner.cli.verify._preview_resources", return_value=1),
        contextlib.redirect_stdout(io.StringIO()) as out,
    ):
        code = main(["verify", "--preview", "preview.json", "--format", "sarif"])
    [run] = valid(json.loads(out.getvalue()))["runs"]
    failed = [r for r in run["results"] if r["kind"] == "fail"]
    assert len(failed) == len(report.failures())
    assert [r for r in run["results"] if r["kind"] != "fail"] == [
        r for r in run["results"] if r["kind"] == "review" and r["level"] == "none"
    ]
    assert len(run["results"]) == len(report.failures()) + len(report.unknowns())
    assert code == (0 if not failed else 1)
    # A strict gate: any result, failure or unknown, fails it.
    with (
        mock.patch("planner.verification.run.verify_preview_file", return_value=report),
        mock.patch("planner.cli.verify._preview_resources", return_value=1),
        contextlib.redirect_stdout(io.StringIO()) as out,
    ):
        argv = ["verify", "--preview", "preview.json", "--format", "sarif", "--fail-on-unknown"]
        strict = main(argv)
    # ... and says so: every unknown is a failing result under it (review: SARIF said level
    # none, kind review, while the exit status failed the run).
    [strict_run] = valid(json.loads(out.getvalue()))["runs"]
    assert strict == (0 if not run["results"] else 1)
    assert len(strict_run["results"]) == len(run["results"])
    assert all(r["kind"] == "fail" and r["level"] == "error" for r in strict_run["results"])
    for loose, hard in zip(run["results"], strict_run["results"], strict=True):
        assert hard["partialFingerprints"] == loose["partialFingerprints"]
        if loose["kind"] == "fail":
            assert hard == loose
        else:
            assert hard["message"]["text"] == (
                loose["message"]["text"] + " (a failure under --fail-on-unknown)"
            )


def test_nothing_verified_is_a_failed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "preview.json"
    empty.write_text(json.dumps({"steps": []}), encoding="utf-8")
    assert main(["verify", "--preview", str(empty), "--format", "sarif"]) == 1
    [run] = valid(json.loads(capsys.readouterr().out))["runs"]
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is False
    # A result of its own: code scanning reads an upload without results as all alerts fixed.
    [result] = run["results"]
    assert result["ruleId"] == NOTHING_VERIFIED and "nothing verified" in result["message"]["text"]
    assert any(
        n["level"] == "error" and "nothing verified" in n["message"]["text"]
        for n in invocation["toolExecutionNotifications"]
    )


def test_json_and_format_are_one_choice(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["verify", "--json", "--format", "sarif"])
    assert stopped.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_schema_rejects_what_github_could_not_read() -> None:
    """The validator is not vacuous: a result without a message fails it."""
    report = Report([], [Finding("secrets", "x", "y")], [])
    document = json.loads(render_sarif(report, "w.yaml"))
    del document["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(document)


def test_a_pool_s_resource_lands_on_its_first_workload() -> None:
    """A finding on a resource named after a pool (its key, its log group) goes on the line of
    the pool's first workload, not line 1."""
    pool = Subject("pool", "pool deepseek-v3-2-p5en", "technical", ["patient-notes", "faq"])
    report = Report([pool], [Finding("key-rotation", "deepseek-v3-2-p5en-key", "no rotation")])
    lines = {"patient-notes": 40, "faq": 12}
    [run] = valid(json.loads(render_sarif(report, "w.yaml", lines)))["runs"]
    [result] = run["results"]
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 40


def test_the_file_is_named_from_the_repository_s_root(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "my plans").mkdir(parents=True)
    assert artifact_uri(root / "my plans" / "w.yaml", root) == ("my%20plans/w.yaml", None)
    outside, note = artifact_uri(tmp_path / "elsewhere.yaml", root)
    assert outside.startswith("file:///") and note is not None and "cannot place" in note
    nowhere, note = artifact_uri(tmp_path / "w.yaml", None)
    assert nowhere.startswith("file:///") and note is not None and "not in a git" in note


def test_a_missing_workloads_file_is_said(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verifying a saved preview against a plan whose workloads file is gone: nothing is
    verified, since the plan can no longer be held to its inputs (verify --preview checks it as
    the program does before it deploys: an outside review found a hand-edited plan passing); the
    error names the plan's workloads_file, exit 2, and no SARIF is written."""
    plan_project(project, None)
    capsys.readouterr()
    assert main(["preview", "--stack", "dev", "--json"]) == 0
    (project / "preview.json").write_text(capsys.readouterr().out, encoding="utf-8")
    (project / "examples" / "workloads.yaml").unlink()
    argv = ["verify", "--preview", "preview.json", "plans/dev/plan.json", "--format", "sarif"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "plans/dev/plan.json: workloads_file: cannot read" in err, err
