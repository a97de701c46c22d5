"""Shared self-hosted pools: a mixed-integer program solved by HiGHS (scipy).

Each workload goes either to its cheapest admissible cloud API or to a pool of one self-hosted
candidate (model on an instance type) that its tier, perimeter and pin admit. A pool's units are
integers; the workloads in it must fit (their loads, and their peaks, add up to at most the
units) and a pool has at least the largest minimum of its workloads (two units for
`availability: high`). The objective is the total monthly cost.

The solve stops when its plan is proven within a relative gap of the optimum (the solver's
bound; 0 asks for the exact optimum), or at a time limit. The gap stop is deterministic: HiGHS
explores the same nodes in the same order for the same program, so the same inputs give the same
plan. Only a time limit that stops the solve first can make a rerun differ, and the solution
says when it did. The plan is never worse than each workload's cheapest option alone, with pools
of one candidate merged (`alone_assignment`): the solver's plan is kept only when it costs less.

One module of about 700 lines, on purpose: it is one model and its solve. The program's
variables and constraints (`solve`), the exact pricing its answer is checked against
(`total_cost`, `alone_assignment`), the moves among equal-cost optima (`_prefer_smaller`,
`_prefer_alone_api`) and the repair that keeps a cluster site within its nodes
(`_within_limits`) all read the same layout of demands, pools and shared access; apart, each
would have to restate it.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from planner.fmt import percent, usd
from planner.planning.candidates import SelfHostedCandidate

# Loads are floats: a load that is a whole number of units up to rounding fits that many units,
# as in costing.units_needed.
_SLACK = 1e-9
_NEGLIGIBLE = 1e-6
# HiGHS's own tolerance first (fast), then a tight one when its plan, priced exactly, costs more
# than it said: at 1e-6 it took 1.000001 units as a whole one and let a workload of load 1e-6
# into a full pool (the brute-force test found an "optimum" 1 USD above the true one). The
# retry depends only on the program, so the same inputs still give the same plan.
_FEASIBILITY_TOLERANCES: tuple[float | None, ...] = (None, 1e-9)


@dataclass(frozen=True)
class Demand:
    """What one workload asks of the optimizer."""

    name: str
    # provider access id -> the usage cost of the workload's cheapest admissible API there
    apis: dict[str, float]
    # candidate option id -> (load, peak, KV cache) in units (costing.unit_load)
    candidates: dict[str, tuple[float, ...]]
    min_units: int


@dataclass(frozen=True)
class Shared:
    """A fixed monthly cost paid once if any workload uses it: a provider's access (its key,
    its PrivateLink endpoint) or a boundary several providers share (the egress network)."""

    fixed_usd: float
    parent: str | None = None


@dataclass(frozen=True)
class Solution:
    # workload -> candidate option id, or the provider access id of its API
    assignment: dict[str, str]
    units: dict[str, int]  # candidate option id -> units of the pool
    total_usd: float
    # How far above the optimum the solution may be, proven by the solver's bound (0: the exact
    # optimum).
    gap_usd: float = 0.0
    # A time limit stopped the solve before the gap was proven: a rerun may differ.
    stopped_by_time_limit: bool = False
    # The node limit stopped it first: deterministic, the same program gives the same plan.
    stopped_by_node_limit: bool = False


def units_for(loads: list[tuple[float, ...]], min_units: int) -> int:
    """Units a pool needs for these loads (each part adds up on its own): what
    costing.units_needed does for one."""
    if not loads:
        return 0
    totals: list[float] = [sum(part) for part in zip(*loads, strict=True)]
    return max([min_units, *(math.ceil(total - _SLACK) for total in totals)])


def dominated(demands: list[Demand], candidates: dict[str, SelfHostedCandidate]) -> set[str]:
    """Candidates no optimum needs: c is dominated by c' when every workload that may use c may
    use c' with no more load or peak, and a unit of c' costs no more. Moving a pool of c, whole,
    onto c' then never costs more (ceil(a + b) <= ceil(a) + ceil(b), and the minimums hold), so
    dropping c keeps an optimum. Of two equivalent candidates the larger model goes."""

    def size(c: str) -> tuple[float, str]:
        return (candidates[c].capacity.fit.weights_gb, c)

    used = sorted({c for d in demands for c in d.candidates})
    users = {c: [d for d in demands if c in d.candidates] for c in used}
    gone: set[str] = set()
    for c in used:
        for other in used:
            # A pool moved onto a target of limited nodes (a cluster) may not fit there.
            if other == c or other in gone or candidates[other].target.max_nodes is not None:
                continue
            cost_c = candidates[c].unit_monthly_usd
            cost_other = candidates[other].unit_monthly_usd
            if cost_other > cost_c or candidates[other].fixed_usd > candidates[c].fixed_usd:
                continue
            covers = all(
                other in d.candidates
                and all(
                    mine <= theirs
                    for mine, theirs in zip(d.candidates[other], d.candidates[c], strict=True)
                )
                for d in users[c]
            )
            if not covers:
                continue
            equivalent = (
                cost_other == cost_c
                and candidates[other].fixed_usd == candidates[c].fixed_usd
                and all(d.candidates[other] == d.candidates[c] for d in users[c])
                and {d.name for d in users[other]} == {d.name for d in users[c]}
            )
            if equivalent and size(other) > size(c):
                continue
            gone.add(c)
            break
    return gone


def _apis_kept(apis: dict[str, float], shared: dict[str, Shared]) -> dict[str, float]:
    """A workload's APIs that an optimum may need. API p is dropped when another API q costs no
    more with all of q's fixed costs paid (its access and the boundary it sits behind): moving
    the workload from p to q then never raises the total, since leaving p can only close what p
    opened. Of two that tie, the first in sort order stays."""

    def fixed(p: str) -> float:
        return _fixed_usd(shared, _opens(shared, p))

    return {
        p: apis[p]
        for p in sorted(apis)
        if not any(
            apis[q] + fixed(q) < apis[p] or (apis[q] + fixed(q) == apis[p] and q < p)
            for q in apis
            if q != p
        )
    }


def solve(
    demands: list[Demand],
    candidates: dict[str, SelfHostedCandidate],
    shared: dict[str, Shared] | None = None,
    time_limit: float | None = None,
    rel_gap: float = 0.0,
    progress: Callable[[str], None] | None = None,
    node_limit: int | None = None,
    solver_options: dict[str, int | float] | None = None,
    start: dict[str, str] | None = None,
) -> Solution:
    """The assignment of least total cost, within `rel_gap` of the optimum (0: exactly). A pool
    costs its units and, once open, its fixed cost (staff, network); an API its usage and, once
    any workload uses it, the fixed costs of its access and of the boundary it sits behind
    (`shared`). `progress` hears what the solve is doing while it runs (the CLI: stderr).
    `solver_options` go to HiGHS as they are (option name -> value of the option's type:
    catalog.OptimizerSettings.highs_options). `start`: a plan within every cluster's nodes that
    the solver's must beat (the workloads decided one at a time, sites filled in order), where
    each workload alone might overfill one."""
    shared = shared or {}
    original = demands
    started = time.monotonic()
    gone = dominated(demands, candidates)
    demands = [
        Demand(
            d.name,
            _apis_kept(d.apis, shared),
            {c: load for c, load in d.candidates.items() if c not in gone},
            d.min_units,
        )
        for d in demands
    ]
    used = sorted({c for d in demands for c in d.candidates})
    groups = sorted(
        {p for d in demands for p in d.apis}
        | {parent for p in {p for d in demands for p in d.apis} if (parent := _parent(shared, p))}
    )
    pairs = [(w, c) for w, d in enumerate(demands) for c in sorted(d.candidates)]
    api_pairs = [(w, p) for w, d in enumerate(demands) for p in sorted(d.apis)]
    n_pairs, n_api = len(pairs), len(api_pairs)
    unit_index = {c: n_pairs + n_api + i for i, c in enumerate(used)}
    open_index = {c: n_pairs + n_api + len(used) + i for i, c in enumerate(used)}
    group_index = {g: n_pairs + n_api + 2 * len(used) + i for i, g in enumerate(groups)}
    n_vars = n_pairs + n_api + 2 * len(used) + len(groups)

    # The objective is the monthly cost alone. (A tie-break term toward smaller models made the
    # solver ~10x slower at 1,000 workloads: `_prefer_smaller` does that after the optimum.)
    cost = np.zeros(n_vars)
    for i, (w, p) in enumerate(api_pairs):
        cost[n_pairs + i] = demands[w].apis[p]
    upper = np.ones(n_vars)
    for c in used:
        cost[unit_index[c]] = candidates[c].unit_monthly_usd
        cost[open_index[c]] = candidates[c].fixed_usd
    for g in groups:
        cost[group_index[g]] = shared[g].fixed_usd if g in shared else 0.0
    # A pool never needs more units than its workloads would alone.
    alone = dict.fromkeys(used, 0)
    for d in demands:
        for c, load in d.candidates.items():
            alone[c] += units_for([load], d.min_units)
    for c in used:
        upper[unit_index[c]] = max(alone[c], 1)

    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    lower_bounds: list[float] = []
    upper_bounds: list[float] = []

    def row(entries: list[tuple[int, float]], lo: float, hi: float) -> None:
        index = len(lower_bounds)
        for col, value in entries:
            rows.append(index)
            cols.append(col)
            values.append(value)
        lower_bounds.append(lo)
        upper_bounds.append(hi)

    # Every workload is placed exactly once.
    by_workload: dict[int, list[tuple[int, float]]] = {}
    for i, (w, _) in enumerate(pairs):
        by_workload.setdefault(w, []).append((i, 1.0))
    for i, (w, _) in enumerate(api_pairs):
        by_workload.setdefault(w, []).append((n_pairs + i, 1.0))
    for w in range(len(demands)):
        row(by_workload[w], 1.0, 1.0)
    # Loads, peaks and KV caches fit the units; each workload's minimum holds.
    parts = max((len(load) for d in demands for load in d.candidates.values()), default=0)
    for c in used:
        members = [(i, demands[w].candidates[c]) for i, (w, cc) in enumerate(pairs) if cc == c]
        for part in _binding_parts([load for _, load in members], parts):
            # Loads below _NEGLIGIBLE of a unit are left out of the rows: such coefficients
            # are below the solver's numerical tolerances and made HiGHS return wrong optima.
            entries = [(i, load[part]) for i, load in members if load[part] >= _NEGLIGIBLE]
            if entries:
                row([*entries, (unit_index[c], -1.0)], -np.inf, _SLACK)
        # Units only in an open pool.
        row([(unit_index[c], 1.0), (open_index[c], -upper[unit_index[c]])], -np.inf, 0.0)
    for i, (w, c) in enumerate(pairs):
        row([(i, float(demands[w].min_units)), (unit_index[c], -1.0)], -np.inf, 0.0)
        # A workload only in an open pool: the fixed cost counts whole in the relaxation too.
        row([(i, 1.0), (open_index[c], -1.0)], -np.inf, 0.0)
    # A target of limited nodes (a cluster site): its pools' nodes together within them.
    for name, most in sorted(_limits(candidates, used).items()):
        row(
            [
                (unit_index[c], float(candidates[c].capacity.nodes_per_unit))
                for c in used
                if candidates[c].target.name == name
            ],
            -np.inf,
            float(most),
        )
    # An API's use opens its access, and that its boundary.
    for i, (_, p) in enumerate(api_pairs):
        row([(n_pairs + i, 1.0), (group_index[p], -1.0)], -np.inf, 0.0)
    for g in groups:
        parent = _parent(shared, g)
        if parent is not None:
            row([(group_index[g], 1.0), (group_index[parent], -1.0)], -np.inf, 0.0)

    matrix = coo_array((values, (rows, cols)), shape=(len(lower_bounds), n_vars)).tocsr()
    if progress is not None:
        stop = (
            f"a plan proven within {percent(rel_gap, 2)} of the optimum"
            if rel_gap
            else "the optimum"
        )
        limit = f", or {time_limit:g} s" if time_limit is not None else ""
        progress(
            f"optimizer: {len(demands):,} workloads, {len(used)} candidate pools kept of "
            f"{len(used) + len(gone)} ({n_vars:,} variables, {len(lower_bounds):,} constraints); "
            f"solving until {stop}{limit}..."
        )
    # Each workload's cheapest option alone, pools of one candidate merged: always feasible, and
    # what the solver's plan must beat (a time limit may stop it before it finds anything).
    fallback = dict(start) if start is not None else alone_assignment(original, candidates, shared)
    fallback_units = _prefer_smaller(original, fallback, candidates)
    fallback_units = _within_limits(original, fallback, fallback_units, candidates, shared)
    fallback_total = total_cost(original, fallback, fallback_units, candidates, shared)
    for tolerance in _FEASIBILITY_TOLERANCES:
        # scipy warns that it passes HiGHS's own option names on verbatim, as meant.
        with (
            _solver_output_discarded(),
            _heartbeat(progress, started, time_limit),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", RuntimeWarning)
            result = milp(
                cost,
                constraints=LinearConstraint(matrix, lower_bounds, upper_bounds),
                integrality=np.ones(n_vars),
                bounds=Bounds(np.zeros(n_vars), upper),
                # Presolve off: HiGHS's presolve (scipy 1.17.1) returned a wrong "optimal"
                # answer on a four-workload case the brute-force test found
                # (tests/test_optimize.py).
                options={"mip_rel_gap": rel_gap, "presolve": False}
                | (solver_options or {})
                | ({"mip_feasibility_tolerance": tolerance} if tolerance else {})
                | ({"time_limit": time_limit} if time_limit is not None else {})
                | ({"node_limit": node_limit} if node_limit is not None else {}),
            )
        assignment, units, total = fallback, fallback_units, fallback_total
        # The solver's plan, priced exactly, costs more than it said: its tolerances let a load
        # past a full pool.
        mispriced = False
        adopted = False
        if result.x is not None:
            x = np.round(result.x).astype(int)
            found: dict[str, str] = {}
            for i, (w, c) in enumerate(pairs):
                if x[i]:
                    found[demands[w].name] = c
            for i, (w, p) in enumerate(api_pairs):
                if x[n_pairs + i]:
                    found[demands[w].name] = p
            # Over every candidate, the dominated too: a smaller model of the same cost that
            # the pruning dropped still gets the work (README: the smallest model first).
            found_units = _prefer_smaller(original, found, candidates)
            _prefer_alone_api(original, found, fallback, shared)
            found_total = total_cost(demands, found, found_units, candidates, shared)
            said = result.get("fun")
            mispriced = said is not None and found_total > float(said) + 1e-9 * max(
                1.0, found_total
            )
            # Never a plan that overfills a cluster; one that fits beats a fallback that does not.
            fits = not overfull(found_units, candidates)
            if fits and (found_total <= fallback_total or overfull(units, candidates)):
                assignment, units, total = found, found_units, found_total
                adopted = True
        if not mispriced:
            break
    # status 0: optimal within rel_gap; 1: a limit stopped it (its bound still holds).
    bound = result.get("mip_dual_bound")
    # No bound (stopped before the first relaxation): costs are never negative, so 0 is one.
    bound = float(bound) if bound is not None and math.isfinite(bound) else 0.0
    if result.status == 0 and rel_gap == 0.0 and adopted and not mispriced:
        bound = total  # proven optimal: rounding of the solver's bound is no gap
    # scipy reports a time limit as status 1 ("Time limit reached"); HiGHS's node limit comes
    # through as a status scipy does not map. Either way the solver's bound still holds.
    by_nodes = (
        result.status != 0
        and node_limit is not None
        and "time limit" not in str(result.message).lower()
    )
    solution = Solution(
        assignment,
        units,
        total,
        max(0.0, total - bound),
        stopped_by_time_limit=result.status != 0 and not by_nodes,
        stopped_by_node_limit=by_nodes,
    )
    if progress is not None:
        how = (
            "stopped by the time limit"
            if solution.stopped_by_time_limit
            else "stopped by the node limit"
            if solution.stopped_by_node_limit
            else "done"
        )
        share = solution.gap_usd / total if total else 0.0
        progress(
            f"optimizer: {how} after {time.monotonic() - started:.1f} s: {usd(total)} a "
            f"month, at most {usd(solution.gap_usd)} ({percent(share, 3)}) above the optimum"
        )
    return solution


# Seconds between the lines that say a long solve is still running.
HEARTBEAT_S = 5.0


@contextmanager
def _heartbeat(
    progress: Callable[[str], None] | None, started: float, time_limit: float | None
) -> Iterator[None]:
    """While the solver runs (it gives no callback through scipy), a line every HEARTBEAT_S
    seconds that it still does: a user waiting on a large organization sees it is alive."""
    if progress is None:
        yield
        return
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_S):
            limit = f" of the {time_limit:g} s limit" if time_limit is not None else ""
            progress(f"optimizer: still solving, {time.monotonic() - started:.0f} s{limit}")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def alone_assignment(
    demands: list[Demand],
    candidates: dict[str, SelfHostedCandidate],
    shared: dict[str, Shared],
) -> dict[str, str]:
    """Each workload where it costs least on its own: an API with its access and boundary, or
    a pool of its own (ties to the first in sort order). Workloads of one candidate then share
    its pool, which costs no more than their pools apart."""

    return {
        d.name: min(
            sorted([*d.candidates, *d.apis]),
            key=lambda choice: _alone_usd(d, choice, candidates, shared),
        )
        for d in demands
    }


@contextmanager
def _solver_output_discarded() -> Iterator[None]:
    """File descriptor 1 points at /dev/null while the solver runs.

    HiGHS (scipy 1.17.1) writes debugging lines from C++ straight to the process's stdout
    (`HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();` when a time limit
    stops a large solve) whatever `disp` says, and they landed on top of the plan's summary.
    Python's sys.stdout is flushed first so nothing of ours is lost, and C's stdio buffer before
    fd 1 is given back so nothing of the solver's leaks out later."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no fd 1 (closed, or a detached stream): nothing to guard
        yield
        return
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 1)
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(sink)


