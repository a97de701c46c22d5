"""`planner verify --format sarif`: the report as SARIF 2.1.0, for GitHub code scanning.

The format is OASIS SARIF 2.1.0 (docs.oasis-open.org/sarif/sarif/v2.1.0; the tests validate every
document against its JSON Schema, tests/data/sarif-schema-2.1.0.json). GitHub's code scanning
reads a subset ("SARIF support for code scanning", docs.github.com): each rule's `id` and
`shortDescription`, each result's `ruleId`, `message.text` and a `physicalLocation` (a file of the
repository, relative to its root, and a `region.startLine`) to annotate, and `partialFingerprints`
to recognise the same result across runs. A finding is placed on the line of the workloads file
where the workload it concerns is named (its pool's or its provider's first workload for a
network's finding); one that concerns no workload of the plan, on line 1.

Every rule of the registry (planner.verification.RULES) is listed, so a rule with no result reads
as checked and passed; the report's warnings (what could not be decided: unknowns) are tool
notifications, never results that pass. A report that did not pass has at least one result.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from planner.verification import RULES, Finding, Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL = "ai-infra-planner verify"


def _owner(report: Report, finding: Finding, names: list[str]) -> str | None:
    """The workload a finding concerns: its own verdict's, its network's first workload's, or
    the longest workload name its resource or message names."""
    for verdict in report.workloads:
        if any(f is finding for f in verdict.failures):
            return verdict.name
    for subject in report.subjects:
        if any(f is finding for f in subject.failures) and subject.workloads:
            return subject.workloads[0]
    named = [n for n in names if n in finding.resource or n in finding.message]
    return max(named, key=len) if named else None


def render_sarif(
    report: Report,
    artifact: str,
    workload_lines: dict[str, int] | None = None,
    version: str = "",
    not_run: str | None = None,
) -> str:
    """The report as one SARIF run. `artifact` is the file results are placed in (the workloads
    file, relative to the repository's root), `workload_lines` each workload's line in it;
    `not_run` says why nothing was verified (the run then failed: no result can pass it)."""
    lines = workload_lines or {}
    names = sorted(lines)
    rules = list(RULES.values())
    index = {r.id: i for i, r in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for registered in rules:
        for finding in report.rule_failures(registered.id):
            owner = _owner(report, finding, names)
            line = lines.get(owner, 1) if owner is not None else 1
            digest = hashlib.sha256(
                "\0".join((finding.rule, finding.resource, finding.message)).encode()
            ).hexdigest()
            text = f"{finding.resource}: {finding.message}"
            if finding.witness:
                text += " (witness: " + " -> ".join(finding.witness) + ")"
            results.append(
                {
                    "ruleId": finding.rule,
                    "ruleIndex": index[finding.rule],
                    "level": "error",
                    "message": {"text": text},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": artifact},
                                "region": {"startLine": line},
                            },
                            "logicalLocations": [{"name": finding.resource, "kind": "resource"}],
                        }
                    ],
                    "partialFingerprints": {"plannerFinding/v1": digest[:32]},
                    "properties": {"workload": owner} if owner is not None else {},
                }
            )
    notifications = [
        {"level": "warning", "message": {"text": warning}} for warning in report.warnings
    ]
    if not_run is not None:
        notifications.append({"level": "error", "message": {"text": not_run}})
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL,
                        **({"version": version} if version else {}),
                        "rules": [
                            {
                                "id": r.id,
                                "name": r.id,
                                "shortDescription": {"text": r.text},
                                "fullDescription": {"text": r.text},
                                "defaultConfiguration": {"level": "error"},
                                "properties": {"tags": ["security"]},
                            }
                            for r in rules
                        ],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not_run is None,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
