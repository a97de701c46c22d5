"""Self-hosted pools: what the plan says of each (its sizing, purchase options, crossover), and
the keys that keep workloads that must not share a pool apart."""

from __future__ import annotations

import math

from planner import formulas
from planner.catalog.vocabulary import Perimeter
from planner.costing import unit_load, units_for_load
from planner.inputs.workloads import Workload
from planner.planfile import Crossing, Option, Pool, PoolCrossover, PoolLoad, PurchaseOptionCost
from planner.planning.candidates import SelfHostedCandidate
from planner.planning.context import Context
from planner.planning.crossings import admissible_apis, crossover_lines
from planner.planning.decide import Decision
from planner.planning.demand import (
    Demand,
    Load,
    availability_floor,
    limits_at,
    longest_request,
    shape_of,
)
from planner.planning.options import CostRange, cost_range

# (target, kind of node, nodes) -> the pool's nodes under every purchase option, computed once
# per plan (many pools have the same kind of node and size).
Purchases = dict[tuple[str, str, int], list[PurchaseOptionCost]]


def max_model_len(ctx: Context, window: float, option: Option, workloads: list[Workload]) -> int:
    """vLLM's --max-model-len for a pool: its workloads' longest request with the margin of
    vllm.yaml, never above the model's context window (vLLM refuses to start above it) nor
    above what one replica's KV cache holds as the plan sizes it (vLLM refuses to start when
    one sequence of that length cannot fit). The planner admits no workload whose request
    exceeds either, so the longest request always fits."""
    longest = longest_request(ctx, workloads)
    margin = ctx.catalog.serving.max_model_len_margin.value
    # The pool's group is its workloads' (a pool key holds one group): the first one's.
    candidate = ctx.by_option[option.id]
    kv_tokens = limits_at(ctx, candidate, shape_of(ctx, workloads[0])).limits.kv_tokens_per_replica
    return max(longest, min(math.ceil(longest * margin), int(window), math.floor(kv_tokens)))


def build_pool(
    ctx: Context,
    name: str,
    option: Option,
    members: list[Decision],
    nodes: int,
    cost: float,
    purchases: Purchases,
    range_usd: CostRange,
) -> Pool:
    assert option.instance_type and option.memory_fit and option.pricing
    catalog = ctx.catalog
    workloads = [member.workload for member in members]
    # The APIs every member may use (its tier, perimeter and pin admit), as the plan compares.
    allowed = [set(admissible_apis(m.answers.volume_economics.options)) for m in members]
    _, _, rows = crossover_lines(
        ctx, ctx.by_option[option.id], workloads, sorted(set.intersection(*allowed))
    )
    perimeters = [m.answers.data_sensitivity.perimeter for m in members]
    # A reservation and the zone it is in (the loader holds one zone per reservation); a pool
    # has at most one: pool_keys_by_workload keeps workloads of different reservations, or none,
    # apart.
    reservations = sorted(
        {
            (w.capacity_reservation_id, w.capacity_reservation_zone)
            for w in workloads
            if w.capacity_reservation_id
        }
    )
    assert len(reservations) <= 1 and (
        not reservations or all(w.capacity_reservation_id for w in workloads)
    ), f"pool {name} mixes capacity reservations: {reservations}"
    reservation_id, reservation_zone = reservations[0] if reservations else (None, None)
    offer = ctx.by_option[option.id].offer
    key = (offer.target.name, offer.node_type, nodes)
    purchase = purchases.get(key)
    if purchase is None:  # many pools have the same kind of node and size
        purchase = purchases[key] = [
            PurchaseOptionCost(
                option=cost.option,
                monthly_cost_usd=cost.monthly_usd,
                formula=cost.formula,
                comparison_only=cost.comparison_only,
            )
            for cost in offer.target.purchase_costs(
                catalog, offer, nodes, ctx.settings.amortization_months
            )
        ]
    model = catalog.models[option.model]
    fit = option.memory_fit
    sizing, sizing_formula = _pool_sizing(ctx, option.id, workloads, nodes)
    return Pool(
        sizing=sizing,
        sizing_formula=sizing_formula,
        purchase_options=purchase,
        name=name,
        model=option.model,
        # The checkpoint published at the pool's precision, loaded as it is.
        weights=model.checkpoints[fit.precision].repo,
        site=offer.target.name,
        instance_type=option.instance_type,
        nodes=nodes,
        gpus_per_node=offer.instance.gpus,
        precision=option.memory_fit.precision,
        tensor_parallel=fit.tensor_parallel,
        pipeline_parallel=fit.pipeline_parallel,
        replicas_per_node=fit.replicas_per_node,
        max_model_len=max_model_len(ctx, model.context_window.value, option, workloads),
        gpu_memory_utilization=round(1 - ctx.settings.memory_reserve, 4),
        pricing=option.pricing,
        # The strictest perimeter of its workloads: a pool is built for that one.
        perimeter=max(perimeters, key=lambda p: PERIMETER_ORDER[p]),
        capacity_reservation_id=reservation_id,
        capacity_reservation_zone=reservation_zone,
        monthly_cost_usd=cost,
        monthly_cost_low_usd=range_usd.low,
        monthly_cost_high_usd=range_usd.high,
        workloads=[w.name for w in workloads],
        monthly_tokens=sum(w.monthly_tokens.total for w in workloads),
        cidr="",  # build_plan allocates the ranges once every pool is known
        crossover=[
            PoolCrossover(
                comparison=row.comparison,
                api_option=f"cloud_api/{row.api_id}",
                purchase=row.purchase,
                monthly_tokens=None if row.monthly_tokens is None else round(row.monthly_tokens),
                api_monthly_usd=None
                if row.api_monthly_usd is None
                else round(row.api_monthly_usd, 2),
                crossings=[
                    Crossing(monthly_tokens=round(c.monthly_tokens), cheaper=c.placement)
                    for c in row.crossings
                ],
                crossings_up_to_tokens=round(row.max_tokens),
            )
            for row in rows
        ],
    )


