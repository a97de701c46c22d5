"""Self-hosted candidates: a model on a kind of node a deployment target offers (an EC2 instance
type), what one scaling unit costs and serves whatever the workload's volume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from planner import costing, formulas
from planner.catalog import Catalog
from planner.catalog.vocabulary import Pricing, Tier
from planner.costing import Capacity, Settings
from planner.costing.throughput_data import throughput_data
from planner.planfile import MemoryFit
from planner.planning.figures import ASSUMED_SPEED, FigureBook, throughput_figures
from planner.targets import Offer, Target, pool_targets


@dataclass(frozen=True)
class SelfHostedCandidate:
    """A model on a kind of node of a target: what one scaling unit costs and serves
    (volume-independent)."""

    model_id: str
    # The kind of node of a target (planner.targets) it runs on: an EC2 instance type.
    offer: Offer
    instance_type: str
    # The unit at the settings' request shape and per-user speed (what a workload without its
    # own is served with); a workload's own is the best of `units` for its shape (shape_limits).
    capacity: Capacity
    # Every tensor-parallel group the weights fit (costing.unit_options): the same node price.
    units: tuple[Capacity, ...]
    unit_monthly_usd: float
    # One node an hour at the plan's purchase option (what costing.nodes_monthly_usd prices).
    node_hourly_usd: float
    # Paid once per pool whatever its size: staff and network pieces (its target's
    # pool_fixed_cost).
    fixed_usd: float
    # At the favourable and the unfavourable ends of the purchase rate's range (its target's
    # node_rate),
    # a node-month in whole cents as costing.nodes_monthly_usd prices it.
    range_unit_usd: tuple[float, float]
    figure_ids: tuple[str, ...]
    # capacity's memory fit; a workload's own is its shape's (ShapeLimits.memory_fit).
    memory_fit: MemoryFit
    option_id: str
    tier: Tier
    # Volume-independent parts of the option's formula, formatted once.
    cost_text: str

    @property
    def target(self) -> Target:
        return self.offer.target

    def nodes_monthly_usd(self, catalog: Catalog, nodes: int) -> float:
        return costing.nodes_monthly_usd(
            self.node_hourly_usd, catalog.pricing.hours_per_month.value, nodes
        )


class Shape(NamedTuple):
    """A request shape as the throughput model takes it: input and output tokens of one request,
    the share of the input that is a cached prefix, and the output tokens a second each user
    reads."""

    input_tokens: int
    output_tokens: int
    cached_fraction: float
    user_output_tps: float


class UnitPrice(NamedTuple):
    """A unit's monthly price under one purchase option."""

    purchase: str
    monthly_usd: float


class Candidates(NamedTuple):
    """Every self-hosted candidate of a plan: per model (sorted), its own precision on each
    instance type the weights fit, and the lower precisions priced beside it as alternatives."""

    own: dict[str, list[SelfHostedCandidate]]
    # model -> the same model at a lower precision where its own needs several nodes
    lower_precisions: dict[str, list[SelfHostedCandidate]]


@dataclass(frozen=True, slots=True)
class ShapeLimits:
    """What a unit of a candidate serves at one request shape, at the expected settings and at
    both ends of their ranges (favourable first), with the formula's texts formatted once: the
    unit is the tensor-parallel group that serves this shape best (costing.best_unit)."""

    capacity: Capacity
    memory_fit: MemoryFit
    throughput: costing.UnitThroughput
    limits: costing.UnitLimits
    range_limits: tuple[costing.UnitLimits, costing.UnitLimits]
    texts: formulas.ShapeTexts


def memory_fit_of(capacity: Capacity) -> MemoryFit:
    fit = capacity.fit
    return MemoryFit(
        precision=fit.precision,
        weights_gb=round(fit.weights_gb, 1),
        gpu_memory_gb=fit.gpu_memory_gb,
        gpus_per_replica=fit.gpus_per_replica,
        tensor_parallel=fit.tensor_parallel,
        pipeline_parallel=fit.pipeline_parallel,
        replicas_per_node=fit.replicas_per_node,
        fits_one_node=fit.nodes_per_replica == 1,
        note=fit.note,
    )


