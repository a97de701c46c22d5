"""`planner diff`: the pull-request comment, checked against golden files, and the budget gate.

Regenerate the golden comments with UPDATE_GOLDEN=1 after a deliberate change, and review them."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from planner import costing
from planner.catalog import Catalog, Figure, default_catalog
from planner.cli import main
from planner.diff.compare import diff_plans, load_plans
from planner.diff.gate import budget_gate
from planner.fmt import percent_points
from planner.inputs.loader import load_workloads
from planner.planfile import Plan
from planner.planning.build import build_plan
from planner.render.diff_report import MARKER, render_json, render_markdown
from planner.render.plan_files import plan_json
from planner.verification.registry import Report

GOLDEN = Path(__file__).resolve().parent / "golden"

# Three workloads, three answers: an API behind the egress firewall, Bedrock over PrivateLink,
# a self-hosted pool for regulated data, each called from a VPC the stack connects (so verify's
# way in holds). Three-year pricing, so volume can flip the first.
BASE = """\
organization: acme
region: us-east-1
assumptions:
  pricing: savings_3yr
workloads:
  - name: faq-bot
    task: faq
    data: internal
    monthly_tokens: {input: 2B, output: 400M}
    consumers:
      - {cidr: 10.20.0.0/16, vpc: vpc-0a1b2c3d4e5f60718, subnets: [subnet-0a1b2c3d4e5f60718]}
  - name: claims-triage
    task: classification
    data: confidential
    monthly_tokens: {input: 500M, output: 20M}
    consumers:
      - {cidr: 10.21.0.0/16, vpc: vpc-0b1c2d3e4f5a60719, subnets: [subnet-0b1c2d3e4f5a60719]}
  - name: lab-notes
    task: summarization
    data: regulated
    monthly_tokens: {input: 3B, output: 600M}
    consumers:
      - {cidr: 10.22.0.0/16, vpc: vpc-0c2d3e4f5a6b7c8d9, subnets: [subnet-0c2d3e4f5a6b7c8d9]}
"""
NEW_REGULATED = """\
  - name: radiology-notes
    task: extraction
    data: regulated
    monthly_tokens: {input: 1B, output: 100M}
    consumers:
      - {cidr: 10.23.0.0/16, account: "111122223333"}