def _pool_sizing(
    ctx: Context, option_id: str, workloads: list[Workload], nodes: int
) -> tuple[list[PoolLoad], str]:
    """Each member's load in units of the option (costing.unit_load at its own request shape) and
    how the pool's nodes follow from them: every part adds up on its own, the units are the
    largest of the rounded-up sums and of the members' minimums (costing.units_for_load, as the
    optimizer sizes a pool). The nodes the plan has must be those."""
    candidate = ctx.by_option[option_id]
    loads = []
    volume_units = peak_units = kv_units = 0.0
    for w in workloads:
        limits = limits_at(ctx, candidate, shape_of(ctx, w)).limits
        volume, peak, kv = unit_load(
            limits,
            w.monthly_tokens.input,
            w.monthly_tokens.output,
            w.peak_tokens_per_second,
            Demand.of(ctx, w).kv_tokens,
        )
        volume_units, peak_units, kv_units = volume_units + volume, peak_units + peak, kv_units + kv
        loads.append(
            PoolLoad(
                workload=w.name,
                volume_units=round(volume, 6),
                peak_units=round(peak, 6),
                kv_cache_units=round(kv, 6),
                min_units=availability_floor(w),
            )
        )
    minimum = max(x.min_units for x in loads)
    units = units_for_load((volume_units, peak_units, kv_units), minimum)
    per_unit = candidate.capacity.nodes_per_unit
    assert units * per_unit == nodes, f"{option_id}: {units} x {per_unit} units, {nodes} nodes"
    terms = formulas.PoolSizingTerms(
        minimum=minimum,
        volume_units=volume_units,
        peak_units=peak_units,
        kv_units=kv_units,
        units=units,
        members=len(loads),
        instance_type=candidate.instance_type,
        nodes_per_unit=per_unit,
        nodes=nodes,
    )
    return loads, formulas.pool_sizing_formula(terms)


def pool_range(
    ctx: Context,
    candidate: SelfHostedCandidate,
    members: list[Decision],
    kv_tokens: dict[str, float],
) -> CostRange:
    """A shared pool's cost at both ends of the uncertain settings' ranges: its members' loads
    add up at those settings' unit limits, as in the optimum at the expected ones."""
    workloads = [member.workload for member in members]
    loads = [
        Load(
            shape_of(ctx, w),
            w.monthly_tokens.input,
            w.monthly_tokens.output,
            w.peak_tokens_per_second,
            kv_tokens[w.name],
        )
        for w in workloads
    ]
    return cost_range(ctx, candidate, loads, max(availability_floor(w) for w in workloads))