def _flush_c_stdio() -> None:
    # Without a C library to flush (not POSIX) there is nothing buffered to lose.
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).fflush(None)


def _limits(candidates: dict[str, SelfHostedCandidate], used: list[str]) -> dict[str, int]:
    """Target -> the nodes its pools may use together, for the targets that limit them."""
    return {
        target.name: target.max_nodes
        for c in used
        if (target := candidates[c].target).max_nodes is not None
    }


def overfull(units: dict[str, int], candidates: dict[str, SelfHostedCandidate]) -> dict[str, int]:
    """Target -> the nodes its pools use past its limit, for each target they overfill."""
    used: dict[str, int] = {}
    for c, count in units.items():
        used[candidates[c].target.name] = (
            used.get(candidates[c].target.name, 0) + count * candidates[c].capacity.nodes_per_unit
        )
    limits = _limits(candidates, sorted(units))
    return {t: used[t] - limit for t, limit in sorted(limits.items()) if used[t] > limit}


def _within_limits(
    demands: list[Demand],
    assignment: dict[str, str],
    units: dict[str, int],
    candidates: dict[str, SelfHostedCandidate],
    shared: dict[str, Shared],
) -> dict[str, int]:
    """Each workload alone may fill a cluster past its nodes: move workloads off an overfull
    target, the one whose move costs least first, to where each costs least alone of the
    options off it (an API, or a pool elsewhere), until every target fits (a workload whose
    only options are there stays, and the plan then refuses). Updates `assignment` in place;
    returns the units of each pool."""
    moves = 0
    # Each move takes a workload off a full target and frees some of its nodes; a bound keeps
    # two sites from trading one.
    while (over := overfull(units, candidates)) and moves < len(demands) * (len(over) + 1):
        moves += 1
        excess = sum(over.values())
        best: tuple[float, str, str] | None = None
        for d in sorted(demands, key=lambda d: d.name):
            current = assignment[d.name]
            if current not in d.candidates or candidates[current].target.name not in over:
                continue
            for choice in sorted([*d.candidates, *d.apis]):
                if choice in d.candidates and candidates[choice].target.name in over:
                    continue
                moved = _units(demands, {**assignment, d.name: choice})
                freed = excess - sum(overfull(moved, candidates).values())
                if freed <= 0:  # a pool that stays as large frees nothing
                    continue
                extra = _alone_usd(d, choice, candidates, shared) - _alone_usd(
                    d, current, candidates, shared
                )
                if best is None or (extra / freed, d.name, choice) < best:
                    best = (extra / freed, d.name, choice)
        if best is None:
            break
        assignment[best[1]] = best[2]
        units = _prefer_smaller(demands, assignment, candidates)
    return units


