"""Pricing one admissible option for one workload: self-hosted at its units and nodes, or an API
at its usage plus its access, each with the formula that explains the price."""

from __future__ import annotations

from typing import NamedTuple

from planner import costing, formulas
from planner.catalog import ApiModel, Catalog
from planner.costing.throughput_data import throughput_data
from planner.costing.throughput_report import calibration_points_of
from planner.planfile import Option, ThroughputUsed
from planner.planning.candidates import SelfHostedCandidate
from planner.planning.context import Context
from planner.planning.demand import Demand, Load, limits_at
from planner.planning.figures import ASSUMED_SPEED
from planner.planning.quotes import ApiQuote


def self_hosted_option(ctx: Context, candidate: SelfHostedCandidate, demand: Demand) -> Option:
    settings = ctx.settings
    at_shape = limits_at(ctx, candidate, demand.shape)
    capacity = at_shape.capacity
    units = costing.units_needed(
        at_shape.limits,
        demand.input_tokens,
        demand.output_tokens,
        demand.peak_output_tps,
        demand.min_units,
        demand.kv_tokens,
    )
    nodes = units * capacity.nodes_per_unit
    # Priced as `planner preview` prices the nodes' group, so the two agree to the cent.
    node_cost = candidate.nodes_monthly_usd(ctx.catalog, nodes)
    cost = node_cost + candidate.fixed_usd
    # The part after the load depends only on the candidate and the unit count: format it once.
    tail_key = (candidate.option_id, units)
    tail = ctx.formula_tails.get(tail_key)
    if tail is None:
        tail = ctx.formula_tails[tail_key] = formulas.self_hosted_tail(
            units,
            capacity.nodes_per_unit,
            nodes,
            candidate.cost_text,
            node_cost,
            ctx.pool_fixed[candidate.target.name].formula,
            cost,
        )
    formula = formulas.self_hosted_formula(demand.texts, at_shape.texts, tail)
    return Option(
        id=candidate.option_id,
        placement="self_hosted",
        model=candidate.model_id,
        tier=candidate.tier,
        instance_type=candidate.instance_type,
        # What the nodes are paid as: the plan's purchase option, or a cluster's owned or
        # bought hardware (never an EC2 purchase option it does not use).
        pricing=candidate.target.purchase_label(settings.pricing),
        memory_fit=at_shape.memory_fit,
        nodes=nodes,
        monthly_cost_usd=round(cost, 2),
        fixed_monthly_usd=candidate.fixed_usd,
        formula=formula,
        figures=tuple(
            demand.speed_figure if figure == ASSUMED_SPEED else figure
            for figure in candidate.figure_ids
        ),
        throughput=_throughput_info(
            ctx.catalog,
            at_shape.throughput,
            settings.throughput_factor,
            candidate.capacity.model_id,
        ),
    )


def _throughput_info(
    catalog: Catalog, served: costing.UnitThroughput, factor: float, model_id: str
) -> ThroughputUsed:
    """What the plan shows of the throughput behind a self-hosted option."""
    return ThroughputUsed(
        input_tokens=served.input_tokens,
        output_tokens=served.output_tokens,
        cached_input_fraction=served.cached_input_fraction,
        user_output_tps=served.user_output_tps,
        output_tokens_per_second=round(served.output_tps * factor, 1),
        total_tokens_per_second=round(served.total_tps * factor, 1),
        batch_per_replica=served.batch,
        tokens_per_user=round(served.tokens_per_user, 1),
        bound=served.bound,
        user_speed_met=served.target_met,
        validated=calibration_points_of(throughput_data(catalog), model_id) > 0,
        configuration_measured=configuration_measured(catalog, model_id),
    )


def configuration_measured(catalog: Catalog, model_id: str) -> bool:
    """Whether the calibration measured the model served as the stack deploys it: its MoE
    points ran TensorRT-LLM with attention data parallelism (throughput.yaml moe_parallelism),
    the pools run vLLM tensor parallel (costing.deployed_throughput_data), so an MoE model's
    figure is the model's extrapolation to a configuration no calibration point measured."""
    calibrated, deployed = throughput_data(catalog), costing.deployed_throughput_data(catalog)
    arch = calibrated.architectures.get(model_id)
    return (
        arch is None
        or not arch.is_moe
        or (calibrated.settings.moe_parallelism.value == deployed.settings.moe_parallelism.value)
    )


