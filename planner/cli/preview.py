"""`planner preview`: offline, what `pulumi preview` would create for a stack or a plan, and what
it costs."""

from __future__ import annotations

import argparse
from pathlib import Path

from planner.catalog import default_catalog
from planner.cli import options
from planner.cli.project import project_dir


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    preview = commands.add_parser(
        "preview", help="offline: what `pulumi preview` would create, and what it costs"
    )
    target = preview.add_mutually_exclusive_group()
    options.add_stack(target, default="dev", help="read Pulumi.<stack>.yaml (default dev)")
    target.add_argument("plan", nargs="?", metavar="PLAN.json", help="preview this plan instead")
    options.add_json(preview, help="the shape of `pulumi preview --json`")
    preview.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planner.graph.preview import run_preview
    from planner.render.preview_report import render_json, render_text

    project = project_dir()
    plan_file = Path(args.plan) if args.plan else None
    if plan_file is None:
        options.check_stack(args.stack)
    result = run_preview(project, default_catalog(), args.stack, plan_file)
    print(render_json(result) if args.json else render_text(result), end="")
    return 0
