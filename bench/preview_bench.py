"""Benchmark: the offline preview of plans of 10 and 100 workloads, against a bare program that
registers the same resources (same types, names, parents and inputs) and does nothing else.

Run with `make bench`. The ratio is the cost of the program's own work (reading and checking the
plan, the lookups, building inputs, rendering user data) on top of registering the resources.
Target: at most 1.5x. Best CPU time of a few repeats, in one run; compare ratios, not seconds.

`planner verify` runs the program once more and then checks the graph: the last columns are the
check alone (graph, reachability fixpoint, rules) and its ratio to the program run.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from functools import partial
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc

from bench.plan_bench import best_of, organization
from planner import names
from planner.catalog import default_catalog
from planner.cli.app import main as planner_main
from planner.graph.offline import OfflineRun, run_program
from planner.graph.resources import graph_from_offline
from planner.planfile import read_plan
from planner.verification.expectations import Expectations
from planner.verification.run import verify

REPO = Path(__file__).resolve().parent.parent
SIZES = (10, 100)


def _plain(value: Any) -> Any:
    if rpc.is_rpc_secret(value):
        return pulumi.Output.secret(_plain(rpc.unwrap_rpc_secret(value)))
    if isinstance(value, pulumi.output.Unknown) or value is None:
        return "unknown"  # known only after apply: any value registers the same way
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _resource_class(token: str) -> type[pulumi.CustomResource]:
    """The SDK class of a resource token: `aws:ec2/vpc:Vpc` is pulumi_aws.ec2.Vpc, and a
    package's `index` module is the package itself (`random:index/randomPassword:...`)."""
    package, module, name = token.split(":")
    module = module.split("/")[0]
    path = f"pulumi_{package}" + ("" if module == "index" else f".{module}")
    cls: type[pulumi.CustomResource] = getattr(importlib.import_module(path), name)
    return cls


def bare_program(recorded: OfflineRun) -> Callable[[], None]:
    """A program that registers exactly what `recorded` registered (same resource classes, names,
    parents and inputs) with no logic of its own: no plan, no lookups, no templates, no policies."""
    resources = [
        (
            r.type, r.name, r.urn, r.parent, r.custom,
            {_snake(k): _plain(v) for k, v in r.inputs.items() if not k.startswith("__")},
        )
        for r in recorded.resources
    ]  # fmt: skip
    classes = {
        token: _resource_class(token)
        for token, *_ in resources
        if not token.startswith(f"{names.PROJECT}:")
    }

    def program() -> None:
        made: dict[str, pulumi.Resource] = {}
        for token, name, urn, parent, custom, inputs in resources:
            opts = pulumi.ResourceOptions(parent=made.get(parent))
            if custom:
                # The provider's own class, so the SDK does the same per-type work as for the
                # program's resources; only the program's logic is missing.
                made[urn] = classes[token](name, opts=opts, **inputs)
            else:
                made[urn] = pulumi.ComponentResource(token, name, None, opts)

    return program


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    gc.disable()  # as `planner` runs
    print(
        f"{'workloads':>9}  {'resources':>9}  {'program s':>9}  {'bare s':>7}  {'ratio':>5}  "
        f"{'verify s':>8}  {'verify/program':>14}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.sizes:
            project = Path(scratch) / f"org-{count}"
            project.mkdir()
            for name in ("Pulumi.yaml", "__main__.py"):
                shutil.copy(REPO / name, project / name)
            (project / "workloads.yaml").write_text(
                organization(count, seed=11, consumer_vpcs=True)
            )
            previous = Path.cwd()
            os.chdir(project)
            try:
                with (
                    open(os.devnull, "w") as devnull,
                    redirect_stdout(devnull),
                    redirect_stderr(devnull),
                ):
                    assert planner_main(["plan", "workloads.yaml", "--stack", "bench"]) == 0
            finally:
                os.chdir(previous)
            config = {names.CONFIG_PLAN: "plans/bench/plan.json", "aws:region": "us-east-1"}
            recorded = run_program(project, "bench", config)
            bare = bare_program(recorded)
            program_s = best_of(args.repeats, partial(run_program, project, "bench", config))
            bare_s = best_of(
                args.repeats, partial(run_program, project, "bench", config, program=bare)
            )
            expect = Expectations.of(
                read_plan(project / "plans/bench/plan.json"), default_catalog()
            )
            report = verify(graph_from_offline(recorded), expect, recorded.outputs)
            broken = report.failures()
            assert not broken, f"a generated stack breaks a rule: {broken[0]}"

            def check(run: OfflineRun = recorded, expected: Expectations = expect) -> object:
                return verify(graph_from_offline(run), expected, run.outputs)

            verify_s = best_of(args.repeats, check)
            print(
                f"{count:>9}  {len(recorded.resources):>9}  {program_s:>9.3f}  {bare_s:>7.3f}  "
                f"{program_s / bare_s:>5.2f}  {verify_s:>8.3f}  {verify_s / program_s:>14.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