def _units(demands: list[Demand], assignment: dict[str, str]) -> dict[str, int]:
    """The units of each pool of an assignment, as it stands."""
    members: dict[str, list[Demand]] = {}
    for d in demands:
        if assignment[d.name] in d.candidates:
            members.setdefault(assignment[d.name], []).append(d)
    return {
        c: units_for([m.candidates[c] for m in group], max(m.min_units for m in group))
        for c, group in members.items()
    }


def _alone_usd(
    d: Demand, choice: str, candidates: dict[str, SelfHostedCandidate], shared: dict[str, Shared]
) -> float:
    """What a workload costs on this choice alone: an API with its access and boundary, or a
    pool of its own."""
    if choice in d.apis:
        return d.apis[choice] + _fixed_usd(shared, _opens(shared, choice))
    c = candidates[choice]
    return units_for([d.candidates[choice]], d.min_units) * c.unit_monthly_usd + c.fixed_usd


def _parent(shared: dict[str, Shared], group: str) -> str | None:
    return shared[group].parent if group in shared else None


def _opens(shared: dict[str, Shared], api: str) -> list[str]:
    """What using an API opens: its access, and the boundary it sits behind if any."""
    parent = _parent(shared, api)
    return [api] if parent is None else [api, parent]


def _fixed_usd(shared: dict[str, Shared], groups: list[str]) -> float:
    return sum(shared[g].fixed_usd for g in groups if g in shared)


