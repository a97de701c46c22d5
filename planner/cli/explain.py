"""`planner explain WORKLOADS NAME`: the three answers for one workload, as the plan decides it."""

from __future__ import annotations

import argparse
from pathlib import Path

from planner.catalog import default_catalog
from planner.cli import options
from planner.cli.plan import announce
from planner.cli.project import relative_to
from planner.errors import PlannerError
from planner.inputs.loader import load_workloads
from planner.inputs.messages import did_you_mean
from planner.planning.build import build_plan
from planner.render.plan_files import find_project_dir, template_environment


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain = commands.add_parser("explain", help="the three answers for one workload")
    options.add_workloads(explain)
    explain.add_argument("name", metavar="NAME", help="the workload's name")
    options.add_strategy(explain, help="as for `planner plan` (default optimal)")
    explain.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    catalog = default_catalog()
    loaded = load_workloads(Path(args.workloads), catalog)
    names = [w.name for w in loaded.spec.workloads]
    if args.name not in names:  # before planning: a typo costs no solver run
        raise PlannerError.single(
            args.workloads,
            "workloads[].name",
            f"no workload named {args.name!r}{did_you_mean(args.name, names) or ';'} there are: "
            + ", ".join(names),
        )
    project = find_project_dir(Path.cwd()) or Path.cwd()
    told = announce(len(loaded.spec.workloads), args.strategy)
    plan = build_plan(
        loaded,
        catalog,
        "explain",
        relative_to(Path(args.workloads), project),
        args.strategy,
        progress=told,
    )
    match = next(w for w in plan.workloads if w.name == args.name)
    text = template_environment().get_template("explain.txt.j2").render(w=match, plan=plan)
    print(text.rstrip())
    return 0