"""


def plan_of(tmp: Path, text: str, catalog: Catalog | None = None) -> Plan:
    path = tmp / "workloads.yaml"
    path.write_text(text)
    catalog = catalog or default_catalog()
    return build_plan(load_workloads(path, catalog), catalog, "dev", "workloads.yaml")


def pricier_p5(catalog: Catalog) -> Catalog:
    """The catalog with every P5 instance type's on-demand price and published purchase-option
    rates 10 % higher (a price update; the base's pool runs on whichever the throughput model
    makes cheapest, under a published 3-year rate)."""
    raised = {}
    for name, instance in catalog.instances.items():
        fields = ["on_demand_usd_per_hour"] + [f for f, _ in costing.PUBLISHED_RATES.values()]
        update: dict[str, Figure] = {}
        for field in fields:
            price = getattr(instance, field)
            if isinstance(price, Figure):
                update[field] = price.model_copy(
                    update={
                        key: getattr(price, key) * 1.1
                        for key in ("value", "low", "high")
                        if getattr(price, key) is not None
                    }
                )
        raised[name] = instance.model_copy(update=update)
    return catalog.model_copy(update={"instances": raised})


SCENARIOS = {
    "volume-flip": lambda: BASE.replace("{input: 2B, output: 400M}", "{input: 100B, output: 20B}"),
    "new-regulated": lambda: BASE + NEW_REGULATED,
    "removed": lambda: BASE.replace(BASE[BASE.index("  - name: claims-triage") :
                                         BASE.index("  - name: lab-notes")], ""),
    "weakened": lambda: BASE.replace("data: regulated", "data: internal"),
    "catalog-price": lambda: BASE,
}  # fmt: skip


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"diff-{name}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path.name} differs; UPDATE_GOLDEN=1 after review"


@pytest.fixture(scope="module")
def base_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return plan_of(tmp_path_factory.mktemp("base"), BASE)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_comments(name: str, base_plan: Plan, tmp_path: Path) -> None:
    catalog = pricier_p5(default_catalog()) if name == "catalog-price" else default_catalog()
    head = plan_of(tmp_path, SCENARIOS[name](), catalog)
    diff = diff_plans({"dev": base_plan}, {"dev": head}, catalog)
    text = render_markdown(diff)
    assert text.startswith(MARKER)
    check_golden(name, text)
    [stack] = diff.stacks
    statuses = {w.name: w.status for w in stack.workloads}
    if name == "volume-flip":
        [flip] = [w for w in stack.workloads if w.name == "faq-bot"]
        assert (flip.before and flip.before.placement, flip.after and flip.after.placement) == (
            "cloud_api", "self_hosted",
        )  # fmt: skip
        # HEAD's crossover chart, with the volume that moved across it.
        assert flip.chart is not None and flip.chart.crossover_tokens is not None
        assert flip.chart.tokens_before == 2_400_000_000 < flip.chart.crossover_tokens
        assert flip.chart.tokens_after == 120_000_000_000 > flip.chart.crossover_tokens
        assert "xychart-beta" in text
        assert any(r.status == "added" and r.type == "aws:autoscaling/group:Group"
                   for r in stack.resources)  # fmt: skip
    elif name == "new-regulated":
        assert statuses["radiology-notes"] == "added"
        assert stack.verification is not None and stack.verification.passed
    elif name == "removed":
        assert statuses["claims-triage"] == "removed"
        assert any(r.status == "removed" for r in stack.resources)
    elif name == "weakened":
        assert [w[0] for w in stack.weaker] == ["lab-notes"]
        assert "⚠️ `lab-notes`: perimeter **technical → contractual**" in text
        assert not diff.perimeter_ok
    else:  # the catalog's price moved: the self-hosted pool costs more, nothing else changed
        assert diff.change_usd > 0
        assert statuses["lab-notes"] == "changed" and statuses["faq-bot"] == "unchanged"


def test_budget_gate_fails_and_passes(base_plan: Plan, tmp_path: Path) -> None:
    head = plan_of(tmp_path, SCENARIOS["volume-flip"]())
    catalog = default_catalog()
    failing = diff_plans({"dev": base_plan}, {"dev": head}, catalog, fail_on_increase_pct=5)
    assert failing.gate and "above the 5 % allowed" in failing.gate[0]
    text = render_markdown(failing)
    assert text.splitlines()[4].startswith("**❌ Budget gate failed:**")
    check_golden("gate-failing", text)
    passing = diff_plans({"dev": base_plan}, {"dev": head}, catalog,
                         fail_on_increase_pct=1000, fail_above_usd=1_000_000)  # fmt: skip
    assert passing.gate == []
    check_golden("gate-passing", render_markdown(passing))
    above = diff_plans({"dev": base_plan}, {"dev": head}, catalog, fail_above_usd=10_000)
    assert above.gate == [
        f"the monthly estimate, {above.after_usd:,.2f} USD, is above the 10,000.00 USD allowed"
    ]


def test_the_command_and_its_exit_status(
    base_plan: Plan, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "plan.json").write_text(plan_json(base_plan))
    head = plan_of(tmp_path, SCENARIOS["volume-flip"]())
    (tmp_path / "head" / "dev").mkdir(parents=True)
    (tmp_path / "head" / "dev" / "plan.json").write_text(plan_json(head))
    args = [str(tmp_path / "base"), str(tmp_path / "head")]
    assert main(["diff", *args]) == 0
    assert capsys.readouterr().out.startswith(MARKER)
    assert main(["diff", *args, "--fail-on-increase-pct", "5"]) == 1
    captured = capsys.readouterr()
    assert "Budget gate failed" in captured.out and "budget gate failed" in captured.err
    assert main(["diff", *args, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["change_usd"] == round(head.totals.monthly_cost_usd
                                           - base_plan.totals.monthly_cost_usd, 2)  # fmt: skip
    assert document["budget_gate"] == {"passed": True, "reasons": [], "set": False}
    # Bad input: a missing file, a negative limit.
    assert main(["diff", str(tmp_path / "nowhere"), args[1]]) == 2
    assert "nowhere: no such plan file or directory" in capsys.readouterr().err
    assert main(["diff", *args, "--fail-above-usd", "-1"]) == 2
    assert "--fail-above-usd: -1 is negative" in capsys.readouterr().err


def test_a_new_stack_diffs_against_nothing(tmp_path: Path, base_plan: Plan) -> None:
    """The first plan of a project: an empty BASE directory, every workload added."""
    (tmp_path / "empty").mkdir()
    assert load_plans(tmp_path / "empty") == {}
    diff = diff_plans({}, {"dev": base_plan}, default_catalog(), fail_on_increase_pct=10)
    assert diff.change_pct is None and diff.before_usd == 0
    assert {w.status for w in diff.stacks[0].workloads} == {"added"}
    assert diff.gate and "from nothing" in diff.gate[0]


def test_the_comment_stays_under_githubs_limit(base_plan: Plan, tmp_path: Path) -> None:
    head = plan_of(tmp_path, SCENARIOS["volume-flip"]())
    diff = diff_plans({"dev": base_plan}, {"dev": head}, default_catalog())
    full = render_markdown(diff)
    limit = len(full) - 200  # force a cut
    cut = render_markdown(diff, limit=limit)
    assert len(cut) <= limit
    assert "Per-resource rows cut to" in cut
    assert "| `faq-bot` |" in cut  # the workloads stay; the resources go first


def test_no_change_says_so(base_plan: Plan) -> None:
    diff = diff_plans({"dev": base_plan}, {"dev": base_plan}, default_catalog())
    text = render_markdown(diff)
    assert diff.change_usd == 0 and diff.perimeter_ok
    assert "(0.00 USD, +0.0 %)" in text.splitlines()[2]
    assert "No workload changes." in text and "No resource changes in the offline preview." in text


def test_a_touched_workload_is_changed_even_below_a_cent(base_plan: Plan, tmp_path: Path) -> None:
    """One more output token: the cost moves by less than a cent, but the workload's input
    changed, so it is listed; the untouched ones stay unchanged."""
    head = plan_of(tmp_path, BASE.replace("output: 400M}", "output: 400000001}"))
    diff = diff_plans({"dev": base_plan}, {"dev": head}, default_catalog())
    [stack] = diff.stacks
    statuses = {w.name: w.status for w in stack.workloads}
    assert statuses["faq-bot"] == "changed"
    assert {s for name, s in statuses.items() if name != "faq-bot"} == {"unchanged"}
    assert "No workload changes." not in render_markdown(diff)


def _write(tmp_path: Path, name: str, plan: Plan) -> str:
    (tmp_path / name / plan.stack).mkdir(parents=True)
    (tmp_path / name / plan.stack / "plan.json").write_text(plan_json(plan))
    return str(tmp_path / name)


def _failing_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """HEAD's stack breaks a rule: verify as diff runs it, with a key that does not rotate."""
    import planner.diff.compare
    from planner.verification.registry import Finding

    real = planner.diff.compare.verify

    def failing(*args: Any, **kwargs: Any) -> Report:
        report = real(*args, **kwargs)
        report.findings.append(Finding("key-rotation", "key pool-key", "rotation is off"))
        return report

    monkeypatch.setattr(planner.diff.compare, "verify", failing)


