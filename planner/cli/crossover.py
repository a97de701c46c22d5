"""`planner crossover WORKLOADS [NAME]`: the volume at which self-hosting starts to win, per
purchase option, as a table, JSON or charts."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from planner.catalog import default_catalog
from planner.cli import options
from planner.cli.project import check_writable
from planner.errors import PlannerError
from planner.inputs.loader import load_workloads
from planner.render.plan_files import write_all


def chart_file(text: str) -> Path | None:
    """--chart: an .svg or .png file name, not a directory (refused as the command's own
    error, as options.py says); an empty value draws no chart, as it always has."""
    if not text:
        return None
    chart = Path(text)
    if chart.suffix not in (".svg", ".png"):
        raise PlannerError.single("--chart", "", "give a .svg or .png file name")
    if chart.is_dir():
        raise PlannerError.single("--chart", "", f"{chart} is a directory: give a file name")
    return chart


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    crossover = commands.add_parser(
        "crossover", help="the volume at which self-hosting starts to win, per purchase option"
    )
    options.add_workloads(crossover)
    crossover.add_argument(
        "name",
        metavar="NAME",
        nargs="?",
        help="one workload (default: every workload with a self-hosted option)",
    )
    crossover.add_argument("--chart", type=chart_file, help="write a chart: FILE.svg or FILE.png")
    options.add_json(crossover, help="print JSON instead of the table (charts: stderr)")
    crossover.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planner.planning.crossover import render_json, render_table, reports, write_chart

    chart: Path | None = args.chart
    if chart is not None:
        check_writable("--chart", chart.parent)
    catalog = default_catalog()
    loaded = load_workloads(Path(args.workloads), catalog)
    found = reports(loaded, catalog, args.name)
    charts: dict[Path, str | bytes] = {}
    if chart is not None:
        # Drawn aside first, then written together: all the charts or none.
        with tempfile.TemporaryDirectory() as scratch:
            for report in found:
                path = (
                    chart if len(found) == 1 else chart.with_stem(f"{chart.stem}-{report.workload}")
                )
                if report.self_hosted is None:
                    continue  # nothing to draw: the table says why
                drawn = Path(scratch) / path.name
                write_chart(report, drawn)
                charts[path] = drawn.read_bytes()
        write_all(charts)
    print(render_json(found) if args.json else render_table(found), end="")
    for path in charts:
        # With --json stdout holds the document alone.
        print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    return 0