def _cache_head(
    ctx: Context, api_id: str, quote: ApiQuote, demand: Demand
) -> tuple[str, tuple[str, ...]]:
    """The input part of an API option's formula when the workload reads from or writes to the
    provider's prompt cache: each share at the price it is charged, the prices it uses recorded
    as figures, and what is not counted said (cache writes of a provider that charges a premium
    for them, when the file gives no cache_write_fraction)."""
    price = quote.price
    read, written = demand.cached_fraction, demand.write_fraction or 0.0
    terms: list[formulas.CacheTerm] = []
    notes: list[str] = []
    figures: list[str] = []
    # Writes are a share of the cache's misses (cache_write_fraction of the uncached input).
    misses = (1 - read) * written
    plain, _, _ = costing.cache_shares(price, read, written)
    for share, usd, figure_id, what, role, key in (
        (
            read,
            price.cached_input_usd_per_mtok,
            quote.cached_figure_id,
            "read",
            "cached",
            "cached_input",
        ),
        (
            misses,
            price.cache_write_usd_per_mtok,
            quote.write_figure_id,
            "write",
            "written",
            "cache_write",
        ),
    ):
        if not share:
            continue
        if usd is None or figure_id is None:
            notes.append(formulas.no_cache_price_note(api_id, what, role, share))
            continue
        ctx.book.add(
            figure_id,
            round(usd, 6),
            f"USD per million input tokens {'read from' if what == 'read' else 'written to'} "
            "the prompt cache",
            price.source,
            price.date,
        )
        figures.append(figure_id)
        of = (written, 1 - read) if what == "write" and read else None
        terms.append(formulas.CacheTerm(share, role, key, of, usd, what))
    write_price = price.cache_write_usd_per_mtok
    unsaid = demand.write_fraction is None
    if read and unsaid and write_price is not None and write_price > price.input_usd_per_mtok:
        notes.append(formulas.uncounted_cache_writes_note(api_id, write_price))
    head = formulas.cache_input_text(
        demand.input_tokens, plain, price.input_usd_per_mtok, terms, notes
    )
    return head, tuple(figures)


def api_option(ctx: Context, api_id: str, api: ApiModel, demand: Demand) -> Option:
    quote = ctx.api_quote(api_id, api, demand.request_in, demand.request_out)
    price = quote.price
    usage = costing.api_monthly_cost(
        price,
        demand.input_tokens,
        demand.output_tokens,
        demand.cached_fraction,
        demand.write_fraction or 0.0,
    )
    fixed = ctx.api_fixed_for(api.provider, demand.plain_callers, demand.vpc_callers)
    head, figures = f"{demand.texts.api_head_in}{quote.input_text}", quote.figure_ids
    if demand.cached_fraction or demand.write_fraction:
        head, cache_figures = _cache_head(ctx, api_id, quote, demand)
        figures = (*figures, *cache_figures)
    formula = formulas.api_formula(
        head,
        demand.texts.api_head_out,
        quote.output_text,
        usage,
        fixed.formula,
        fixed.monthly_usd,
    )
    return Option(
        id=quote.option_id,
        placement="cloud_api",
        model=api_id,
        provider=api.provider,
        tier=api.tier,
        monthly_cost_usd=round(usage + fixed.monthly_usd, 2),
        fixed_monthly_usd=fixed.monthly_usd,
        formula=formula,
        figures=figures,
        note=_profile_note(api),
    )


def _profile_note(api: ApiModel) -> str | None:
    """Where a Bedrock inference profile may process the workload's requests, which is what the
    data-class gate (data_classes.yaml stays_in_region) decides on."""
    profile = api.inference_profile
    if profile is None:
        return None
    where = (
        f"any of {len(profile.destination_regions)} commercial AWS regions"
        if profile.scope == "global"
        else ", ".join(profile.destination_regions)
    )
    return (
        f"served through the {profile.scope} cross-region inference profile {profile.id}: "
        f"requests may be processed in {where}; allowed for data classes that need not stay in "
        "the stack's region (planner/data/data_classes.yaml stays_in_region)"
    )


class CostRange(NamedTuple):
    """A monthly cost at the favourable and the unfavourable ends of the uncertain settings."""

    low: float
    high: float


def cost_range(
    ctx: Context,
    candidate: SelfHostedCandidate,
    loads: list[Load],
    min_units: int,
) -> CostRange:
    """Low and high monthly cost of a pool of the candidate serving these loads (request shape,
    input and output tokens, peak, KV tokens: one workload's, or a shared pool's members'), from
    the ranges of utilization, the throughput model's error and the purchase rate. Loads
    add up part by part, as in units_needed and the optimizer."""
    found = []
    for end, unit_usd in enumerate(candidate.range_unit_usd):
        parts = [
            costing.unit_load(
                limits_at(ctx, candidate, shape).range_limits[end], tokens_in, tokens_out, peak, kv
            )
            for shape, tokens_in, tokens_out, peak, kv in loads
        ]
        total = (
            sum(volume for volume, _, _ in parts),
            sum(peak for _, peak, _ in parts),
            sum(kv for _, _, kv in parts),
        )
        units = costing.units_for_load(total, min_units)
        found.append(round(units * unit_usd + candidate.fixed_usd, 2))
    low, high = found
    return CostRange(low, high)