def test_fail_on_verify(
    base_plan: Plan, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    args = [_write(tmp_path, "base", base_plan), _write(tmp_path, "head", base_plan)]
    # HEAD verifies: the gate passes and says so.
    assert main(["diff", *args, "--fail-on-verify"]) == 0
    out = capsys.readouterr().out
    assert "**✅ Perimeter gate passed**: HEAD verified." in out.splitlines()
    _failing_verify(monkeypatch)
    # Without the flag the comment still reports the failure, and no gate was asked for.
    assert main(["diff", *args]) == 0
    out = capsys.readouterr().out
    assert "❌ HEAD fails verification (1 failure(s))" in out and "Perimeter gate" not in out
    assert "- ❌ key-rotation: key pool-key: rotation is off" in out
    # With it: exit 1, and the comment says why at the top.
    assert main(["diff", *args, "--fail-on-verify"]) == 1
    captured = capsys.readouterr()
    top = captured.out.splitlines()[:8]
    assert "**❌ Perimeter gate failed:** HEAD fails verification (1 failure(s))." in top
    assert "perimeter gate failed: HEAD fails verification" in captured.err
    assert main(["diff", *args, "--fail-on-verify", "--format", "json"]) == 1
    gate = json.loads(capsys.readouterr().out)["perimeter_gate"]
    assert gate == {
        "passed": False,
        "reasons": ["HEAD fails verification (1 failure(s))"],
        "set": True,
        "fail_on_verify": True,
        "fail_on_weaker_perimeter": False,
    }


def test_fail_on_weaker_perimeter(
    base_plan: Plan, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = plan_of(tmp_path, SCENARIOS["weakened"]())
    args = [_write(tmp_path, "base", base_plan), _write(tmp_path, "head", head)]
    assert main(["diff", *args]) == 0  # weaker on purpose: said, not a gate unless asked
    assert "⚠️ `lab-notes`: perimeter **technical → contractual**" in capsys.readouterr().out
    assert main(["diff", *args, "--fail-on-weaker-perimeter", "--fail-on-verify"]) == 1
    captured = capsys.readouterr()
    assert (
        "**❌ Perimeter gate failed:** the perimeter of lab-notes got weaker "
        "(technical → contractual)."
    ) in captured.out.splitlines()
    assert "perimeter gate failed: the perimeter of lab-notes got weaker" in captured.err
    # The reverse change strengthens the perimeter: the gate passes.
    assert main(["diff", args[1], args[0], "--fail-on-weaker-perimeter", "--fail-on-verify"]) == 0
    assert (
        "**✅ Perimeter gate passed**: HEAD verified and no perimeter weaker than before."
        in capsys.readouterr().out.splitlines()
    )


def test_a_missing_or_empty_head_is_an_error(
    base_plan: Plan, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "-100 %, removed": HEAD must hold a plan, and the path is named."""
    base = _write(tmp_path, "base", base_plan)
    missing = str(tmp_path / "head-plans")
    assert main(["diff", base, missing]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {missing}: no such plan file or directory\n"
    (tmp_path / "empty").mkdir()
    assert main(["diff", base, str(tmp_path / "empty")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {tmp_path / 'empty'}: no plan.json here")
    assert main(["diff", str(tmp_path / "nothing"), base]) == 2
    assert f"{tmp_path / 'nothing'}: no such plan file" in capsys.readouterr().err


def test_every_diff_flag_has_help() -> None:
    from planner.cli.app import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if a.dest == "command"]
    diff = sub.choices["diff"]  # type: ignore[attr-defined]
    flags = {o for a in diff._actions for o in a.option_strings if a.help}
    assert {"--fail-on-verify", "--fail-on-weaker-perimeter", "--fail-on-increase-pct",
            "--fail-above-usd"} <= flags  # fmt: skip


def test_a_head_with_unknowns_is_not_said_verified(
    base_plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review of issue 15: the comment said "✅ HEAD verified" on `passed` (no failure), while
    `planner verify` says "not verified" when checks are unknown."""
    import planner.diff.compare
    from planner.verification.registry import Finding

    real = planner.diff.compare.verify

    def unknown(*args: Any, **kwargs: Any) -> Report:
        report = real(*args, **kwargs)
        report.findings.append(Finding.unknown("buckets", "bucket w", "known after up"))
        return report

    monkeypatch.setattr(planner.diff.compare, "verify", unknown)
    head = plan_of(tmp_path, BASE + NEW_REGULATED)
    diff = diff_plans({"dev": base_plan}, {"dev": head}, default_catalog())
    text = render_markdown(diff)
    assert "✅ HEAD verified" not in text
    assert "❔ HEAD not verified: no failure, 1 check(s) unknown until `pulumi up`" in text
    document = json.loads(render_json(diff))
    [stack] = document["stacks"]
    assert stack["verification"]["status"] == "UNKNOWN"
    assert stack["verification"]["unknowns"] == [
        {"rule": "buckets", "resource": "bucket w", "message": "known after up"}
    ]


def test_a_failing_budget_gate_never_shows_a_rise_at_or_below_its_percent(
    base_plan: Plan, tmp_path: Path
) -> None:
    """Review: 101,783.94 -> 106,903.99 USD (+5.03 %) failed a 5 % gate saying it "rises 5.0 %,
    above the 5 % allowed". The rise is shown with the decimals that put it above the percent
    (the reason on stderr and in the comment, and the comment's heading); a passing gate's
    figure is never above its percent."""
    assert percent_points(100 * (106_903.99 - 101_783.94) / 101_783.94, 5) == "5.03 %"
    assert percent_points(5.0004, 5, signed=True) == "+5.0004 %"
    assert percent_points(4.96, 4.96) == "4.96 %"  # not "5.0 %", above the 4.96 % it passes
    assert percent_points(12.34) == "12.3 %" and percent_points(-3.21, 5, True) == "-3.2 %"
    head = plan_of(tmp_path, SCENARIOS["volume-flip"]())
    diff = diff_plans({"dev": base_plan}, {"dev": head}, default_catalog())
    pct = diff.change_pct
    assert pct is not None and pct > 0
    for threshold in [pct - 10.0**-k for k in range(1, 7)] + [pct, pct + 1e-6]:
        gated = dataclasses.replace(diff, fail_on_increase_pct=threshold)
        gated.gate = budget_gate(gated)
        heading = render_markdown(gated).splitlines()[2]
        shown = re.search(r", \+([\d.]+) %\)$", heading)
        assert shown is not None, heading
        if threshold < pct:
            [reason] = gated.gate
            rise = re.search(r"rises ([\d.]+) %", reason)
            assert rise is not None and float(rise.group(1)) > threshold, (reason, threshold)
            assert float(shown.group(1)) > threshold and shown.group(1) == rise.group(1)
            assert f"rises {rise.group(1)} %" in render_markdown(gated)
        else:
            assert gated.gate == [] and float(shown.group(1)) <= threshold
