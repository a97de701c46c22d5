"""`planner diff`'s outputs over a comparison (planner.diff.compare): the pull-request comment in
Markdown (templates/diff.md.j2), cut to fit GitHub's limit, and the JSON of everything."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from planner.outputs import versioned
from planner.render.plan_files import template_environment, tidy_markdown

if TYPE_CHECKING:
    from planner.diff.compare import Diff, Side

MARKER = "<!-- ai-infra-planner:plan-diff -->"
# GitHub refuses a comment body over 65,536 characters; keep a margin for the workflow's note.
COMMENT_LIMIT = 65_536 - 1_536
FOLD_OVER = 10  # resource rows shown folded in <details> above this many
MAX_CHARTS = 3  # crossover charts in one comment


def render_markdown(diff: Diff, limit: int = COMMENT_LIMIT) -> str:
    """The pull-request comment, under GitHub's limit: the per-resource part is cut first (and
    the comment says so), then the workload rows."""
    template = template_environment().get_template("diff.md.j2")
    total = sum(len(s.resources) for s in diff.stacks)
    rows = max(len(s.workloads) for s in diff.stacks) if diff.stacks else 0

    def render(max_resources: int, max_workloads: int) -> str:
        text = template.render(
            diff=diff, marker=MARKER, max_resources=max_resources,
            max_workloads=max_workloads, fold_over=FOLD_OVER, total_resources=total,
            max_charts=MAX_CHARTS,
        )  # fmt: skip
        return tidy_markdown(text)

    text = render(total, rows)
    shown = total
    while len(text) > limit and shown > 0:
        shown = shown // 2
        text = render(shown, rows)
    while len(text) > limit and rows > 0:
        rows = rows // 2
        text = render(0, rows)
    return text


def render_json(diff: Diff) -> str:
    def side(s: Side | None) -> dict[str, Any] | None:
        return None if s is None else s.__dict__

    document = {
        "before_usd": diff.before_usd,
        "after_usd": diff.after_usd,
        "change_usd": diff.change_usd,
        "change_pct": None if diff.change_pct is None else round(diff.change_pct, 2),
        "budget_gate": {"passed": not diff.gate, "reasons": diff.gate, "set": diff.gate_set},
        "perimeter_gate": {
            "passed": not diff.perimeter_gate, "reasons": diff.perimeter_gate,
            "set": diff.perimeter_gate_set, "fail_on_verify": diff.fail_on_verify,
            "fail_on_weaker_perimeter": diff.fail_on_weaker_perimeter,
        },
        "perimeter_ok": diff.perimeter_ok,
        "stacks": [
            {
                "stack": s.stack,
                "before_usd": s.before_usd,
                "after_usd": s.after_usd,
                "change_usd": s.change_usd,
                "change_by_kind": {
                    "resources_usd": s.resources_change_usd,
                    "staff_usd": s.staff_change_usd,
                    "api_tokens_usd": s.tokens_change_usd,
                    "prices_usd": s.prices_change_usd,
                },
                "workloads": [
                    {
                        "name": w.name,
                        "status": w.status,
                        "before": side(w.before),
                        "after": side(w.after),
                        "change_usd": w.change_usd,
                        "answers": [
                            {"question": q, "before": b, "after": a, "reason": r}
                            for q, b, a, r in w.answers
                        ],
                        "chart": None if w.chart is None else w.chart.__dict__,
                    }
                    for w in s.workloads
                ],
                "resources": [
                    {
                        "group": r.group,
                        "status": r.status,
                        "type": r.type,
                        "name": r.name,
                        "before_usd": r.before_usd,
                        "after_usd": r.after_usd,
                        "changed_inputs": list(r.changed_inputs),
                    }
                    for r in s.resources
                ],
                "perimeter_weakened": [
                    {"workload": w, "before": b, "after": a, "data_before": db, "data_after": da}
                    for w, b, a, db, da in s.weaker
                ],
                "verification": None if s.verification is None else {
                    "passed": s.verification.passed,
                    "status": str(s.verification.status),
                    "failures": [
                        {"rule": f.rule, "resource": f.resource, "message": f.message}
                        for f in s.verification.failures()
                    ],
                    "unknowns": [
                        {"rule": f.rule, "resource": f.resource, "message": f.message}
                        for f in s.verification.unknowns()
                    ],
                },
                "new_warnings": [
                    {"workload": w, "code": c, "message": m} for w, c, m in s.new_warnings
                ],
            }
            for s in diff.stacks
        ],
    }  # fmt: skip
    return json.dumps(versioned("diff", document), indent=2, sort_keys=True) + "\n"
