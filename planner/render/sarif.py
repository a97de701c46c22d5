"""`planner verify --format sarif`: the report as SARIF 2.1.0, for GitHub code scanning.

The format is OASIS SARIF 2.1.0 (docs.oasis-open.org/sarif/sarif/v2.1.0; the tests validate every
document against its JSON Schema, tests/data/sarif-schema-2.1.0.json). GitHub's code scanning
reads a subset ("SARIF support for code scanning", docs.github.com): each rule's `id` and
`shortDescription`, each result's `ruleId`, `message.text` and a `physicalLocation` (a file of the
repository, relative to its root, and a `region.startLine`) to annotate, and `partialFingerprints`
to recognise the same result across runs. A finding is placed on the line of the workloads file
where the workload it concerns is named (the first workload of the pool, provider or network
whose resource it names); one that concerns no workload of the plan, on line 1. The file is
named relative to the repository's root (the directory holding .git above the project), as
code scanning needs; a file outside it, which code scanning cannot place, is said in a
notification.

Every rule of the registry (planner.verification.registry.RULES) is listed, so a rule with no
result reads as checked and passed. A failure is a result of kind `fail` (level `error`); an
unknown (a rule that could not be decided on a resource: a value known only after `pulumi up`) a
result of kind `review`, which SARIF 2.1.0 defines as one the tool could not judge pass or fail
and a human should (§3.27.9), with level `none`, as the standard requires of every kind but
`fail` (§3.27.10): never a passing result, nor a failure. Under `--fail-on-unknown`, where an
unknown fails the run (exit status 1), it is a result of kind `fail`, level `error`, as the
exit status says (its message still says unknown, its fingerprint stays its own). A report that
did not pass has at least one result, and so has a run that verified nothing (rule `verified`):
code scanning reads an upload without results as every alert fixed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from planner.verification.registry import RULES, Finding, Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL = "ai-infra-planner verify"
# Not a rule of the registry (no graph check can find it): the run verified nothing at all.
NOTHING_VERIFIED = "verified"
NOTHING_VERIFIED_TEXT = (
    "something was verified: a preview that declares resources, or a plan to hold it against"
)


def repository_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding .git (a directory, or a worktree's
    file)."""
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


def artifact_uri(path: Path, root: Path | None) -> tuple[str, str | None]:
    """The file as SARIF names it: relative to the repository's root, percent-encoded; outside
    it (or with no repository), an absolute file URI and a sentence saying code scanning
    cannot place it."""
    absolute = path.resolve()
    if root is not None:
        try:
            return quote(absolute.relative_to(root.resolve()).as_posix()), None
        except ValueError:
            pass
    where = "outside the repository" if root is not None else "not in a git repository"
    return absolute.as_uri(), f"{absolute} is {where}: code scanning cannot place its results"


def _owner(report: Report, finding: Finding, names: list[str]) -> str | None:
    """The workload a finding concerns: its own verdict's, its network's first workload's, the
    longest workload name its resource or message names, or the first workload of the pool,
    provider or network whose resources (named after it) it names."""
    for verdict in report.workloads:
        if any(f is finding for f in verdict.failures):
            return verdict.name
    for subject in report.subjects:
        if any(f is finding for f in subject.failures) and subject.workloads:
            return subject.workloads[0]
    named = [n for n in names if n in finding.resource or n in finding.message]
    if named:
        return max(named, key=len)
    owners = [
        (len(bare), subject.workloads[0])
        for subject in report.subjects
        if subject.workloads
        and (bare := subject.name.split(" ", 1)[-1])
        and (finding.resource == bare or finding.resource.startswith(f"{bare}-"))
    ]
    return max(owners)[1] if owners else None


def render_sarif(
    report: Report,
    artifact: str,
    workload_lines: dict[str, int] | None = None,
    version: str = "",
    not_run: str | None = None,
    notes: list[str] | None = None,
    fail_on_unknown: bool = False,
) -> str:
    """The report as one SARIF run. `artifact` is the file results are placed in (the workloads
    file as artifact_uri names it), `workload_lines` each workload's line in it; `not_run`
    says why nothing was verified (the run then failed, with a result of its own); `notes`,
    what else the run should say (a file it could not read); `fail_on_unknown`, that an unknown
    fails the run, as a failure does."""
    lines = workload_lines or {}
    names = sorted(lines)
    rules = list(RULES.values())
    index = {r.id: i for i, r in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for registered in rules:
        for finding in [
            *report.rule_failures(registered.id),
            *report.rule_unknowns(registered.id),
        ]:
            owner = _owner(report, finding, names)
            line = lines.get(owner, 1) if owner is not None else 1
            key = (finding.rule, finding.resource, finding.message)
            # A failure's fingerprint is what it was before unknowns were results.
            digest = hashlib.sha256(
                "\0".join(key if finding.failed else (*key, "unknown")).encode()
            ).hexdigest()
            text = f"{finding.resource}: {finding.message}"
            if finding.witness:
                text += " (witness: " + " -> ".join(finding.witness) + ")"
            if not finding.failed:
                text = f"unknown: {text}"
                if fail_on_unknown:
                    text += " (a failure under --fail-on-unknown)"
            fails = finding.failed or fail_on_unknown
            results.append(
                {
                    "ruleId": finding.rule,
                    "ruleIndex": index[finding.rule],
                    "kind": "fail" if fails else "review",
                    "level": "error" if fails else "none",
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
    if not_run is not None:
        results.append(
            {
                "ruleId": NOTHING_VERIFIED,
                "ruleIndex": len(rules),
                "kind": "fail",
                "level": "error",
                "message": {"text": not_run},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": artifact},
                            "region": {"startLine": 1},
                        }
                    }
                ],
                "partialFingerprints": {
                    "plannerFinding/v1": hashlib.sha256(not_run.encode()).hexdigest()[:32]
                },
            }
        )
    notifications = [{"level": "warning", "message": {"text": note}} for note in notes or []]
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
                        ]
                        + [
                            {
                                "id": NOTHING_VERIFIED,
                                "name": NOTHING_VERIFIED,
                                "shortDescription": {"text": NOTHING_VERIFIED_TEXT},
                                "fullDescription": {"text": NOTHING_VERIFIED_TEXT},
                                "defaultConfiguration": {"level": "error"},
                                "properties": {"tags": ["security"]},
                            }
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
