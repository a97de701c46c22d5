"""Where self-hosting costs less than an API: the cost lines of a pool and of the APIs, every
volume where the cheaper side changes, and the break-even a workload's answers show."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

from planner import costing
from planner.fmt import tokens_text, usd
from planner.inputs.workloads import Workload
from planner.planfile import BreakEven, Option, Placement
from planner.planfile import Crossing as ModelCrossing
from planner.planning.candidates import SelfHostedCandidate
from planner.planning.context import Context
from planner.planning.demand import (
    availability_floor,
    kv_held_tokens,
    limits_at,
    longest_request,
    request_shape,
    shape_of,
)

CHART_POINTS = 9
# Steps of the self-hosted line a chart draws at most (two points each).
STEP_EDGES = 24


def output_share(ctx: Context, workload: Workload) -> float:
    """Output tokens' share of the workload's tokens (of a request's, with no volume yet)."""
    tokens = workload.monthly_tokens
    if tokens.total > 0:
        return tokens.output / tokens.total
    request_in, request_out = request_shape(ctx, workload)
    return request_out / (request_in + request_out)


def api_usd_per_token(ctx: Context, api_id: str, workload: Workload, share: float) -> float:
    """An API's price per token at the workload's request shape and input/output mix."""
    request_in, request_out = request_shape(ctx, workload)
    price = ctx.api_quote(api_id, ctx.catalog.api_models[api_id], request_in, request_out).price
    input_price = costing.api_input_usd_per_mtok(
        price, workload.cached_input_fraction or 0.0, workload.cache_write_fraction or 0.0
    )
    return ((1 - share) * input_price + share * price.output_usd_per_mtok) / costing.MILLION


def unit_tokens(
    ctx: Context, candidate: SelfHostedCandidate, workload: Workload, share: float
) -> float:
    """Tokens a month one unit serves at this input/output mix and the workload's request
    shape, within both of its rates at the utilization."""
    limits = limits_at(ctx, candidate, shape_of(ctx, workload)).limits
    by_output = limits.output_tokens_per_month / share if share > 0 else float("inf")
    return min(by_output, limits.total_tokens_per_month)


def minimum_units(ctx: Context, candidate: SelfHostedCandidate, workload: Workload) -> int:
    """Units the workload needs at any volume: its availability floor, and its peak."""
    floor = availability_floor(workload)
    if workload.peak_tokens_per_second is None and workload.concurrency is None:
        return floor
    # At any volume: the peak and the requests in flight the workload states (Demand.kv_tokens).
    kv_tokens = 0.0
    if workload.concurrency is not None:
        kv_tokens = workload.concurrency * kv_held_tokens(ctx, *request_shape(ctx, workload))
    return costing.units_needed(
        limits_at(ctx, candidate, shape_of(ctx, workload)).limits,
        0,
        0,
        workload.peak_tokens_per_second,
        floor,
        kv_tokens,
    )


def own_option(ctx: Context, options: Sequence[Option]) -> Option | None:
    """The self-hosted option a workload's plan would pick among its admissible ones: the
    cheapest, then the smaller model, then by id (as `decide` orders them). The break-even in
    plan.md and `planner crossover` both compare this one."""
    return min(
        (o for o in options if o.placement == "self_hosted"),
        key=lambda o: (o.monthly_cost_usd, ctx.model_sizes[o.model], o.id),
        default=None,
    )


def admissible_apis(options: Sequence[Option]) -> list[str]:
    """The API models among a workload's admissible options (its tier, perimeter, pin, window)."""
    return sorted(o.model for o in options if o.placement == "cloud_api")


def _crossings_text(crossings: Sequence[Crossing], api: str, own: str) -> str:
    """'cheaper again from ...' for the crossings after the first."""
    parts = [
        f"{api if c.placement == 'cloud_api' else own} is cheaper again from "
        f"{tokens_text(c.monthly_tokens)}"
        for c in crossings[1:]
    ]
    return "; ".join(parts)


def break_even(ctx: Context, workload: Workload, options: list[Option]) -> BreakEven | None:
    """Break-even between the plan's own self-hosted option (own_option) and the cheapest API the
    workload may use, at the plan's purchase option: every crossing up to the stated maximum
    volume, from the same lines `planner crossover` draws (crossover_lines)."""
    own = own_option(ctx, options)
    api_ids = admissible_apis(options)
    if own is None or not api_ids:
        return None
    candidate = ctx.by_option[own.id]
    # The plan's purchase option, or what a cluster's node is paid as (owned or bought).
    paid = candidate.target.purchase_label(ctx.settings.pricing).value
    apis, units, rows = crossover_lines(ctx, candidate, [workload], api_ids, purchases=(paid,))
    if not apis:
        return None
    api, unit, row = apis[0], units[0], rows[0]
    tokens = workload.monthly_tokens
    volume = row.monthly_tokens
    api_id = f"cloud_api/{api.api_id}"
    site = candidate.target.name
    if volume is None and unit.max_units is not None and row.crossings == []:
        explanation = (
            f"{own.id} never costs less than {api_id} within what the site {site} holds "
            f"({unit.max_units} unit(s), {tokens_text(unit.most_tokens)} tokens a month at "
            f"this workload's mix)"
        )
    elif volume is None:
        explanation = (
            f"{own.id} never costs less than {api_id}: one unit serves at most "
            f"{tokens_text(unit.tokens)} tokens a month at this workload's mix, which cost "
            f"{usd(api.usd_per_token * unit.tokens)} through the API, less than the unit's "
            f"{usd(unit.monthly_usd)}"
        )
    else:
        again = _crossings_text(row.crossings, api_id, own.id)
        if row.site_full_tokens is not None:
            again += f" (the site {site} is full there: its {unit.max_units} unit(s) serve no more)"
        explanation = (
            f"{own.id} costs less than {api_id} from {tokens_text(volume)} tokens a month "
            f"(at this workload's input/output mix, {paid}, fixed costs "
            f"included), that is from {usd(volume * api.usd_per_token)} a month of API spend"
            + (f"; {again}" if again else "")
            + f" (crossings up to {tokens_text(row.max_tokens)} tokens a month"
            + (", more beyond the last listed" if row.truncated else "")
            + f"); this workload has {tokens_text(tokens.total)}"
        )
    crossing_tokens = [c.monthly_tokens for c in row.crossings]
    # On a site the chart ends where it is full: the self-hosted line has nothing past it.
    top = min(
        chart_top(volume, float(tokens.total), unit.tokens, crossing_tokens), unit.most_tokens
    )
    chart_tokens = [
        v
        for v in chart_points(top, unit.tokens, crossing_tokens, float(tokens.total))
        if v <= unit.most_tokens + 1  # the crossing there, rounded to a whole token
    ]
    return BreakEven(
        api_option=api_id,
        self_hosted_option=own.id,
        monthly_tokens=None if volume is None else round(volume),
        api_monthly_usd=None if volume is None else round(volume * api.usd_per_token, 2),
        explanation=explanation,
        chart_tokens=chart_tokens,
        chart_api_usd=[round(api.cost(v), 2) for v in chart_tokens],
        chart_self_hosted_usd=[round(unit.cost(v), 2) for v in chart_tokens],
        crossings=[
            ModelCrossing(monthly_tokens=round(c.monthly_tokens), cheaper=c.placement)
            for c in row.crossings
        ],
        crossings_up_to_tokens=round(row.max_tokens),
    )


def chart_top(
    first: float | None, current: float, unit_tokens: float, crossings: Sequence[float]
) -> float:
    """The largest volume plan.md's chart draws: twice the first crossing, the workload's
    volume or a unit's capacity, and past the last crossing the plan lists (an outside review:
    crossings listed up to ten times the volume fell off a chart drawn to twice the first)."""
    top = 2 * max(first or 0.0, current, unit_tokens)
    return max(top, 1.1 * max(crossings, default=0.0))


def chart_points(
    top: float, unit_tokens: float, crossings: Sequence[float], current: float
) -> list[int]:
    """The volumes plan.md's chart draws (its x-axis is a list of categories, the lines straight
    between them): CHART_POINTS evenly spaced, every crossing, the middle of each stretch
    between two crossings, the workload's own volume, and the self-hosted line's steps (where
    one more unit is needed: the volume a unit count serves, and just past it), up to
    STEP_EDGES of them, those nearest a crossing first. Evenly spaced points alone drew the
    lines straight across the steps and missed every stretch where self-hosting is cheaper
    between two of them (an outside review: crossings at 119B, 149B and 179B drawn as one at
    207B)."""
    points = {round(top * step / (CHART_POINTS - 1)) for step in range(CHART_POINTS)}
    points |= {round(c) for c in crossings if c <= top}
    # Between two crossings the line of one side is below the other's: a point shows which.
    points |= {round((a + b) / 2) for a, b in pairwise(sorted(crossings)) if (a + b) / 2 <= top}
    points.add(round(current))
    edges = [k * unit_tokens for k in range(1, int(top // unit_tokens) + 1)]
    if crossings:
        edges.sort(key=lambda edge: (min(abs(edge - c) for c in crossings), edge))
    for edge in edges[:STEP_EDGES]:
        points.add(round(edge))
        # Past the edge by more than costing's rounding allowance: the next unit's cost.
        after = round(edge * (1 + 1e-6)) + 1
        if after <= top:
            points.add(after)
    return sorted(points)


@dataclass(slots=True)
class ApiLine:
    comparison: str
    api_id: str
    usd_per_token: float
    fixed_usd: float  # its access standing alone (boundary, key)

    def cost(self, volume: float) -> float:
        return self.fixed_usd + self.usd_per_token * volume


@dataclass(slots=True)
class Unit:
    purchase: str
    monthly_usd: float
    tokens: float
    min_units: int
    fixed_usd: float  # the pool's staff and network pieces
    # The units a cluster site holds (its nodes); None on EC2. Past them it serves nothing more.
    max_units: int | None = None

    def cost(self, volume: float) -> float:
        units = max(self.min_units, math.ceil(volume / self.tokens - costing.EPSILON))
        return self.fixed_usd + self.monthly_usd * units

    @property
    def most_tokens(self) -> float:
        """The most a month the units a site holds serve (infinite off a site)."""
        return math.inf if self.max_units is None else self.max_units * self.tokens


@dataclass(slots=True)
class Row:
    comparison: str
    api_id: str
    purchase: str
    monthly_tokens: float | None  # the first volume from which self-hosting costs no more
    api_monthly_usd: float | None
    # Every change of the cheaper side up to max_tokens (the first is monthly_tokens).
    crossings: list[Crossing] = field(default_factory=list)
    max_tokens: float = 0.0
    truncated: bool = False
    # Where a cluster site is full while self-hosting is the cheaper side: from here only the
    # API serves more (its last crossing, to the API).
    site_full_tokens: float | None = None


@dataclass(frozen=True, slots=True)
class Crossing:
    monthly_tokens: float
    placement: Placement  # the side that is cheaper from this volume on


# Crossings are listed up to this many times the larger of the volume and the smallest
# deployment's capacity: the API can win again above the first crossover, one node at a time.
CROSSOVER_HORIZON = 10
# A stretch where the two sides alternate with every node is listed this far, then cut short.
MAX_CROSSINGS = 12
CHEAPEST = "cheapest API it may use"
SAME_MODEL = "same open model as an API"


def crossover_lines(
    ctx: Context,
    candidate: SelfHostedCandidate,
    workloads: list[Workload],
    api_ids: Sequence[str],
    purchases: Sequence[str] | None = None,
) -> tuple[list[ApiLine], list[Unit], list[Row]]:
    """Where a pool of this candidate serving these workloads (one, or a shared pool's members)
    costs less than an API, per purchase option, against two comparisons among the APIs every one
    of the workloads may use (api_ids: their admissible ones): the cheapest at these volumes, and
    the same open model bought as an API. API prices are blended over the workloads' tokens at
    each one's request shape and mix; an API's access is priced standing alone for these callers.
    Every crossing is listed up to a maximum volume (CROSSOVER_HORIZON)."""
    catalog = ctx.catalog
    total = sum(w.monthly_tokens.total for w in workloads)
    weights = [w.monthly_tokens.total / total if total else 1 / len(workloads) for w in workloads]
    shares = [output_share(ctx, w) for w in workloads]
    plain = any(
        isinstance(c, str) or (c.vpc is None and c.account is None)
        for w in workloads
        for c in w.consumers
    )
    vpcs = any(not isinstance(c, str) and c.vpc is not None for w in workloads for c in w.consumers)

    def line(comparison: str, api_id: str) -> ApiLine:
        per_token = sum(
            weight * api_usd_per_token(ctx, api_id, w, s)
            for w, s, weight in zip(workloads, shares, weights, strict=True)
        )
        provider = catalog.api_models[api_id].provider
        fixed = ctx.api_fixed_for(provider, plain, vpcs).monthly_usd
        return ApiLine(comparison, api_id, per_token, fixed)

    # An API whose context window is shorter than a request of these workloads is no comparison.
    longest = longest_request(ctx, workloads)
    ids = sorted(i for i in api_ids if catalog.context_windows[i].value >= longest)
    apis: list[ApiLine] = []
    if ids:
        lines = [line(CHEAPEST, i) for i in ids]
        cheapest = min(lines, key=lambda a: (a.cost(total), a.api_id))
        apis.append(cheapest)
        same = [a for a in lines if catalog.api_models[a.api_id].open_model == candidate.model_id]
        best_same = min(same, key=lambda a: (a.cost(total), a.api_id), default=None)
        if best_same is not None and best_same.api_id != cheapest.api_id:
            apis.append(replace(best_same, comparison=SAME_MODEL))
    # Loads add up: a unit serving the mix holds 1 / sum(weight / what it serves of each).
    capacity_tokens = 1 / sum(
        weight / unit_tokens(ctx, candidate, w, s)
        for w, s, weight in zip(workloads, shares, weights, strict=True)
    )
    min_units = max(minimum_units(ctx, candidate, w) for w in workloads)
    site_units = site_units_of(candidate)
    units = [
        Unit(option, unit_usd, capacity_tokens, min_units, candidate.fixed_usd, site_units)
        for option, unit_usd in ctx.unit_prices[candidate.option_id]
        if purchases is None or option in purchases
    ]
    horizon = CROSSOVER_HORIZON * max(float(total), min_units * capacity_tokens)
    rows = []
    for api in apis:
        for unit in units:
            rows.append(_row(api, unit, horizon))
    return apis, units, rows


def site_units_of(candidate: SelfHostedCandidate) -> int | None:
    """The units a cluster site holds of this candidate (its nodes this planner may use, whole
    units of them); None for a target without a limit (EC2)."""
    most = candidate.target.max_nodes
    return None if most is None else most // candidate.capacity.nodes_per_unit


def _row(api: ApiLine, unit: Unit, horizon: float) -> Row:
    """Every crossing of one API and one purchase option up to the horizon, or up to where a
    cluster site is full: past its units self-hosting serves nothing more, so where it was the
    cheaper side the API takes over there (an outside review: a site of 4 nodes was said to beat
    the API at any volume past its first crossing, up to 15T tokens a month)."""
    args = (api.usd_per_token, unit.monthly_usd, unit.tokens, unit.min_units)
    fixed = (api.fixed_usd, unit.fixed_usd)
    most = unit.most_tokens
    if unit.max_units is not None and unit.max_units < unit.min_units:
        # The site cannot hold even the minimum: self-hosting there is never an option.
        return Row(api.comparison, api.api_id, unit.purchase, None, None, [], horizon, False)
    top = min(horizon, most)
    volume = costing.break_even_tokens(*args, *fixed)
    if volume is not None and volume > most:
        volume = None
    found, cut = costing.crossings(*args, top, *fixed, limit=MAX_CROSSINGS)
    crossings = [
        Crossing(c.monthly_tokens, "self_hosted")
        if c.cheaper == "self_hosted"
        else Crossing(c.monthly_tokens, "cloud_api")
        for c in found
        if c.monthly_tokens <= most
    ]
    full = None
    if most <= horizon and crossings and crossings[-1].placement == "self_hosted" and not cut:
        full = most
        crossings.append(Crossing(most, "cloud_api"))
    return Row(
        api.comparison,
        api.api_id,
        unit.purchase,
        volume,
        None if volume is None else volume * api.usd_per_token,
        crossings,
        top,
        cut,
        full,
    )
