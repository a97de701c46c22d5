"""The policy pack's validator: `planner verify`'s checks over what CrossGuard hands a stack
validation policy. Kept apart from __main__.py (which serves the pack) so tests can call it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from planner.catalog import default_catalog
from planner.graph.resources import graph_from_policy
from planner.planfile import read_plan
from planner.verification.expectations import Expectations
from planner.verification.run import verify

ReportViolation = Callable[[str, str | None], None]


def validate_stack(
    resources: list[Any], config: Mapping[str, Any], report_violation: ReportViolation
) -> int:
    """Report every failure of the perimeter property and of the rules table; return how many.

    Policy config: `allow_unprotected` (a dev stack: keys, buckets and secrets need not be
    protected), `plan` (path to plan.json: also check consumers, planned models and hosts) and
    `clusters` (the stack config's `clusters`: the ranges a Kubernetes site's pools may reach,
    its weights' store; without it, such egress is not shown allowed and fails)."""
    catalog = default_catalog()
    plan = read_plan(Path(config["plan"])) if config.get("plan") else None
    expect = Expectations.of(
        plan,
        catalog,
        protect=not config.get("allow_unprotected", False),
        clusters=config.get("clusters"),
    )
    report = verify(graph_from_policy(resources), expect)
    failures = report.failures()
    for finding in failures:
        path = f" (path: {' -> '.join(finding.witness)})" if finding.witness else ""
        report_violation(f"[{finding.rule}] {finding.resource}: {finding.message}{path}", None)
    return len(failures)


def stack_validation(args: Any, report_violation: ReportViolation) -> None:
    """The StackValidationPolicy entry point."""
    validate_stack(args.resources, args.get_config() or {}, report_violation)