def every_candidate(catalog: Catalog, settings: Settings, book: FigureBook) -> Candidates:
    """Every model on every kind of node of every target its weights fit, with the figures each
    cost rests on recorded: built once per plan, so the plan cites every candidate's figures."""
    own: dict[str, list[SelfHostedCandidate]] = {}
    lower: dict[str, list[SelfHostedCandidate]] = {}
    targets = pool_targets(settings)
    for model_id in sorted(catalog.models):
        own[model_id] = [
            c
            for target in targets
            for c in candidates_for(catalog, settings, book, target, model_id)
        ]
        lower[model_id] = [
            c
            for target in targets
            for c in _lower_precisions(catalog, settings, book, target, model_id)
        ]
    # An option is named by its model and kind of node (self_hosted/<model>/<node type>): two
    # targets offering one node type would be two options of one name.
    offered = [o.node_type for target in targets for o in target.offers(catalog, settings)]
    if len(offered) != len(set(offered)):
        twice = sorted({t for t in offered if offered.count(t) > 1})
        raise ValueError(f"kinds of node offered by two targets: {', '.join(twice)}")
    return Candidates(own, lower)


def _lower_precisions(
    catalog: Catalog, settings: Settings, book: FigureBook, target: Target, model_id: str
) -> list[SelfHostedCandidate]:
    """Where the model's own precision needs several nodes (or cannot be served) on a kind of
    node, the same model at each lower precision that fits one node: priced side by side as
    alternatives, with the precision's quality note, never chosen."""
    model = catalog.models[model_id]
    own = catalog.precisions[model.default_precision].bytes_per_param.value
    found = []
    for offer in target.offers(catalog, settings):
        fit = costing.memory_fit(
            catalog, model, offer.instance, model.default_precision, settings.memory_reserve
        )
        if fit is not None and fit.nodes_per_replica == 1:
            continue
        for precision in sorted(catalog.precisions):
            if catalog.precisions[precision].bytes_per_param.value >= own:
                continue
            lower = costing.memory_fit(
                catalog, model, offer.instance, precision, settings.memory_reserve
            )
            if lower is not None and lower.nodes_per_replica == 1:
                found.extend(
                    candidates_for(catalog, settings, book, target, model_id, [offer], precision)
                )
    return found


def candidates_for(
    catalog: Catalog,
    settings: Settings,
    book: FigureBook,
    target: Target,
    model_id: str,
    offers: list[Offer] | None = None,
    precision: str | None = None,
) -> list[SelfHostedCandidate]:
    """The model on each of these kinds of node of the target (every one it offers pools) its
    weights fit, at this precision (its own)."""
    model = catalog.models[model_id]
    fixed = target.pool_fixed_cost(catalog, settings)
    found = []
    for offer in offers or target.offers(catalog, settings):
        instance_type, instance = offer.node_type, offer.instance
        units = costing.unit_options(catalog, model, instance, settings, precision)
        if not units:
            continue
        capacity = costing.unit_capacity(catalog, model, instance, settings, precision)
        assert capacity is not None
        hours = catalog.pricing.hours_per_month
        rate = target.node_rate(catalog, offer, settings.pricing)
        node_hourly = rate.usd_per_hour
        unit_monthly = node_hourly * hours.value * capacity.nodes_per_unit
        per_param = catalog.precisions[capacity.fit.precision].bytes_per_param
        kv_precision = throughput_data(catalog).architectures[model_id].kv_cache_precision
        figure_ids = (
            *(book.add(*cited) for cited in target.price_figures(catalog, offer, settings.pricing)),
            book.add(*target.memory_figure(catalog, offer)),
            book.add(
                f"model.{model_id}.total_params_b",
                model.total_params_b.value,
                "billion parameters",
                model.total_params_b.source,
                model.total_params_b.date,
            ),
            book.add(
                f"precision.{capacity.fit.precision}.bytes_per_param",
                per_param.value,
                "bytes per parameter",
                per_param.source,
                per_param.date,
            ),
            book.add(
                f"model.{model_id}.kv_bytes_per_token",
                round(capacity.kv_gb_per_token * 1e9),
                f"bytes of KV cache per token of context ({capacity.kv_cache_precision})",
                f"{model.kv_bytes_per_token.source}; at the KV-cache precision "
                f"{capacity.kv_cache_precision} ({kv_precision.source})",
                kv_precision.date,
            ),
            *throughput_figures(catalog, book, model_id, instance.gpu),
            "assumption.utilization",
            "assumption.memory_reserve",
            ASSUMED_SPEED,
            "operations.engineer_usd_per_month",
            "operations.pool_fte",
        )
        found.append(
            SelfHostedCandidate(
                model_id=model_id,
                offer=offer,
                instance_type=instance_type,
                capacity=capacity,
                units=units,
                unit_monthly_usd=unit_monthly,
                node_hourly_usd=node_hourly,
                fixed_usd=fixed.monthly_usd,
                # Each end a node-month in whole cents, as the cost itself
                # (costing.nodes_monthly_usd): a published rate without a range then gives
                # the cost exactly, not a cent below it.
                range_unit_usd=(
                    costing.nodes_monthly_usd(rate.low, hours.value, capacity.nodes_per_unit),
                    costing.nodes_monthly_usd(rate.high, hours.value, capacity.nodes_per_unit),
                ),
                figure_ids=figure_ids,
                memory_fit=memory_fit_of(capacity),
                option_id=f"self_hosted/{model_id}/{instance_type}"
                + (f"/{precision}" if precision else ""),
                tier=model.tier,
                cost_text=formulas.node_price_text(
                    node_hourly, target.purchase_label(settings.pricing), rate.terms, hours.value
                ),
            )
        )
    return found


