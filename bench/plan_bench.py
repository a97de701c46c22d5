"""Benchmark: time to plan an organization versus time to just load and validate its file.

validate: read the YAML and validate it (what any run costs before planning); plan: the same
plus the three answers for every workload (the plan in memory); plan+render: plus plan.json
and plan.md as `planner plan` writes them (less the disk writes).

Run with `make bench`. Sizes 10, 100, 1,000 and 10,000 workloads; each figure is the best of a
few repeats of CPU time (process_time: what other processes on a shared machine take is not
counted), and the ratios are what to compare, as absolute times vary from machine to machine.
Targets: planning costs at most 2x the validation at 1,000 workloads; 10,000 plan in under 10 s.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from planner.catalog import default_catalog
from planner.catalog.vocabulary import Availability, DataClass, Task
from planner.inputs.loader import load_workloads
from planner.planning.build import build_plan
from planner.render.plan_files import plan_json, plan_markdown

SIZES = (10, 100, 1_000, 10_000)


def organization(count: int, seed: int = 7, consumer_vpcs: bool = False) -> str:
    """`count` random workloads. Their callers are plain ranges, or, with `consumer_vpcs`, ranges
    in VPCs of this account that the stack connects (each consumer must have a way in for
    `planner verify` to pass: a plain range outside the stack has none)."""
    rng = random.Random(seed)
    workloads = []
    for index in range(count):
        item: dict[str, object] = {
            "name": f"workload-{index}",
            "task": rng.choice(list(Task)).value,
            "data": rng.choice(list(DataClass)).value,
            "monthly_tokens": {
                "input": f"{rng.randint(1, 5000)}M",
                "output": f"{rng.randint(1, 1000)}M",
            },
            # Callers in 172.16.0.0/12: the stack's networks come from 10.0.0.0/8.
            "consumers": [f"172.{16 + (n := rng.randint(0, 4095)) // 256}.{n % 256}.0/24"],
            "availability": rng.choice(list(Availability)).value,
        }
        if consumer_vpcs:
            cidr = f"172.{16 + n // 256}.{n % 256}.0/24"
            vpc = {"cidr": cidr, "vpc": f"vpc-{n:017x}"}
            subnets = [f"subnet-{2 * n:017x}", f"subnet-{2 * n + 1:017x}"]
            item["consumers"] = [{**vpc, "subnets": subnets}]
        if rng.random() < 0.3:
            item["request"] = {
                "input_tokens": rng.choice([1000, 4000, 30000, 250000]),
                "output_tokens": rng.choice([200, 1000, 4000]),
            }
        workloads.append(item)
    doc = {
        "organization": "bench",
        "region": "us-east-1",
        # Thousands of pools at 10,000 workloads: /22 networks (16,384 in 10.0.0.0/8).
        "network": {"pools": "10.0.0.0/22"},
        "workloads": workloads,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def best_of(repeats: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args(argv)
    catalog = default_catalog()
    gc.disable()  # as `planner` itself runs (planner/cli/app.py main): see the reason there
    print(
        f"{'workloads':>9}  {'validate s':>10}  {'plan s':>8}  {'plan/validate':>13}  "
        f"{'plan+render s':>13}  {'(ratio)':>7}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.sizes:
            path = Path(scratch) / f"org-{count}.yaml"
            path.write_text(organization(count), encoding="utf-8")
            repeats = 7 if count <= 1_000 else 2

            def validate(p: Path = path) -> object:
                return load_workloads(p, catalog)

            def plan(p: Path = path) -> object:
                return build_plan(load_workloads(p, catalog), catalog, "bench", p.name)

            def render(p: Path = path) -> object:
                made = build_plan(load_workloads(p, catalog), catalog, "bench", p.name)
                return plan_json(made), plan_markdown(made)

            plan()  # warm the catalog and price caches, as any second run of the CLI would be
            validating = best_of(repeats, validate)
            planning = best_of(repeats, plan)
            rendering = best_of(1 if count > 1_000 else repeats, render)
            print(
                f"{count:>9}  {validating:>10.3f}  {planning:>8.3f}  "
                f"{planning / validating:>13.2f}  {rendering:>13.3f}  "
                f"{rendering / validating:>7.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
