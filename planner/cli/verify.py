"""`planner verify`: prove the perimeter from the resource graph (of the program run offline, or
of a preview file) and check the security rules; text, JSON or SARIF."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from planner import names
from planner.catalog import Catalog, default_catalog
from planner.cli import options
from planner.cli.project import project_dir
from planner.cli.version import version
from planner.errors import PlannerError
from planner.planfile import Plan
from planner.render.plan_files import find_project_dir

if TYPE_CHECKING:
    from planner.verification.registry import Report


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser(
        "verify",
        help="prove the perimeter from the resource graph and check the security rules",
    )
    target = verify.add_mutually_exclusive_group()
    options.add_stack(
        target,
        help="read Pulumi.<stack>.yaml (default dev); with --preview, check the preview against "
        "its plan",
    )
    target.add_argument(
        "plan", nargs="?", metavar="PLAN.json", help="verify this plan's stack instead"
    )
    verify.add_argument(
        "--preview",
        metavar="FILE",
        help="check a preview JSON (`pulumi preview --json`, `planner preview --json`) instead "
        "of running the program; with PLAN.json or --stack, also against the plan",
    )
    verify.add_argument(
        "--allow-unprotected",
        action="store_true",
        help="with --preview: a dev stack, keys and buckets need not be protected",
    )
    verify.add_argument(
        "--fail-on-unknown",
        action="store_true",
        help="exit status 1 when a rule cannot be decided (UNKNOWN: a value known only after "
        "`pulumi up`), as when it fails; without it, unknowns are reported and exit 0",
    )
    shape = verify.add_mutually_exclusive_group()
    options.add_json(shape, help="print the report as JSON")
    options.add_format(
        shape,
        choices=("text", "json", "sarif"),
        help="text (the default), json (as --json), or sarif: SARIF 2.1.0 for GitHub code "
        "scanning, each finding on the workloads file's line of its workload",
    )
    verify.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planner.planfile import check_fresh, read_plan
    from planner.render.verify_report import render_json, render_text
    from planner.verification.run import verify_preview_file, verify_program

    catalog = default_catalog()
    shape = "json" if args.json else args.format or "text"
    plan_file = Path(args.plan) if args.plan else None
    plan: Plan | None
    if args.preview:
        clusters = None
        if plan_file is None and args.stack is not None:
            # The stack's plan, as verify_program reads it: the preview must hold what it plans;
            # and its Kubernetes sites' ranges, where the preview does not record them.
            plan_file, clusters = _stack_plan(args.stack)
        plan = read_plan(plan_file) if plan_file else None
        if plan is not None and plan_file is not None:
            # As the program does before it deploys (__main__.py): the plan is what its
            # workloads file says now, or nothing of it is verified (an outside review: a plan
            # edited by hand, its hash intact, passed verify --preview).
            check_fresh(plan, plan_file, project_dir(), catalog)
        report = verify_preview_file(
            Path(args.preview), catalog, plan, protect=not args.allow_unprotected, clusters=clusters
        )
        if plan is None and not _preview_resources(Path(args.preview)):
            return _nothing_verified(Path(args.preview), report, shape)
    else:
        stack = args.stack or "dev"
        if plan_file is None:
            options.check_stack(stack)
        report, plan = verify_program(project_dir(), catalog, stack, plan_file)
    strict = args.fail_on_unknown
    if shape == "sarif":
        print(_sarif(report, plan, catalog, args.preview, strict=strict), end="")
    elif shape == "json":
        print(render_json(report, fail_on_unknown=strict), end="")
    else:
        print(render_text(report, fail_on_unknown=strict), end="")
    return 0 if report.passes(fail_on_unknown=strict) else 1


def _sarif(
    report: Report,
    plan: Plan | None,
    catalog: Catalog,
    preview: str | None,
    not_run: str = "",
    strict: bool = False,
) -> str:
    """The report as SARIF, its findings on the lines of the plan's workloads file where their
    workloads are named (the preview file, line 1, without a plan), the file named relative to
    the repository's root; with `strict` (--fail-on-unknown), an unknown is a failing result,
    as it fails the exit status."""
    from planner.inputs.loader import parse_with_lines
    from planner.render.sarif import artifact_uri, render_sarif, repository_root

    project = find_project_dir(Path.cwd()) or Path.cwd()
    root = repository_root(project)
    notes: list[str] = []
    lines: dict[str, int] = {}
    if plan is None:
        path = Path(preview or ".")
    else:
        path = project / plan.workloads_file
        try:
            text = path.read_text(encoding="utf-8")
            spec, index = parse_with_lines(text, plan.workloads_file, catalog)
            lines = {
                w.name: index.line(("workloads", i, "name")) or 1
                for i, w in enumerate(spec.workloads)
            }
        except (OSError, UnicodeDecodeError) as exc:
            notes.append(f"cannot read the workloads file {path}: {exc}: results on line 1")
        except PlannerError:
            notes.append(f"the workloads file {path} is no longer valid: results on line 1")
    uri, outside = artifact_uri(path, root)
    notes += [outside] if outside else []
    return render_sarif(
        report, uri, lines, version=version(), not_run=not_run or None, notes=notes,
        fail_on_unknown=strict,
    )  # fmt: skip


def _stack_plan(stack: str) -> tuple[Path, str | None]:
    """The plan Pulumi.<stack>.yaml names (a missing config or key is an error, exit 2), and its
    `clusters` config (the Kubernetes sites' ranges), if set."""
    from planner.graph.preview import stack_config

    options.check_stack(stack)
    project = project_dir()
    config, _ = stack_config(project, stack)
    if names.CONFIG_PLAN not in config:
        raise PlannerError.single(
            str(project / f"Pulumi.{stack}.yaml"),
            f"config.{names.CONFIG_PLAN}",
            "not set: run `planner plan`",
        )
    return project / config[names.CONFIG_PLAN], config.get(names.CONFIG_CLUSTERS)


def _preview_resources(preview: Path) -> int:
    """The resources a (readable) preview file declares, the stack itself aside."""
    from planner.graph.resources import graph_from_preview

    graph = graph_from_preview(json.loads(preview.read_text(encoding="utf-8")), str(preview))
    return sum(not r.type.startswith("pulumi:pulumi:") for r in graph.resources.values())


def _nothing_verified(preview: Path, report: Report, shape: str) -> int:
    """A preview with no resources and no plan to hold it against proves nothing: unknown is
    reported as unknown and as a failure (a FAIL line, exit 1), never as a pass."""
    reason = (
        f"nothing verified: {preview} declares no resources, and no plan says what it should "
        "hold (give PLAN.json or --stack)"
    )
    if shape == "sarif":
        print(_sarif(report, None, default_catalog(), str(preview), reason), end="")
    elif shape == "json":
        from planner.render.verify_report import render_json

        document = json.loads(render_json(report))
        document.update(passed=False, status="FAIL", verified="nothing", reason=reason)
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print(f"FAIL {reason}\nverification FAILED: nothing verified")
    return 1
