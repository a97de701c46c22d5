"""`planner verify`: prove from the resource graph that sensitive workloads have no way out, and
check every rule of the security-rules table (../shared/reference/security-rules.md): over the
real program run under mocks, or a preview file. The same checks run in the CrossGuard policy
pack (policy/), on `pulumi preview`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from planner import names
from planner.catalog import Catalog
from planner.errors import PlannerError
from planner.graph.resources import Graph, graph_from_offline, graph_from_preview
from planner.planfile import Plan
from planner.verification.aws_network import Network
from planner.verification.expectations import Expectations
from planner.verification.registry import RULES, Finding, Report, unique
from planner.verification.rules.perimeter import SUBJECT_RULES
from planner.verification.rules.secrets import keys_in, plaintext_outputs
from planner.verification.verdicts import perimeter_verdicts


def verify(
    graph: Graph,
    expect: Expectations,
    outputs: dict[str, Any] | None = None,
    texts: dict[str, str] | None = None,
) -> Report:
    """Check the graph; `outputs` (stack outputs) and `texts` (what else the run wrote: the plan
    file, the program's log) are searched for credentials in plain text too."""
    network = Network(graph)
    subjects, workloads = perimeter_verdicts(network, expect)
    findings: list[Finding] = []
    for registered in RULES.values():
        if registered.id not in SUBJECT_RULES:  # their verdicts are the subjects and workloads
            findings.extend(registered.check(graph, network, expect))
    findings.extend(plaintext_outputs(outputs or {}))
    findings.extend(
        Finding("secrets", where, f"holds {found}, in plain text")
        for where, text in sorted((texts or {}).items())
        for found in keys_in(text)
    )
    return Report(subjects, unique(findings), workloads)


def verify_program(
    project: Path, catalog: Catalog, stack: str, plan_file: Path | None
) -> tuple[Report, Plan]:
    """Run the real program under mocks (as `planner preview` does) and verify its graph."""
    from planner.graph.preview import run_preview, stack_config

    result = run_preview(project, catalog, stack, plan_file)
    protect = True
    clusters = None
    if plan_file is None:
        config, _ = stack_config(project, stack)
        protect = config.get(names.CONFIG_PROTECT, "true").lower() != "false"
        plan_file = project / config[names.CONFIG_PLAN]
        # The Kubernetes sites' ranges their pools may reach (the weights' store): the stack
        # config states them, the plan does not.
        clusters = config.get(names.CONFIG_CLUSTERS)
    expect = Expectations.of(result.plan, catalog, protect, clusters)
    texts = {
        f"plan file {plan_file.name}": plan_file.read_text(encoding="utf-8"),
        "the program's log": "\n".join(result.run.logs),
    }
    report = verify(graph_from_offline(result.run), expect, result.run.outputs, texts)
    return report, result.plan


def verify_preview_file(
    path: Path,
    catalog: Catalog,
    plan: Plan | None,
    protect: bool = True,
    clusters: object = None,
) -> Report:
    """Verify a preview JSON: ours (`planner preview --json`) or a real `pulumi preview --json`.
    The Kubernetes sites' ranges (the stack config's `clusters`) are the preview's own config
    where it records them (`pulumi preview --json` writes the stack's config under "config"),
    else `clusters` (the stack config's, with --stack); without either, what the sites' pools
    may reach outside the cluster is not shown allowed (fail closed)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlannerError.single(str(path), "", "no such preview file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlannerError.single(str(path), "", f"cannot read the preview: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("steps"), list):
        raise PlannerError.single(
            str(path), "steps", "missing: expected the output of `pulumi preview --json`"
        )
    for index, step in enumerate(document["steps"]):
        if not isinstance(step, dict) or not isinstance(step.get("newState", {}), dict):
            raise PlannerError.single(str(path), f"steps[{index}]", "not a preview step")
    config = document.get("config")
    if isinstance(config, dict) and names.CONFIG_CLUSTERS in config:
        clusters = config[names.CONFIG_CLUSTERS]
    return verify(
        graph_from_preview(document, str(path)), Expectations.of(plan, catalog, protect, clusters)
    )