def total_cost(
    demands: list[Demand],
    assignment: dict[str, str],
    units: dict[str, int],
    candidates: dict[str, SelfHostedCandidate],
    shared: dict[str, Shared],
) -> float:
    """What an assignment costs a month: pools, API usage, and each access and boundary used."""
    pools = sum(units[c] * candidates[c].unit_monthly_usd + candidates[c].fixed_usd for c in units)
    usage = sum(d.apis[assignment[d.name]] for d in demands if assignment[d.name] in d.apis)
    opened = {assignment[d.name] for d in demands if assignment[d.name] in d.apis}
    opened |= {parent for g in opened if (parent := _parent(shared, g))}
    return pools + usage + sum(shared[g].fixed_usd for g in opened if g in shared)


def _prefer_smaller(
    demands: list[Demand],
    assignment: dict[str, str],
    candidates: dict[str, SelfHostedCandidate],
) -> dict[str, int]:
    """Among equal-cost optima, the smaller model (the smallest model that solves the problem
    first): move a whole pool onto a smaller model where that costs no more, then a workload to
    an open pool of a smaller model that has room for it as it stands. No move raises the total,
    so the optimum stays optimal.
    Updates `assignment` in place; returns the units of each pool."""
    members: dict[str, dict[str, Demand]] = {}
    for d in demands:
        chosen = assignment[d.name]
        if chosen in d.candidates:
            members.setdefault(chosen, {})[d.name] = d

    def units_of(c: str, group: dict[str, Demand]) -> int:
        return units_for(
            [m.candidates[c] for m in group.values()],
            max((m.min_units for m in group.values()), default=0),
        )

    units = {c: units_of(c, group) for c, group in members.items()}

    def size(c: str) -> tuple[float, str]:
        return (candidates[c].capacity.fit.weights_gb, c)

    def price(c: str, count: int) -> float:
        return count * candidates[c].unit_monthly_usd + (candidates[c].fixed_usd if count else 0)

    # Whole pools first, larger models first: onto a smaller model every member may use, when
    # that costs no more (alone there, or merged into its open pool).
    for current in sorted(members, key=size, reverse=True):
        group = members.get(current)
        if not group:
            continue
        allowed = set.intersection(*(set(d.candidates) for d in group.values()))
        for target in sorted((c for c in allowed if size(c) < size(current)), key=size):
            merged = {**members.get(target, {}), **group}
            after = units_of(target, merged)
            before = price(current, units[current]) + price(target, units.get(target, 0))
            if price(target, after) > before:
                continue
            moved = {c: n for c, n in units.items() if c != current} | {target: after}
            if overfull(moved, candidates):  # a cluster has no room for the pool
                continue
            for name in group:
                assignment[name] = target
            members[target], units[target] = merged, after
            del members[current], units[current]
            break

    for d in sorted(demands, key=lambda d: d.name):
        current = assignment[d.name]
        if current not in members:
            continue
        for target in sorted((c for c in d.candidates if c in units), key=size):
            if size(target) >= size(current):
                break
            if units_of(target, {**members[target], d.name: d}) > units[target]:
                continue
            del members[current][d.name]
            members[target][d.name] = d
            assignment[d.name] = target
            units[current] = units_of(current, members[current])
            if not members[current]:
                del members[current], units[current]
            break
    return units


