"""Benchmark: the shared-pool optimizer as `planner plan` runs it by default (strategy optimal).

Organizations of 10, 100 and 1,000 generated workloads, each with the catalog's candidate pools
(model x instance type that fit; how many survive the dominance pruning is shown). For each, in
one run: the optimizer's own time (the solve, CPU seconds) and the whole optimal plan's, their
ratio to the smallest organization's, the proven gap (how far above the optimum the plan may be,
from the solver's bound), how the solve stopped (at the gap of planner/data/optimizer.yaml, or
at its node or time limit), and what sharing saves against deciding each workload alone. With
--exact-up-to N the exact optimum (gap 0) is timed too up to N workloads, for comparison.

Issue 14's target: at 1,000 workloads a plan proven within 0.1 % of the optimum in under 10 s
on the project's machine. CPU seconds (process_time) leave out what other processes on a shared
machine take; wall seconds are shown beside them.
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
from planner.catalog import default_catalog
from planner.inputs.loader import load_workloads
from planner.planning import optimize
from planner.planning.build import build_plan

SIZES = (10, 100, 1_000)


class SolveSpy:
    """Wraps optimize.solve: the solve's CPU time, and the candidates kept after pruning."""

    def __init__(self) -> None:
        self.real_solve = optimize.solve
        self.real_dominated = optimize.dominated
        self.seconds = 0.0
        self.kept = ""

    def __enter__(self) -> SolveSpy:
        def solve(*args: Any, **kwargs: Any) -> optimize.Solution:
            start = time.process_time()
            try:
                return self.real_solve(*args, **kwargs)
            finally:
                self.seconds = time.process_time() - start

        def dominated(demands: list[optimize.Demand], candidates: dict[str, Any]) -> set[str]:
            gone = self.real_dominated(demands, candidates)
            used = {c for d in demands for c in d.candidates}
            self.kept = f"{len(used) - len(gone)}/{len(used)}"
            return gone

        optimize.solve = solve
        optimize.dominated = dominated
        return self

    def __exit__(self, *exc: object) -> None:
        optimize.solve = self.real_solve
        optimize.dominated = self.real_dominated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument(
        "--time-limit", type=float, default=None, help="instead of optimizer.yaml's limit"
    )
    parser.add_argument(
        "--exact-up-to", type=int, default=0, help="also time the exact optimum up to this size"
    )
    args = parser.parse_args(argv)
    catalog = default_catalog()
    gc.disable()  # as `planner` runs
    print(
        f"{'workloads':>9}  {'candidates':>10}  {'pools':>5}  {'solve s':>8}  {'x':>6}  "
        f"{'plan s':>7}  {'wall s':>7}  {'gap USD':>10}  {'gap':>7}  {'stopped by':>10}  "
        f"{'saved':>6}"
    )
    first: float | None = None
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.sizes:
            path = Path(scratch) / f"org-{count}.yaml"
            path.write_text(organization(count, seed=3), encoding="utf-8")
            loaded = load_workloads(path, catalog)
            with SolveSpy() as spy:
                begin, wall = time.process_time(), time.perf_counter()
                shared = build_plan(loaded, catalog, "b", path.name, "optimal", args.time_limit)
                end, wall_end = time.process_time(), time.perf_counter()
            totals = shared.totals
            first = first if first is not None else spy.seconds
            ratio = spy.seconds / first if first else 0.0
            stopped = (
                "time limit"
                if totals.optimizer_stopped_by_time_limit
                else "node limit"
                if totals.optimizer_stopped_by_node_limit
                else "gap"
            )
            print(
                f"{count:>9}  {spy.kept:>10}  {len(shared.pools):>5}  {spy.seconds:>8.3f}  "
                f"{ratio:>5.0f}x  {end - begin:>7.3f}  {wall_end - wall:>7.3f}  "
                f"{totals.optimality_gap_usd:>10,.2f}  "
                f"{totals.optimality_gap_usd / totals.monthly_cost_usd:>7.4%}  {stopped:>10}  "
                f"{totals.saved_by_sharing_usd / totals.per_workload_usd:>6.1%}"
            )
            if count <= args.exact_up_to:
                exact_catalog = catalog.model_copy(
                    update={
                        "optimizer": catalog.optimizer.model_copy(
                            update={"gap": catalog.optimizer.gap.model_copy(update={"value": 0.0})}
                        )
                    }
                )
                with SolveSpy() as spy:
                    exact = build_plan(loaded, exact_catalog, "b", path.name, "optimal", 600.0)
                above = shared.totals.monthly_cost_usd - exact.totals.monthly_cost_usd
                print(
                    f"{'':>9}  exact optimum: solve {spy.seconds:.3f} s; the default plan is "
                    f"{above:,.2f} USD ({above / exact.totals.monthly_cost_usd:.4%}) above it"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
