"""Benchmark: reporting many problems costs what validating a good file does.

good: load and validate a file of N valid workloads; bad: the same file with one problem in every
workload (a misspelt task or data class, a negative volume, a misspelt field, in turn), so
loading it reports N problems (one more for each misspelt field: the field it lacks), each with
its field, line and any "did you mean"; repeated: every workload's name given twice, N problems
found before validation. Each line is
looked up in the one node tree the file is parsed into; before, the file was parsed again for
every problem, and 1,000 bad workloads took minutes.

Run with `make bench`. Each figure is the best of a few repeats of CPU time (process_time), and
the ratio is what to compare. Target: bad/good at most 2x at 1,000 workloads.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
from functools import partial
from pathlib import Path

import yaml

from bench.plan_bench import best_of, organization
from planner.catalog import default_catalog
from planner.errors import PlannerError
from planner.inputs.loader import load_workloads

SIZES = (100, 1_000, 10_000)
# One mistake per workload, in turn: (line to find, line to put instead).
MISTAKES = (
    ("task: ", "task: summarisation"),
    ("input: ", "input: -5M"),
    ("consumers:", "consumer:"),
    ("data: ", "data: confidental"),
)


def broken(good: str) -> str:
    """Every workload of `good` with one mistake, in turn (each a validation problem)."""
    out: list[str] = []
    index = -1
    for line in good.splitlines():
        stripped = line.strip()
        if stripped.startswith("- name: "):
            index += 1
        find, instead = MISTAKES[index % len(MISTAKES)]
        if index >= 0 and stripped.startswith(find):
            line = line[: len(line) - len(stripped)] + instead
        out.append(line)
    return "\n".join(out) + "\n"


def repeated(good: str) -> str:
    """Every workload of `good` with its name given twice (refused before validation)."""
    out: list[str] = []
    for line in good.splitlines():
        out.append(line)
        if line.strip().startswith("- name: "):
            out.append(line.replace("- name: ", "  name: "))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args(argv)
    catalog = default_catalog()
    gc.disable()  # as `planner` itself runs (planner/cli/app.py main)
    print(
        f"{'workloads':>9}  {'good s':>8}  {'problems':>8}  {'bad s':>8}  {'bad/good':>8}  "
        f"{'repeated s':>10}  {'(ratio)':>7}"
    )
    reported: dict[Path, int] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.sizes:
            # Block style, as people write it (the plan benchmark's file is flow-free too).
            good_text = yaml.safe_dump(yaml.safe_load(organization(count)), sort_keys=False)
            good = Path(scratch) / f"good-{count}.yaml"
            bad = Path(scratch) / f"bad-{count}.yaml"
            twice = Path(scratch) / f"repeated-{count}.yaml"
            good.write_text(good_text, encoding="utf-8")
            bad.write_text(broken(good_text), encoding="utf-8")
            twice.write_text(repeated(good_text), encoding="utf-8")

            def refuse(p: Path) -> object:
                try:
                    load_workloads(p, catalog)
                except PlannerError as exc:
                    reported[p] = len(exc.problems)
                    return exc
                raise AssertionError(f"{p.name} loaded")

            repeats = 5 if count <= 1_000 else 1
            good_s = best_of(repeats, partial(load_workloads, good, catalog))
            bad_s = best_of(repeats, partial(refuse, bad))
            twice_s = best_of(repeats, partial(refuse, twice))
            assert reported[twice] == count
            print(
                f"{count:>9}  {good_s:>8.3f}  {reported[bad]:>8}  {bad_s:>8.3f}  "
                f"{bad_s / good_s:>8.2f}  {twice_s:>10.3f}  {twice_s / good_s:>7.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