def _prefer_alone_api(
    demands: list[Demand],
    assignment: dict[str, str],
    alone: dict[str, str],
    shared: dict[str, Shared],
) -> None:
    """Among equal-cost optima, a workload on an API goes to the API it would use alone (its
    cheapest, ties to the first in sort order) where that costs no more: the same usage, and
    the access it opens no dearer than what leaving the other closes. Which of two equal APIs
    the solver returns depends on the whole program, so without this a tie flipped with changes
    elsewhere in the plan. Updates `assignment` in place; never raises the total."""
    users: dict[str, int] = {}
    for d in demands:
        if assignment[d.name] in d.apis:
            for g in _opens(shared, assignment[d.name]):
                users[g] = users.get(g, 0) + 1

    for d in sorted(demands, key=lambda d: d.name):
        current, wanted = assignment[d.name], alone.get(d.name)
        if current not in d.apis or wanted is None or wanted == current or wanted not in d.apis:
            continue
        if d.apis[wanted] > d.apis[current]:
            continue
        before, after = _opens(shared, current), _opens(shared, wanted)
        leaving = [g for g in before if g not in after]
        joining = [g for g in after if g not in before]
        closed = _fixed_usd(shared, [g for g in leaving if users.get(g, 0) == 1])
        opened = _fixed_usd(shared, [g for g in joining if users.get(g, 0) == 0])
        if d.apis[wanted] - d.apis[current] + opened - closed > 0:
            continue
        for g in leaving:
            users[g] -= 1
        for g in joining:
            users[g] = users.get(g, 0) + 1
        assignment[d.name] = wanted


def _binding_parts(loads: list[tuple[float, ...]], parts: int) -> list[int]:
    """The parts of a pool's loads that need a row: a part no larger than another part for
    every workload is implied by that part's row (fewer rows, a faster solve, same optimum)."""
    kept = []
    for part in range(parts):
        implied = any(
            other != part
            and all(load[part] <= load[other] for load in loads)
            # Of two equal parts, the first keeps its row.
            and (other < part or any(load[part] < load[other] for load in loads))
            for other in range(parts)
        )
        if not implied:
            kept.append(part)
    return kept
