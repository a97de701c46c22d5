"""`planner plan WORKLOADS`: plan.json, plan.md and the stack's config, and the plan's summary."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from planner.catalog import Catalog, default_catalog
from planner.cli import options
from planner.cli.project import check_writable, project_dir, relative_to
from planner.console import is_long, progress, warning_lines
from planner.errors import PlannerError, Problem, WarningsFailed
from planner.fmt import usd_cents
from planner.inputs.loader import load_workloads
from planner.planfile import Plan, Pool
from planner.planning.build import Strategy, build_plan
from planner.render.plan_files import (
    CONFIG_PLAN_KEY,
    ConfigChange,
    plan_json,
    plan_markdown,
    stack_config,
    stack_config_changes,
    write_all,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = commands.add_parser(
        "plan", help="plan a workloads file: plan.json, plan.md, stack config"
    )
    options.add_workloads(plan)
    options.add_stack(
        plan,
        default="dev",
        help="the Pulumi stack: plans/<stack>/ and Pulumi.<stack>.yaml (default dev)",
    )
    plan.add_argument("--out", help="output directory (default plans/<stack>/)")
    config = plan.add_mutually_exclusive_group()
    config.add_argument(
        "--no-stack-config",
        action="store_true",
        help="a what-if plan: write plan.json and plan.md only, leave Pulumi.<stack>.yaml as it is",
    )
    config.add_argument(
        "--repoint",
        action="store_true",
        help="let this plan change the plan path or aws:region of a Pulumi.<stack>.yaml that "
        "already points at a plan (without it, that is an error and nothing is written)",
    )
    plan.add_argument("--strict", action="store_true", help="fail (exit 1) on any warning")
    options.add_strategy(
        plan,
        help="optimal (default): workloads share pools where that costs less, a plan of a "
        "mixed-integer program proven within optimizer.yaml's gap of the optimum, or the best "
        "within its node limit with the gap it proves (planner/data/optimizer.yaml); "
        "per-workload: each workload decided alone (every optimal plan shows that cost too)",
    )
    options.add_time_limit(plan)
    plan.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    catalog = default_catalog()
    out = Path(args.out) if args.out else Path("plans") / args.stack
    check_writable("--out", out)
    plan, project = make_plan(
        Path(args.workloads), args.stack, catalog, args.strategy, args.time_limit
    )
    warnings = [(w.name, warning) for w in plan.workloads for warning in w.warnings]
    if args.strict and warnings:
        for line in warning_lines(warnings):
            print(line, file=sys.stderr)
        raise WarningsFailed(f"--strict: {len(warnings)} warning(s); nothing was written")
    plan_path = out / "plan.json"
    files: dict[Path, str | bytes] = {
        plan_path: plan_json(plan),
        out / "plan.md": plan_markdown(plan, catalog),
    }
    changes: list[ConfigChange] = []
    if not args.no_stack_config:
        config_path, text, changes = _stack_config_file(args, plan, project, plan_path)
        files[config_path] = text
        # A new file says nothing more than "wrote"; an existing one says what moved.
        if not config_path.exists():
            changes = []
    write_all(files)
    print(summary(plan))
    print()
    for path in files:
        print(f"wrote {relative_to(path, Path.cwd())}")
    if changes:
        shown = relative_to(project / f"Pulumi.{args.stack}.yaml", Path.cwd())
        for change in changes:
            print(f"{shown}: {_change_text(change)}", file=sys.stderr)
    for line in warning_lines(warnings):
        print(line, file=sys.stderr)
    return 0


def make_plan(
    workloads: Path,
    stack: str,
    catalog: Catalog,
    strategy: Strategy,
    time_limit: float | None = None,
) -> tuple[Plan, Path]:
    options.check_stack(stack)
    project = project_dir()
    loaded = load_workloads(workloads, catalog)
    relative = relative_to(workloads, project)
    told = announce(len(loaded.spec.workloads), strategy)
    return build_plan(loaded, catalog, stack, relative, strategy, time_limit, told), project


def announce(workloads: int, strategy: Strategy) -> Callable[[str], None] | None:
    """The optimizer takes seconds at hundreds of workloads: for a long run, where its progress
    goes (stderr), else None (a short run stays quiet)."""
    if strategy == "optimal" and is_long(workloads):
        return progress
    return None


def _stack_config_file(
    args: argparse.Namespace, plan: Plan, project: Path, plan_path: Path
) -> tuple[Path, str, list[ConfigChange]]:
    """Pulumi.<stack>.yaml with this plan, and what that changes. A stack already pointing at
    a plan is not moved to another plan or region unless --repoint says so: a what-if plan
    written to another --out would otherwise become what `pulumi up` deploys."""
    config_path = project / f"Pulumi.{args.stack}.yaml"
    existing = _existing(config_path)
    relative = relative_to(plan_path, project)
    changes = stack_config_changes(existing, config_path, plan.region, relative)
    # Points at a plan already: the plan key is there (changed or not).
    already = existing is not None and not any(
        c.key == CONFIG_PLAN_KEY and c.old is None for c in changes
    )
    if already and changes and not args.repoint:
        shown = relative_to(config_path, Path.cwd())
        problems = [
            Problem(
                f"config.{c.key}",
                f"is {c.old}; this plan would change it to {c.new}"
                if c.old is not None
                else f"is not set; this plan would set it to {c.new}",
                c.line,
            )
            for c in changes
        ]
        problems.append(
            Problem(
                "",
                "the stack already points at a plan: pass --repoint to point it at this one, or "
                "--no-stack-config to write only plan.json and plan.md (a what-if plan); "
                "nothing was written",
            )
        )
        raise PlannerError(shown, problems)
    return config_path, stack_config(existing, config_path, plan.region, relative), changes


def _existing(config_path: Path) -> str | None:
    """The stack file's text, None if there is none; one error, naming it, if it cannot be read
    (a directory in its place, not UTF-8): nothing is written then."""
    try:
        return config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlannerError.unreadable(
            relative_to(config_path, Path.cwd()),
            exc,
            "stack config file",
            "; nothing was written (--no-stack-config writes the plan alone)",
        ) from None


def _change_text(change: ConfigChange) -> str:
    if change.old is None:
        return f"{change.key} set to {change.new}"
    return f"{change.key} {change.old} -> {change.new}"


def summary(plan: Plan) -> str:
    rows = [("workload", "placement", "model", "perimeter", "USD/month")]
    for w in plan.workloads:
        rows.append(
            (
                w.name,
                w.placement,
                w.model
                + (f" x{pool.nodes} {pool.instance_type}" if (pool := _pool(plan, w.pool)) else ""),
                w.answers.data_sensitivity.perimeter.value,
                usd_cents(w.monthly_cost_usd),
            )
        )
    first_total = len(rows)
    rows.append(("total", "", "", "", usd_cents(plan.totals.monthly_cost_usd)))
    if plan.strategy == "optimal":
        rows.append(("decided one by one", "", "", "", usd_cents(plan.totals.per_workload_usd)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"Plan for {plan.organization} (stack {plan.stack}, {plan.region})"]
    for index, row in enumerate(rows):
        if index == first_total:
            lines.append("  ".join("-" * width for width in widths))
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=False)]
        lines.append("  ".join([*cells, row[4].rjust(widths[4])]).rstrip())
    return "\n".join(lines)


def _pool(plan: Plan, name: str | None) -> Pool | None:
    return next((p for p in plan.pools if p.name == name), None) if name else None
