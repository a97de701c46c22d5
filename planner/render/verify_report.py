"""`planner verify`'s report as text (for a reviewer) and as JSON (versioned); SARIF is
planner.render.sarif."""

from __future__ import annotations

import json
import re
from typing import Any

from planner.outputs import versioned
from planner.verification.registry import RULES, Finding, Report

_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def render_text(report: Report) -> str:
    """The report for a reviewer. Every status line (PASS or FAIL) is a verdict the report holds;
    the last line says `verified` only when no line said FAIL."""
    lines = []
    for verdict in report.workloads:
        if verdict.served_by is None:
            for finding in verdict.failures:
                lines.append(f"FAIL {verdict.name} ({verdict.perimeter}): {finding.message}")
            continue
        status = "PASS" if report.workload_passed(verdict) else "FAIL"
        lines.append(f"{status} {verdict.name} ({verdict.perimeter}, {verdict.served_by})")
        lines.extend(f"  way in: {path}" for path in verdict.ways_in)
        lines.extend(f"  {f.resource}: {f.message}" for f in verdict.failures)
    for subject in report.subjects:
        lines.append("")
        status = "PASS" if subject.passed else "FAIL"
        workloads = f"; workloads {', '.join(subject.workloads)}" if subject.workloads else ""
        lines.append(f"{status} {subject.name} ({subject.perimeter}{workloads})")
        held = "technical" if subject.kind == "pool" else subject.perimeter
        for finding in subject.failures:
            lines.append(
                f"  {finding.resource}: {finding.message} (rule broken: the {held} perimeter)"
            )
            if finding.witness:
                lines.append("    path: " + " -> ".join(finding.witness))
        if subject.passed:
            lines.extend(f"  blocked: {text}" for text in subject.blocks)
    lines.append("")
    for registered in RULES.values():
        failures = report.rule_failures(registered.id)
        lines.append(
            f"{'FAIL' if failures else 'PASS'} {registered.id}: {registered.text}"
            + (f" ({len(failures)} finding(s))" if failures else "")
        )
        # The perimeter's findings are listed with their networks and workloads above.
        lines.extend(
            f"  {f.resource}: {f.message}" for f in report.findings if f.rule == registered.id
        )
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    total = len(report.failures())
    lines += [
        "",
        "verified: no failure" if report.passed else f"verification FAILED: {total} failure(s)",
    ]
    # A name or message with a line break in it must not start a line of its own (one that
    # could read FAIL or PASS): each entry above is one printed line.
    return "\n".join(_LINE_BREAKS.sub(" ", line) for line in lines) + "\n"


def render_json(report: Report) -> str:
    def finding(f: Finding) -> dict[str, Any]:
        return {
            "rule": f.rule,
            "resource": f.resource,
            "message": f.message,
            "witness": list(f.witness),
        }

    document = {
        "passed": report.passed,
        "workloads": [
            {
                "name": w.name,
                "perimeter": w.perimeter,
                "served_by": w.served_by,
                "passed": report.workload_passed(w),
                "ways_in": w.ways_in,
                "failures": [finding(f) for f in w.failures],
            }
            for w in report.workloads
        ],
        "subjects": [
            {
                "kind": s.kind,
                "name": s.name,
                "perimeter": s.perimeter,
                "workloads": s.workloads,
                "passed": s.passed,
                "failures": [finding(f) for f in s.failures],
                "blocked_by": s.blocks,
            }
            for s in report.subjects
        ],
        # Every rule, with every finding of it (the perimeter's too): `passed` is true exactly
        # when all of these lists are empty.
        "rules": {rule: [finding(f) for f in report.rule_failures(rule)] for rule in RULES},
        "warnings": report.warnings,
    }
    return json.dumps(versioned("verify", document), indent=2, sort_keys=True) + "\n"
