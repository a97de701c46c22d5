"""Benchmark: the exact shared-pool optimizer (`planner plan --strategy optimal`).

Organizations of 10, 100 and 1,000 generated workloads, each with the catalog's candidate pools
(model x instance type that fit; how many the exact method keeps after dropping dominated ones is
shown): the time to the exact optimum (CPU seconds, planning included) and what sharing saves
against deciding each workload alone, in one run; and, with --time-limit, the plan found in that
time and how far above the optimum it may be (the solver's proven bound). Issue 4's target is
1,000 workloads in under 5 s; see the README for where it stands.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.plan_bench import organization
from planner import optimize
from planner.catalog import Catalog, default_catalog
from planner.loader import load_workloads
from planner.plan import build_plan

SIZES = (10, 100, 1_000)


def candidates_kept(path: Path, catalog: Catalog) -> str:
    """Candidate pools the workloads may use, and how many survive the dominance pruning."""
    captured: list[int] = []
    real = optimize.dominated

    def spy(demands: list[optimize.Demand], candidates: dict[str, Any]) -> set[str]:
        gone = real(demands, candidates)
        used = {c for d in demands for c in d.candidates}
        captured.extend([len(used), len(used) - len(gone)])
        return gone

    optimize.dominated = spy
    try:
        build_plan(load_workloads(path, catalog), catalog, "b", path.name, "optimal", 0.5)
    finally:
        optimize.dominated = real
    return f"{captured[1]}/{captured[0]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument(
        "--time-limit", type=float, default=None, help="also plan with this limit (seconds)"
    )
    parser.add_argument(
        "--exact-up-to", type=int, default=100, help="the exact solve only up to this size"
    )
    args = parser.parse_args(argv)
    catalog = default_catalog()
    gc.disable()  # as `planner` runs
    print(
        f"{'workloads':>9}  {'candidates':>10}  {'pools':>5}  {'per-workload s':>14}  "
        f"{'optimal s':>9}  {'saved':>7}  {'gap':>8}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.sizes:
            path = Path(scratch) / f"org-{count}.yaml"
            path.write_text(organization(count, seed=3), encoding="utf-8")
            start = time.process_time()
            alone = build_plan(load_workloads(path, catalog), catalog, "b", path.name)
            middle = time.process_time()
            kept = candidates_kept(path, catalog)
            limits = [None] if count <= args.exact_up_to else []
            if args.time_limit is not None:
                limits.append(args.time_limit)
            for limit in limits:
                begin = time.process_time()
                shared = build_plan(
                    load_workloads(path, catalog), catalog, "b", path.name, "optimal", limit
                )
                end = time.process_time()
                saved = shared.totals.saved_by_sharing_usd / alone.totals.monthly_cost_usd
                gap = shared.totals.optimality_gap_usd / shared.totals.monthly_cost_usd
                print(
                    f"{count:>9}  {kept:>10}  {len(shared.pools):>5}  {middle - start:>14.3f}  "
                    f"{end - begin:>9.3f}  {saved:>7.1%}  {gap:>8.3%}"
                    + ("" if limit is None else f"  (--time-limit {limit:g})")
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
