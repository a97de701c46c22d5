"""Benchmark: the exact shared-pool optimizer (`planner plan --strategy optimal`).

Organizations of 10, 100 and 1,000 generated workloads: the time to the optimum (CPU seconds,
planning included) and what sharing saves against deciding each workload alone, in one run.
Issue 4's target is 1,000 workloads in under 5 s; see the README for where it stands.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

from bench.plan_bench import organization
from planner.catalog import default_catalog
from planner.loader import load_workloads
from planner.plan import build_plan

SIZES = (10, 100, 1_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args(argv)
    catalog = default_catalog()
    gc.disable()  # as `planner` runs
    print(f"{'workloads':>9}  {'pools':>5}  {'per-workload s':>14}  {'optimal s':>9}  {'saved':>7}")
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.sizes:
            path = Path(scratch) / f"org-{count}.yaml"
            path.write_text(organization(count, seed=3), encoding="utf-8")
            start = time.process_time()
            alone = build_plan(load_workloads(path, catalog), catalog, "b", path.name)
            middle = time.process_time()
            shared = build_plan(load_workloads(path, catalog), catalog, "b", path.name, "optimal")
            end = time.process_time()
            saved = shared.totals.saved_by_sharing_usd / alone.totals.monthly_cost_usd
            print(
                f"{count:>9}  {len(shared.pools):>5}  {middle - start:>14.3f}  "
                f"{end - middle:>9.3f}  {saved:>7.1%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