def shape_limits(
    candidate: SelfHostedCandidate, shape: Shape, settings: Settings, seconds: float
) -> ShapeLimits | None:
    """What a unit serves at this request shape (the throughput model, at the per-user
    speed), in `seconds` a month; None where the throughput model's replica cannot hold one
    such request."""
    best_unit = costing.best_unit(
        candidate.units,
        shape.input_tokens,
        shape.output_tokens,
        shape.user_output_tps,
        shape.cached_fraction,
    )
    if best_unit is None:
        return None
    capacity, served = best_unit
    best, worst = settings.bounds()
    limits = costing.unit_limits(capacity, served, seconds, settings)
    rate = served.output_tps * settings.throughput_factor
    # The KV cache's bytes a token include its copies under tensor parallelism.
    per_token = capacity.kv_gb_per_replica / capacity.kv_tokens_per_replica
    return ShapeLimits(
        capacity=capacity,
        memory_fit=memory_fit_of(capacity),
        throughput=served,
        limits=limits,
        range_limits=(
            costing.unit_limits(capacity, served, seconds, best),
            costing.unit_limits(capacity, served, seconds, worst),
        ),
        texts=formulas.shape_texts(
            output_tps=rate,
            total_tps=served.total_tps * settings.throughput_factor,
            utilization=settings.utilization,
            input_tokens=shape.input_tokens,
            output_tokens=shape.output_tokens,
            user_output_tps=shape.user_output_tps,
            bound=served.bound,
            kv_tokens_per_unit=limits.kv_tokens_per_unit,
            kv_gb_per_unit=capacity.kv_gb_per_replica * capacity.fit.replicas_per_node,
            kv_kib_per_token=per_token * 1e9 / 1024,
            kv_cache_precision=capacity.kv_cache_precision,
        ),
    )


def unit_prices(catalog: Catalog, candidate: SelfHostedCandidate) -> list[UnitPrice]:
    """A unit's monthly price under every purchase option, named as its target names what a
    node is paid as: a cluster's node (owned or bought hardware, the same under every option)
    is one price, never an EC2 purchase option."""
    hours = catalog.pricing.hours_per_month.value
    prices: dict[str, float] = {}
    for option in Pricing:
        paid = candidate.target.purchase_label(option).value
        if paid not in prices:
            rate = candidate.target.node_rate(catalog, candidate.offer, option).usd_per_hour
            prices[paid] = rate * hours * candidate.capacity.nodes_per_unit
    return [UnitPrice(paid, monthly) for paid, monthly in prices.items()]
