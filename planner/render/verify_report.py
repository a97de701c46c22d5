"""`planner verify`'s report as text (for a reviewer) and as JSON (versioned); SARIF is
planner.render.sarif."""

from __future__ import annotations

import json
import re
from typing import Any

from planner.outputs import versioned
from planner.verification.registry import RULES, Finding, Report

_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def render_text(report: Report, fail_on_unknown: bool = False) -> str:
    """The report for a reviewer. Every status line (PASS, FAIL or UNKNOWN) is a verdict the
    report holds; the last line says `verified` only when no line said FAIL or UNKNOWN, and
    FAILED exactly when the exit status is 1 (unknowns fail with `fail_on_unknown`)."""
    lines = []
    for verdict in report.workloads:
        if verdict.served_by is None:
            for finding in verdict.failures:
                lines.append(f"FAIL {verdict.name} ({verdict.perimeter}): {finding.message}")
            continue
        status = report.workload_status(verdict)
        lines.append(f"{status} {verdict.name} ({verdict.perimeter}, {verdict.served_by})")
        lines.extend(f"  way in: {path}" for path in verdict.ways_in)
        lines.extend(f"  {f.resource}: {f.message}" for f in verdict.failures)
    for subject in report.subjects:
        lines.append("")
        status = subject.status
        workloads = f"; workloads {', '.join(subject.workloads)}" if subject.workloads else ""
        lines.append(f"{status} {subject.name} ({subject.perimeter}{workloads})")
        held = "technical" if subject.kind == "pool" else subject.perimeter
        for finding in subject.failures:
            lines.append(
                f"  {finding.resource}: {finding.message} (rule broken: the {held} perimeter)"
            )
            if finding.witness:
                lines.append("    path: " + " -> ".join(finding.witness))
        lines.extend(f"  unknown: {f.resource}: {f.message}" for f in subject.unknowns)
        if subject.passed:
            lines.extend(f"  blocked: {text}" for text in subject.blocks)
    lines.append("")
    for registered in RULES.values():
        status = report.rule_status(registered.id)
        failures = report.rule_failures(registered.id)
        unknowns = report.rule_unknowns(registered.id)
        counts = [f"{len(failures)} finding(s)"] if failures else []
        counts += [f"{len(unknowns)} unknown"] if unknowns else []
        lines.append(
            f"{status} {registered.id}: {registered.text}"
            + (f" ({', '.join(counts)})" if counts else "")
        )
        # The perimeter's findings are listed with their networks and workloads above.
        lines.extend(
            f"  {f.resource}: {f.message}"
            for f in report.findings
            if f.rule == registered.id and f.failed
        )
        # A network's unknowns are listed with it above, as its failures are.
        lines.extend(
            f"  unknown: {f.resource}: {f.message}" for f in unknowns if f in report.findings
        )
    lines += ["", _status_line(report, fail_on_unknown)]
    # A name or message with a line break in it must not start a line of its own (one that
    # could read FAIL or PASS): each entry above is one printed line.
    return "\n".join(_LINE_BREAKS.sub(" ", line) for line in lines) + "\n"


def _status_line(report: Report, fail_on_unknown: bool) -> str:
    """The last line: a pass reads as one only when every rule was decided."""
    failures, unknowns = len(report.failures()), len(report.unknowns())
    if failures:
        return f"verification FAILED: {failures} failure(s)"
    if not unknowns:
        return "verified: no failure"
    if fail_on_unknown:
        return f"verification FAILED: no failure; {unknowns} check(s) unknown (--fail-on-unknown)"
    return f"not verified: no failure; {unknowns} check(s) unknown (--fail-on-unknown fails them)"


def render_json(report: Report, fail_on_unknown: bool = False) -> str:
    """The report as JSON: `passed` is the exit status (0: true), `status` the run's verdict
    (PASS, FAIL, UNKNOWN), and each rule its status, failures and unknowns."""

    def finding(f: Finding) -> dict[str, Any]:
        return {
            "rule": f.rule,
            "resource": f.resource,
            "message": f.message,
            "witness": list(f.witness),
        }

    document = {
        "passed": report.passes(fail_on_unknown),
        "status": str(report.status),
        "workloads": [
            {
                "name": w.name,
                "perimeter": w.perimeter,
                "served_by": w.served_by,
                "passed": report.workload_passed(w),
                "status": str(report.workload_status(w)),
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
                "status": str(s.status),
                "failures": [finding(f) for f in s.failures],
                "unknowns": [finding(f) for f in s.unknowns],
                "blocked_by": s.blocks,
            }
            for s in report.subjects
        ],
        # Every rule, with every finding of it (the perimeter's too) and every unknown: `status`
        # is PASS exactly when all of these lists are empty.
        "rules": {
            rule: {
                "status": str(report.rule_status(rule)),
                "failures": [finding(f) for f in report.rule_failures(rule)],
                "unknowns": [finding(f) for f in report.rule_unknowns(rule)],
            }
            for rule in RULES
        },
    }
    return json.dumps(versioned("verify", document), indent=2, sort_keys=True) + "\n"