def pool_name_for(option_id: str) -> str:
    """self_hosted/deepseek-v3.2/p5en.48xlarge -> deepseek-v3-2-p5en-48xlarge (a DNS label)."""
    _, model, instance = option_id.split("/")
    return f"{model}-{instance}".replace(".", "-")


# A pool whose members include a workload with callers in public address space: kept apart from
# workloads whose data may only be called from private ranges (data_classes.yaml).
PUBLIC_CALLERS = "+public-callers"
# A pool that launches its nodes into a workload's capacity reservation: shared only by the
# workloads naming that reservation (option id + RESERVATION + its id).
RESERVATION = "+reservation-"


def _public_callers(ctx: Context, workload: Workload) -> bool:
    private = ctx.catalog.private_consumers
    return any(c.cidr is not None and not private.is_private(c.cidr) for c in workload.consumers)


def pool_keys_by_workload(ctx: Context, decisions: list[Decision]) -> dict[str, dict[str, str]]:
    """Per workload, the optimizer's pool key of each of its self-hosted options. A pool is
    built for its strictest member's perimeter, and that must hold for every member: a workload
    whose data needs private callers (confidential, regulated) never shares a pool with one that
    has public callers. Where both may use one option, the public-callers workloads get a pool
    of that option of their own (option id + PUBLIC_CALLERS); elsewhere the key is the option.
    A pool's launch template targets one capacity reservation, and a targeted launch fails
    once that reservation is full (EC2 User Guide, "Launch instances into an existing Capacity
    Reservation"): a workload naming a reservation shares a pool only with workloads naming
    the same one (+ RESERVATION + its id), and one naming none never joins such a pool."""
    strict = set(ctx.catalog.private_consumers.data_classes)
    options = {
        w.name: [o.id for o in answers.volume_economics.options if o.placement == "self_hosted"]
        for w, answers, _, _ in decisions
    }
    strict_options = {o for w, *_ in decisions if w.data in strict for o in options[w.name]}
    keys = {}
    for w, answers, _, _ in decisions:
        apart = w.data not in strict and _public_callers(ctx, w)
        reserved = f"{RESERVATION}{w.capacity_reservation_id}" if w.capacity_reservation_id else ""
        groups = {
            o.id: o.memory_fit.gpus_per_replica
            for o in answers.volume_economics.options
            if o.memory_fit is not None
        }
        keys[w.name] = {
            o: o
            + _group_suffix(ctx, o, groups[o])
            + (PUBLIC_CALLERS if apart and o in strict_options else "")
            + reserved
            for o in options[w.name]
        }
    return keys


# A pool's replicas have one tensor-parallel group. A workload whose request shape is served
# best by another group than the option's usual one (at the plan's request shape) gets a pool
# key of that group (option id + GROUP + its GPUs a replica): only workloads served with the
# same group share a pool.
GROUP = "+tp"


def _group_suffix(ctx: Context, option_id: str, gpus_per_replica: int) -> str:
    usual = ctx.by_option[option_id].memory_fit.gpus_per_replica
    return "" if gpus_per_replica == usual else f"{GROUP}{gpus_per_replica}"


def option_of(key: str) -> str:
    return key.split("+", 1)[0]  # option ids have no "+"


def pool_name_of(key: str) -> str:
    """A pool's name from its key: its option's, then what keeps it apart (its group, public
    callers, a capacity reservation)."""
    name = pool_name_for(option_of(key))
    if GROUP in key:
        name += "-tp" + key.split(GROUP, 1)[1].split("+", 1)[0]
    if PUBLIC_CALLERS in key:
        name += "-public-callers"
    if RESERVATION in key:
        name += "-" + key.split(RESERVATION, 1)[1]
    return name


PERIMETER_ORDER = {Perimeter.contractual: 0, Perimeter.private_link: 1, Perimeter.technical: 2}
