"""The three answers, each decided separately for one workload.

1. task quality: the smallest tier that solves the task;
2. data sensitivity: the perimeter the data requires;
3. volume economics: every option meeting both, priced at the workload's volume, and the choice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from planner import costing as costs
from planner.catalog import DATA_ORDER, TIER_ORDER, ApiModel, Catalog, Figure
from planner.catalog.vocabulary import Availability, DataClass, Perimeter, Pricing, Task, Tier
from planner.costing import Capacity, Settings
from planner.costing.throughput_data import throughput_data
from planner.costing.throughput_report import calibration_points_of
from planner.errors import Problem
from planner.inputs.workloads import Workload
from planner.planfile import (
    Answers,
    BreakEven,
    DataSensitivity,
    FigureUsed,
    MemoryFit,
    Option,
    Placement,
    TaskQuality,
    ThroughputUsed,
    VolumeEconomics,
    Warning,
)
from planner.planfile import Crossing as ModelCrossing

CHART_POINTS = 9


def tokens_text(count: float) -> str:
    """400000000 -> '400M'; keeps three significant figures."""
    for size, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "k")):
        if abs(count) >= size:
            return f"{count / size:.3g}{suffix}"
    return f"{count:.3g}"


def usd(amount: float) -> str:
    return f"{amount:,.2f} USD"


class FigureBook:
    """The figures a plan used, by id, so every cost can cite them once."""

    def __init__(self) -> None:
        self.figures: dict[str, FigureUsed] = {}

    def add(self, key: str, value: float | str, unit: str, source: str, date: str) -> str:
        if key not in self.figures:
            self.figures[key] = FigureUsed(value=value, unit=unit, source=source, date=date)
        return key


ASSUMED_SPEED = "assumption.user_output_tps"


def speed_figure(
    book: FigureBook, workload: Workload, field: str = "", line: int | None = None
) -> str:
    """The id of the per-user speed a workload is priced at: its own user_output_tps, recorded
    with the field and line that set it (the plan records them first), else the assumption's."""
    if workload.user_output_tps is None:
        return ASSUMED_SPEED
    where = field or f"user_output_tps of workload {workload.name}"
    return book.add(
        f"workload.{workload.name}.user_output_tps",
        workload.user_output_tps,
        "output tokens/s per user",
        f"set in the workloads file: {where}" + (f" (line {line})" if line is not None else ""),
        "",
    )


def throughput_figures(
    catalog: Catalog, book: FigureBook, model_id: str, gpu: str
) -> tuple[str, ...]:
    """The throughput model's figures a self-hosted cost rests on, recorded once: the GPU's
    (gpus.yaml), the model's architecture (architectures.yaml) and the fitted efficiencies with
    the fit's error (throughput.yaml)."""
    data = throughput_data(catalog)
    card, arch, fit = data.gpus[gpu], data.architectures[model_id], data.fit
    entries: list[tuple[str, Figure, str]] = [
        (f"gpu.{gpu}.memory_gb", card.memory_gb, "GB per GPU"),
        (f"gpu.{gpu}.bandwidth_tb_per_s", card.bandwidth_tb_per_s, "TB/s per GPU (HBM)"),
        (f"gpu.{gpu}.nvlink_gb_per_s", card.nvlink_gb_per_s, "GB/s per GPU each way"),
        *(
            (f"gpu.{gpu}.dense_tflops.{p}", figure, f"dense {p} TFLOPS per GPU")
            for p, figure in sorted(card.dense_tflops.items())
        ),
        (f"architecture.{model_id}.layers", arch.layers, "layers"),
        (f"architecture.{model_id}.query_heads", arch.query_heads, "attention heads"),
        (f"architecture.{model_id}.head_dim", arch.head_dim, "values per head"),
        (f"architecture.{model_id}.active_params_b", arch.active_params_b, "billion active"),
        ("throughput_fit.bandwidth_efficiency", fit.bandwidth_efficiency, "share of HBM peak"),
        ("throughput_fit.compute_efficiency", fit.compute_efficiency, "share of dense FLOPS"),
        ("throughput_fit.step_overhead_ms", fit.step_overhead_ms, "ms per decode step"),
        ("throughput_fit.request_overhead_us", fit.request_overhead_us, "us per request a step"),
        ("throughput_fit.allreduce_latency_us", fit.allreduce_latency_us, "us per all-reduce"),
    ]
    if arch.is_moe:
        entries.append(("throughput_fit.moe_factor", fit.moe_factor, "x MoE step time"))
    ids = [book.add(key, f.value, unit, f.source, f.date) for key, f, unit in entries]
    if arch.is_moe:
        # MoE replicas are priced as deployed (vLLM tensor parallel), not as calibrated.
        deployed = costs.deployed_throughput_data(catalog).settings.moe_parallelism
        ids.append(
            book.add(
                "serving.moe_parallelism",
                deployed.value,
                "how an MoE replica's GPUs split the work",
                deployed.source,
                deployed.date,
            )
        )
    ids.append(
        book.add(
            "throughput_fit.geometric_mean_error",
            fit.geometric_mean_error,
            f"x typical error on {fit.points} calibration points (worst {fit.worst_error}x: "
            f"{fit.worst_point}); the planning range of every throughput",
            fit.source,
            fit.date,
        )
    )
    return tuple(ids)


@dataclass(frozen=True)
class SelfHostedCandidate:
    """A model on an instance type: what one scaling unit costs and serves (volume-independent)."""

    model_id: str
    instance_type: str
    # The unit at the settings' request shape and per-user speed (what a workload without its
    # own is served with); a workload's own is the best of `units` for its shape (shape_limits).
    capacity: Capacity
    # Every tensor-parallel group the weights fit (costs.unit_options): the same node price.
    units: tuple[Capacity, ...]
    unit_monthly_usd: float
    # One node an hour at the plan's purchase option (what costs.nodes_monthly_usd prices).
    node_hourly_usd: float
    # Paid once per pool whatever its size: staff and network pieces (costs.pool_fixed_cost).
    fixed_usd: float
    # At the favourable and the unfavourable ends of the purchase rate's range (costs.node_rate),
    # a node-month in whole cents as costs.nodes_monthly_usd prices it.
    range_unit_usd: tuple[float, float]
    figure_ids: tuple[str, ...]
    # capacity's memory fit; a workload's own is its shape's (ShapeLimits.memory_fit).
    memory_fit: MemoryFit
    option_id: str
    tier: Tier
    # Volume-independent parts of the option's formula, formatted once.
    cost_text: str

    def nodes_monthly_usd(self, catalog: Catalog, nodes: int) -> float:
        return costs.nodes_monthly_usd(
            self.node_hourly_usd, catalog.pricing.hours_per_month.value, nodes
        )


# A request shape as the throughput model takes it: input and output tokens of one request, the
# share of the input that is a cached prefix, and the output tokens a second each user reads.
Shape = tuple[int, int, float, float]


@dataclass(frozen=True, slots=True)
class ShapeLimits:
    """What a unit of a candidate serves at one request shape, at the expected settings and at
    both ends of their ranges (favourable first), with the formula's texts formatted once: the
    unit is the tensor-parallel group that serves this shape best (costs.best_unit)."""

    capacity: Capacity
    memory_fit: MemoryFit
    kv_ceiling_text: str
    throughput: costs.UnitThroughput
    limits: costs.UnitLimits
    range_limits: tuple[costs.UnitLimits, costs.UnitLimits]
    output_text: str
    total_text: str
    peak_text: str


@dataclass(frozen=True, slots=True)
class ApiQuote:
    price: costs.ApiPrice
    figure_ids: tuple[str, ...]
    # The cache-read and cache-write prices' figure ids, recorded only when a workload uses them.
    cached_figure_id: str | None
    write_figure_id: str | None
    option_id: str
    input_text: str
    output_text: str


@dataclass
class Context:
    """What every workload's answers share: the catalog, the settings and the figures used."""

    catalog: Catalog
    settings: Settings
    book: FigureBook
    region: str
    seconds_per_month: float = 0.0
    candidates: dict[str, list[SelfHostedCandidate]] = field(default_factory=dict)
    api_ids: list[str] = field(default_factory=list)
    by_option: dict[str, SelfHostedCandidate] = field(default_factory=dict)
    formula_tails: dict[tuple[str, int], str] = field(default_factory=dict)
    model_sizes: dict[str, float] = field(default_factory=dict)
    self_hosted_entries: list[tuple[int, int, SelfHostedCandidate]] = field(default_factory=list)
    _api_entries: dict[tuple[DataClass, Perimeter], list[tuple[int, int, str]]] = field(
        default_factory=dict
    )
    _task_answers: dict[tuple[Task, Tier | None], TaskQuality] = field(default_factory=dict)
    _data_answers: dict[DataClass, DataSensitivity] = field(default_factory=dict)
    _api_quotes: dict[tuple[str, int, int], ApiQuote] = field(default_factory=dict)
    _comparisons: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)
    _shape_limits: dict[tuple[str, Shape], ShapeLimits | None] = field(default_factory=dict)
    # model -> the same model at a lower precision where its own needs several nodes
    alternatives: dict[str, list[SelfHostedCandidate]] = field(default_factory=dict)
    _unit_prices: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    pool_fixed: costs.FixedCost = field(default_factory=lambda: costs.FixedCost(0.0, ""))
    # provider -> the fixed cost of reaching it, standing alone (its boundary and key)
    api_fixed: dict[str, costs.FixedCost] = field(default_factory=dict)

    def api_fixed_for(self, provider: str, plain: bool, vpcs: bool) -> costs.FixedCost:
        """A provider's access standing alone, as the stack builds it for these callers: a
        PrivateLink network of its own only for callers given as plain CIDRs, and the egress
        VPC's transit gateway attachment when callers name VPCs (stacks/aws/private_link.py,
        stacks/aws/egress.py)."""
        kinds = costs.api_fixed_kinds(self.catalog, provider)
        if "private_link" in kinds and not plain:
            kinds = tuple(kind for kind in kinds if kind != "private_link")
        if "egress_network" in kinds and vpcs:
            kinds = (*kinds, "egress_transit")
        if kinds == costs.api_fixed_kinds(self.catalog, provider):
            return self.api_fixed[provider]
        return costs.pieces_cost(self.catalog, kinds)

    def __post_init__(self) -> None:
        self.seconds_per_month = self.catalog.pricing.hours_per_month.value * 3600
        self.pool_fixed = costs.pool_fixed_cost(self.catalog, self.settings)
        self.api_fixed = {
            p: costs.pieces_cost(self.catalog, costs.api_fixed_kinds(self.catalog, p))
            for p in sorted(self.catalog.providers)
        }
        staff = self.catalog.operations.staff
        for key, figure, unit, given in (
            (
                "operations.engineer_usd_per_month",
                staff.engineer_usd_per_month,
                "USD/month",
                self.settings.engineer_usd_per_month,
            ),
            ("operations.pool_fte", staff.pool_fte, "engineers per pool", self.settings.pool_fte),
        ):
            if given is None:
                self.book.add(key, figure.value, unit, figure.source, figure.date)
            else:
                self.book.add(key, given, unit, "set in the workloads file (assumptions)", "")
        self.api_ids = sorted(self.catalog.api_models)
        self.model_sizes = {
            **{m: model_size(self.catalog, "self_hosted", m) for m in self.catalog.models},
            **{a: model_size(self.catalog, "cloud_api", a) for a in self.api_ids},
        }
        for model_id in sorted(self.catalog.models):
            self.candidates[model_id] = self._candidates_for(model_id)
            self.by_option.update((c.option_id, c) for c in self.candidates[model_id])
            self.alternatives[model_id] = self._lower_precisions(model_id)
            model = self.catalog.models[model_id]
            self.self_hosted_entries.extend(
                (TIER_ORDER[model.tier], model.quality_rank, c) for c in self.candidates[model_id]
            )

    def instance_types(self) -> list[str]:
        """The instance types pools may use: the file's `assumptions.instance_types`, or every
        one of the catalog."""
        return sorted(self.settings.instance_types or self.catalog.instances)

    def _lower_precisions(self, model_id: str) -> list[SelfHostedCandidate]:
        """Where the model's own precision needs several nodes (or cannot be served) on an
        instance type, the same model at each lower precision that fits one node: priced side
        by side as alternatives, with the precision's quality note, never chosen."""
        catalog = self.catalog
        model = catalog.models[model_id]
        own = catalog.precisions[model.default_precision].bytes_per_param.value
        found = []
        for instance_type in self.instance_types():
            instance = catalog.instances[instance_type]
            fit = costs.memory_fit(
                catalog, model, instance, model.default_precision, self.settings.memory_reserve
            )
            if fit is not None and fit.nodes_per_replica == 1:
                continue
            for precision in sorted(catalog.precisions):
                if catalog.precisions[precision].bytes_per_param.value >= own:
                    continue
                lower = costs.memory_fit(
                    catalog, model, instance, precision, self.settings.memory_reserve
                )
                if lower is not None and lower.nodes_per_replica == 1:
                    found.extend(self._candidates_for(model_id, [instance_type], precision))
        return found

    def _candidates_for(
        self, model_id: str, instance_types: list[str] | None = None, precision: str | None = None
    ) -> list[SelfHostedCandidate]:
        catalog, settings, book = self.catalog, self.settings, self.book
        model = catalog.models[model_id]
        found = []
        for instance_type in instance_types or self.instance_types():
            instance = catalog.instances[instance_type]
            units = costs.unit_options(catalog, model, instance, settings, precision)
            if not units:
                continue
            capacity = costs.unit_capacity(catalog, model, instance, settings, precision)
            assert capacity is not None
            hours = catalog.pricing.hours_per_month
            node_hourly = costs.node_hourly_usd(catalog, instance, settings.pricing)
            unit_monthly = node_hourly * hours.value * capacity.nodes_per_unit
            per_param = catalog.precisions[capacity.fit.precision].bytes_per_param
            kv_precision = throughput_data(catalog).architectures[model_id].kv_cache_precision
            figure_ids = (
                book.add(
                    f"instance.{instance_type}.on_demand_usd_per_hour",
                    instance.on_demand_usd_per_hour.value,
                    "USD/hour",
                    instance.on_demand_usd_per_hour.source,
                    instance.on_demand_usd_per_hour.date,
                ),
                *self._rate_figures(instance_type),
                book.add("pricing.hours_per_month", hours.value, "hours", hours.source, hours.date),
                book.add(
                    f"instance.{instance_type}.gpu_memory_gb",
                    instance.gpu_memory_gb.value,
                    "GB per GPU",
                    instance.gpu_memory_gb.source,
                    instance.gpu_memory_gb.date,
                ),
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
            hourly = costs.node_hourly_usd(catalog, instance, settings.pricing)
            rate = costs.node_rate(catalog, instance, settings.pricing)
            found.append(
                SelfHostedCandidate(
                    model_id=model_id,
                    instance_type=instance_type,
                    capacity=capacity,
                    units=units,
                    unit_monthly_usd=unit_monthly,
                    node_hourly_usd=node_hourly,
                    fixed_usd=self.pool_fixed.monthly_usd,
                    # Each end a node-month in whole cents, as the cost itself
                    # (costs.nodes_monthly_usd): a published rate without a range then gives
                    # the cost exactly, not a cent below it.
                    range_unit_usd=(
                        costs.nodes_monthly_usd(rate.low, hours.value, capacity.nodes_per_unit),
                        costs.nodes_monthly_usd(rate.high, hours.value, capacity.nodes_per_unit),
                    ),
                    figure_ids=figure_ids,
                    memory_fit=_memory_fit(capacity),
                    option_id=f"self_hosted/{model_id}/{instance_type}"
                    + (f"/{precision}" if precision else ""),
                    tier=model.tier,
                    cost_text=(
                        f" x {hourly:,.4g} USD/h ({settings.pricing.value}: {rate.basis}) x "
                        f"{hours.value:,.0f} h = "
                    ),
                )
            )
        return found

    def shape_limits(self, candidate: SelfHostedCandidate, shape: Shape) -> ShapeLimits | None:
        """What a unit serves at this request shape (the throughput model, at the per-user
        speed); None where the throughput model's replica cannot hold one such request."""
        key = (candidate.option_id, shape)
        if key in self._shape_limits:
            return self._shape_limits[key]
        settings, seconds = self.settings, self.seconds_per_month
        best_unit = costs.best_unit(candidate.units, shape[0], shape[1], shape[3], shape[2])
        if best_unit is None:
            found = None
        else:
            capacity, served = best_unit
            best, worst = settings.bounds()
            limits = costs.unit_limits(capacity, served, seconds, settings)
            rate = served.output_tps * settings.throughput_factor
            # The KV cache's bytes a token include its copies under tensor parallelism.
            per_token = capacity.kv_gb_per_replica / capacity.kv_tokens_per_replica
            found = ShapeLimits(
                capacity=capacity,
                memory_fit=_memory_fit(capacity),
                kv_ceiling_text=(
                    f"{tokens_text(limits.kv_tokens_per_unit)} tokens a unit holds "
                    f"({capacity.kv_gb_per_replica * capacity.fit.replicas_per_node:,.1f} GB / "
                    f"{per_token * 1e9 / 1024:,.1f} KiB a token at "
                    f"{capacity.kv_cache_precision})"
                ),
                throughput=served,
                limits=limits,
                range_limits=(
                    costs.unit_limits(capacity, served, seconds, best),
                    costs.unit_limits(capacity, served, seconds, worst),
                ),
                output_text=(
                    f"{rate * settings.utilization:,.1f} ({rate:,.1f} output tok/s a unit at "
                    f"{shape[0]:,}/{shape[1]:,} tokens and {shape[3]:g} tok/s "
                    f"per user, bound: {served.bound}, x utilization)"
                ),
                total_text=(
                    f"{served.total_tps * settings.throughput_factor * settings.utilization:,.1f}"
                ),
                peak_text=f"{rate:,.1f}",
            )
        self._shape_limits[key] = found
        return found

    def _rate_figures(self, instance_type: str) -> tuple[str, ...]:
        """The figures a node's price under the plan's purchase option rests on: a published
        rate of the instance type (costs.published_rate; a spot price with its premium), or the
        option's multiplier of on-demand."""
        catalog, pricing, book = self.catalog, self.settings.pricing, self.book
        option = catalog.pricing.options[pricing]
        published = costs.published_rate(catalog, catalog.instances[instance_type], pricing)
        if published is not None:
            figure = published.figure
            found: tuple[str, ...] = (
                book.add(
                    f"instance.{instance_type}.{published.field}",
                    figure.value,
                    "USD/hour",
                    figure.source,
                    figure.date,
                ),
            )
            if pricing is Pricing.spot and option.premium is not None:
                premium = option.premium
                found += (
                    book.add(
                        "pricing.spot.premium",
                        premium.value,
                        "share of the spot price",
                        premium.source,
                        premium.date,
                    ),
                )
            return found
        multiplier = option.multiplier
        return (
            book.add(
                f"pricing.{pricing.value}.multiplier",
                multiplier.value,
                "x on-demand",
                multiplier.source,
                multiplier.date,
            ),
        )

    def comparisons(self, model_id: str) -> list[tuple[str, list[str]]]:
        """The APIs a self-hosted model is compared with: the closed frontier APIs, and the same
        open model sold as an API (sorted ids; a comparison with none is left out)."""
        found = self._comparisons.get(model_id)
        if found is None:
            models = self.catalog.api_models
            closed = sorted(
                a
                for a, m in models.items()
                if m.tier is Tier.frontier and not m.open_model and m.current
            )
            same = sorted(a for a, m in models.items() if m.open_model == model_id)
            found = self._comparisons[model_id] = [
                (name, ids)
                for name, ids in (
                    ("closed frontier API", closed),
                    ("same open model as an API", same),
                )
                if ids
            ]
        return found

    def unit_prices(self, candidate: SelfHostedCandidate) -> list[tuple[str, float]]:
        """A unit's monthly price under every purchase option."""
        found = self._unit_prices.get(candidate.option_id)
        if found is None:
            instance = self.catalog.instances[candidate.instance_type]
            hours = self.catalog.pricing.hours_per_month.value
            found = self._unit_prices[candidate.option_id] = [
                (
                    option.value,
                    costs.node_hourly_usd(self.catalog, instance, option)
                    * hours
                    * candidate.capacity.nodes_per_unit,
                )
                for option in Pricing
            ]
        return found

    def api_entries(self, data: DataClass, perimeter: Perimeter) -> list[tuple[int, int, str]]:
        """The API models that may receive this data within this perimeter."""
        key = (data, perimeter)
        entries = self._api_entries.get(key)
        if entries is None:
            entries = []
            for api_id in self.api_ids:
                api = self.catalog.api_models[api_id]
                if _api_allowed(self.catalog, api, data, perimeter, self.region) is None:
                    rank = self.catalog.models[api.open_model].quality_rank if api.open_model else 0
                    entries.append((TIER_ORDER[api.tier], rank, api_id))
            self._api_entries[key] = entries
        return entries

    def task_quality(self, workload: Workload) -> TaskQuality:
        key = (workload.task, workload.quality)
        answer = self._task_answers.get(key)
        if answer is None:
            answer = self._task_answers[key] = task_quality(self.catalog, workload)
        return answer

    def data_sensitivity(self, workload: Workload) -> DataSensitivity:
        answer = self._data_answers.get(workload.data)
        if answer is None:
            answer = self._data_answers[workload.data] = data_sensitivity(self.catalog, workload)
        return answer

    def api_quote(self, api_id: str, api: ApiModel, request_in: int, request_out: int) -> ApiQuote:
        """The API's price at one request shape, with its figures recorded once."""
        key = (api_id, request_in, request_out)
        quote = self._api_quotes.get(key)
        if quote is None:
            price = costs.api_price(
                self.catalog, api, request_in, request_out, self.settings.price_date
            )
            shape = f"{request_in}/{request_out}"
            ids: tuple[str, ...] = (
                self.book.add(
                    f"api.{api_id}.input_usd_per_mtok[{shape}]",
                    round(price.input_usd_per_mtok, 6),
                    "USD per million input tokens",
                    price.source,
                    price.date,
                ),
                self.book.add(
                    f"api.{api_id}.output_usd_per_mtok[{shape}]",
                    round(price.output_usd_per_mtok, 6),
                    "USD per million output tokens",
                    price.source,
                    price.date,
                ),
            )
            ids += (
                self.book.add(
                    f"api.{api_id}.tier",
                    api.tier.value,
                    "tier",
                    api.tier_source.source,
                    api.tier_source.date,
                ),
            )
            cached_id = write_id = None
            if price.cached_input_usd_per_mtok is not None:
                cached_id = f"api.{api_id}.cached_input_usd_per_mtok[{shape}]"
            if price.cache_write_usd_per_mtok is not None:
                write_id = f"api.{api_id}.cache_write_usd_per_mtok[{shape}]"
            quote = ApiQuote(
                price=price,
                figure_ids=ids,
                cached_figure_id=cached_id,
                write_figure_id=write_id,
                option_id=f"cloud_api/{api_id}",
                input_text=f"{price.input_usd_per_mtok:,.4g} USD/M + ",
                output_text=(
                    f"{price.output_usd_per_mtok:,.4g} USD/M (prices for a request of "
                    f"{request_in:,} input / {request_out:,} output tokens) = "
                ),
            )
            self._api_quotes[key] = quote
        return quote


def task_quality(catalog: Catalog, workload: Workload) -> TaskQuality:
    info = catalog.tasks[workload.task]
    if workload.quality is not None and workload.quality != info.tier:
        return TaskQuality(
            tier=workload.quality,
            reason=f"set to {workload.quality.value} in the workloads file "
            f"(the task {workload.task.value} alone would need {info.tier.value}: {info.reason})",
        )
    return TaskQuality(tier=info.tier, reason=f"{workload.task.value}: {info.reason}")


def data_sensitivity(catalog: Catalog, workload: Workload) -> DataSensitivity:
    info = catalog.data_classes[workload.data]
    return DataSensitivity(perimeter=info.perimeter, reason=info.reason)


def _api_allowed(
    catalog: Catalog, api: ApiModel, data: DataClass, perimeter: Perimeter, region: str
) -> str | None:
    """None when the API may serve this workload, else why not."""
    provider = catalog.providers[api.provider]
    profile = api.inference_profile
    if profile is not None and region not in profile.destination_regions:
        return f"served only through the inference profile {profile.id}, not callable in {region}"
    away = [r for r in profile.destination_regions if r != region] if profile else []
    if away and catalog.data_classes[data].stays_in_region:
        return (
            f"{data.value} data stays in {region}, and the inference profile "
            f"{profile.id if profile else ''} may process it in {', '.join(away)}"
        )
    if perimeter is Perimeter.technical:
        return "the technical perimeter allows no cloud API"
    if perimeter is Perimeter.private_link and not provider.private_link:
        return f"{provider.name} is not reachable through AWS PrivateLink"
    if DATA_ORDER[data] > DATA_ORDER[provider.max_data]:
        return f"{provider.name} may receive at most {provider.max_data.value} data"
    return None


@dataclass(frozen=True, slots=True)
class Demand:
    """One workload's load, and the parts of its option formulas that do not depend on the option
    (formatted once per workload, not once per option)."""

    input_tokens: int
    output_tokens: int
    min_units: int
    peak_output_tps: float | None
    request_in: int
    request_out: int
    # The request shape the throughput model prices it at (request_in, request_out, cached share)
    shape: Shape
    # Context the workload keeps in the KV cache at its busiest: requests in flight x context.
    kv_tokens: int
    units_head: str
    total_head: str
    peak_head: str
    kv_head: str
    api_head_in: str
    api_head_out: str
    # Which API pieces the stack builds for these callers: a PrivateLink network of its own
    # (callers given as plain CIDRs), a transit gateway attachment (callers naming VPCs).
    plain_callers: bool = True
    vpc_callers: bool = False
    # Share of the input tokens read from the provider's prompt cache (cached_input_fraction),
    # and written to it (cache_write_fraction; None: the file does not say).
    cached_fraction: float = 0.0
    write_fraction: float | None = None
    # The figure of the per-user speed it is priced at (its own, or the assumption's).
    speed_figure: str = ASSUMED_SPEED

    @classmethod
    def of(cls, ctx: Context, workload: Workload) -> Demand:
        tokens = workload.monthly_tokens
        min_units = availability_floor(workload)
        peak = workload.peak_tokens_per_second
        request_in, request_out = _request_shape(ctx, workload)
        flying = costs.in_flight(
            ctx.settings,
            workload.concurrency,
            tokens.output,
            peak,
            ctx.seconds_per_month,
            workload.user_output_tps,
        )
        context = request_in + request_out
        speed = workload.user_output_tps or ctx.settings.user_output_tps
        busiest = costs.busiest_output_tps(ctx.settings, tokens.output, peak, ctx.seconds_per_month)
        entries = workload.consumers
        plain = any(isinstance(c, str) or (c.vpc is None and c.account is None) for c in entries)
        vpcs = any(not isinstance(c, str) and c.vpc is not None for c in entries)
        return cls(
            plain_callers=plain,
            vpc_callers=vpcs,
            cached_fraction=workload.cached_input_fraction or 0.0,
            write_fraction=workload.cache_write_fraction,
            speed_figure=speed_figure(ctx.book, workload),
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            min_units=min_units,
            peak_output_tps=peak,
            request_in=request_in,
            request_out=request_out,
            shape=shape_of(ctx, workload),
            kv_tokens=flying * context,
            kv_head=(
                f", KV cache {flying:,} request(s) in flight"
                + (
                    ""
                    if workload.concurrency
                    else f" (busiest output rate {busiest:,.1f} tok/s / user_output_tps "
                    f"{speed:g} tok/s)"
                )
                + f" x {context:,} tokens of context / "
            ),
            units_head=(
                f"load / what a unit serves at this request shape (throughput model) x "
                f"utilization {ctx.settings.utilization}: "
                f"units = max({min_units} ({workload.availability.value} availability), "
                f"ceil(max(output {tokens.output / ctx.seconds_per_month:,.1f} tok/s / "
            ),
            total_head=f", total {tokens.total / ctx.seconds_per_month:,.1f} tok/s / ",
            peak_head=f", peak {peak:,.0f} tok/s / " if peak else "",
            api_head_in=f"{tokens_text(tokens.input)} input x ",
            api_head_out=f"{tokens_text(tokens.output)} output x ",
        )


def shape_of(ctx: Context, workload: Workload) -> Shape:
    """The workload's request shape, the cached share of its prompts (prefix caching) and the
    speed its users read at (its own user_output_tps, else the assumptions')."""
    request_in, request_out = _request_shape(ctx, workload)
    return (
        request_in,
        request_out,
        workload.cached_input_fraction or 0.0,
        workload.user_output_tps or ctx.settings.user_output_tps,
    )


def context_fits(ctx: Context, candidate: SelfHostedCandidate, demand: Demand) -> bool:
    """One request's whole context fits the KV cache of a replica of some tensor-parallel
    group of the candidate (the throughput model's, which the plan sizes with too)."""
    return ctx.shape_limits(candidate, demand.shape) is not None


def limits_at(ctx: Context, candidate: SelfHostedCandidate, shape: Shape) -> ShapeLimits:
    """shape_limits for a shape the candidate was admitted for (context_fits)."""
    found = ctx.shape_limits(candidate, shape)
    assert found is not None, (candidate.option_id, shape)
    return found


def _self_hosted_option(ctx: Context, candidate: SelfHostedCandidate, demand: Demand) -> Option:
    settings = ctx.settings
    at_shape = limits_at(ctx, candidate, demand.shape)
    capacity = at_shape.capacity
    units = costs.units_needed(
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
    peak = demand.peak_head + at_shape.peak_text if demand.peak_head else ""
    # The part after the load depends only on the candidate and the unit count: format it once.
    tail_key = (candidate.option_id, units)
    tail = ctx.formula_tails.get(tail_key)
    if tail is None:
        tail = ctx.formula_tails[tail_key] = (
            f"))) = {units}; nodes = {units} x {capacity.nodes_per_unit} = {nodes}; "
            f"cost = {nodes}{candidate.cost_text}{node_cost:,.2f} USD; plus per pool "
            f"{ctx.pool_fixed.formula}; total {cost:,.2f} USD"
        )
    formula = (
        demand.units_head
        + at_shape.output_text
        + demand.total_head
        + at_shape.total_text
        + peak
        + demand.kv_head
        + at_shape.kv_ceiling_text
        + tail
    )
    return Option(
        id=candidate.option_id,
        placement="self_hosted",
        model=candidate.model_id,
        tier=candidate.tier,
        instance_type=candidate.instance_type,
        pricing=settings.pricing,
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


def _memory_fit(capacity: Capacity) -> MemoryFit:
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


def _throughput_info(
    catalog: Catalog, served: costs.UnitThroughput, factor: float, model_id: str
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
    the pools run vLLM tensor parallel (costs.deployed_throughput_data), so an MoE model's
    figure is the model's extrapolation to a configuration no calibration point measured."""
    calibrated, deployed = throughput_data(catalog), costs.deployed_throughput_data(catalog)
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
    terms: list[str] = []
    notes: list[str] = []
    figures: list[str] = []
    # Writes are a share of the cache's misses (cache_write_fraction of the uncached input).
    misses = (1 - read) * written
    plain, _, _ = costs.cache_shares(price, read, written)
    terms.append(f"{plain:g} x {price.input_usd_per_mtok:,.4g} USD/M")
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
            notes.append(
                f"no cache-{what} price for {api_id}: "
                f"its {role} share {share:g} is charged as input"
            )
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
        of = f" {written:g} of the uncached {1 - read:g}" if what == "write" and read else ""
        terms.append(f"{share:g} {role} ({key}_fraction{of}) x {usd:,.4g} USD/M cache {what}")
    write_price = price.cache_write_usd_per_mtok
    unsaid = demand.write_fraction is None
    if read and unsaid and write_price is not None and write_price > price.input_usd_per_mtok:
        notes.append(
            f"cache writes not counted: {api_id} charges them {write_price:,.4g} USD/M, and "
            "the file gives no cache_write_fraction"
        )
    note = f" ({'; '.join(notes)})" if notes else ""
    head = f"{tokens_text(demand.input_tokens)} input x ({' + '.join(terms)}){note} + "
    return head, tuple(figures)


def _api_option(ctx: Context, api_id: str, api: ApiModel, demand: Demand) -> Option:
    quote = ctx.api_quote(api_id, api, demand.request_in, demand.request_out)
    price = quote.price
    usage = costs.api_monthly_cost(
        price,
        demand.input_tokens,
        demand.output_tokens,
        demand.cached_fraction,
        demand.write_fraction or 0.0,
    )
    fixed = ctx.api_fixed_for(api.provider, demand.plain_callers, demand.vpc_callers)
    head, figures = f"{demand.api_head_in}{quote.input_text}", quote.figure_ids
    if demand.cached_fraction or demand.write_fraction:
        head, cache_figures = _cache_head(ctx, api_id, quote, demand)
        figures = (*figures, *cache_figures)
    formula = (
        f"{head}{demand.api_head_out}{quote.output_text}"
        f"{usage:,.2f} USD; plus, standing alone, its access: {fixed.formula}; total "
        f"{usage + fixed.monthly_usd:,.2f} USD"
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


def _speed_origin(workload: Workload) -> str:
    """Where a workload's per-user speed comes from, in the file's words."""
    if workload.user_output_tps is not None:
        return "its user_output_tps"
    return "assumptions.user_output_tps or planner/data/assumptions.yaml"


def _request_origin(workload: Workload) -> str:
    """Where a workload's request shape comes from, in the file's words."""
    if workload.request is not None:
        return "its request.input_tokens + request.output_tokens"
    return "the request shape of assumptions.request or planner/data/assumptions.yaml"


def longest_request(ctx: Context, workloads: Sequence[Workload]) -> int:
    """The longest context (input and output tokens) of one request of these workloads."""
    return max(sum(_request_shape(ctx, w)) for w in workloads)


def _request_shape(ctx: Context, workload: Workload) -> tuple[int, int]:
    if workload.request is not None:
        return workload.request.input_tokens, workload.request.output_tokens
    return ctx.settings.request_input_tokens, ctx.settings.request_output_tokens


def output_share(ctx: Context, workload: Workload) -> float:
    """Output tokens' share of the workload's tokens (of a request's, with no volume yet)."""
    tokens = workload.monthly_tokens
    if tokens.total > 0:
        return tokens.output / tokens.total
    request_in, request_out = _request_shape(ctx, workload)
    return request_out / (request_in + request_out)


def api_usd_per_token(ctx: Context, api_id: str, workload: Workload, share: float) -> float:
    """An API's price per token at the workload's request shape and input/output mix."""
    request_in, request_out = _request_shape(ctx, workload)
    price = ctx.api_quote(api_id, ctx.catalog.api_models[api_id], request_in, request_out).price
    input_price = costs.api_input_usd_per_mtok(
        price, workload.cached_input_fraction or 0.0, workload.cache_write_fraction or 0.0
    )
    return ((1 - share) * input_price + share * price.output_usd_per_mtok) / costs.MILLION


def unit_tokens(
    ctx: Context, candidate: SelfHostedCandidate, workload: Workload, share: float
) -> float:
    """Tokens a month one unit serves at this input/output mix and the workload's request
    shape, within both of its rates at the utilization."""
    limits = limits_at(ctx, candidate, shape_of(ctx, workload)).limits
    by_output = limits.output_tokens_per_month / share if share > 0 else float("inf")
    return min(by_output, limits.total_tokens_per_month)


def availability_floor(workload: Workload) -> int:
    """Units a workload never goes below: two for `availability: high`, so one can fail."""
    return 2 if workload.availability is Availability.high else 1


def minimum_units(ctx: Context, candidate: SelfHostedCandidate, workload: Workload) -> int:
    """Units the workload needs at any volume: its availability floor, and its peak."""
    floor = availability_floor(workload)
    if workload.peak_tokens_per_second is None and workload.concurrency is None:
        return floor
    # At any volume: the peak and the requests in flight the workload states (a derived
    # concurrency grows with volume, so it adds nothing here).
    kv_tokens = 0
    if workload.concurrency is not None:
        kv_tokens = workload.concurrency * sum(_request_shape(ctx, workload))
    return costs.units_needed(
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


def _break_even(ctx: Context, workload: Workload, options: list[Option]) -> BreakEven | None:
    """Break-even between the plan's own self-hosted option (own_option) and the cheapest API the
    workload may use, at the plan's purchase option: every crossing up to the stated maximum
    volume, from the same lines `planner crossover` draws (crossover_lines)."""
    own = own_option(ctx, options)
    api_ids = admissible_apis(options)
    if own is None or not api_ids:
        return None
    candidate = ctx.by_option[own.id]
    apis, units, rows = crossover_lines(
        ctx, candidate, [workload], api_ids, purchases=(ctx.settings.pricing.value,)
    )
    if not apis:
        return None
    api, unit, row = apis[0], units[0], rows[0]
    tokens = workload.monthly_tokens
    volume = row.monthly_tokens
    api_id = f"cloud_api/{api.api_id}"
    if volume is None:
        explanation = (
            f"{own.id} never costs less than {api_id}: one unit serves at most "
            f"{tokens_text(unit.tokens)} tokens a month at this workload's mix, which cost "
            f"{usd(api.usd_per_token * unit.tokens)} through the API, less than the unit's "
            f"{usd(unit.monthly_usd)}"
        )
    else:
        again = _crossings_text(row.crossings, api_id, own.id)
        explanation = (
            f"{own.id} costs less than {api_id} from {tokens_text(volume)} tokens a month "
            f"(at this workload's input/output mix, {ctx.settings.pricing.value}, fixed costs "
            f"included), that is from {usd(volume * api.usd_per_token)} a month of API spend"
            + (f"; {again}" if again else "")
            + f" (crossings up to {tokens_text(row.max_tokens)} tokens a month"
            + (", more beyond the last listed" if row.truncated else "")
            + f"); this workload has {tokens_text(tokens.total)}"
        )
    top = 2 * max(volume or 0.0, float(tokens.total), unit.tokens)
    chart_tokens = [round(top * step / (CHART_POINTS - 1)) for step in range(CHART_POINTS)]
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

    def cost(self, volume: float) -> float:
        units = max(self.min_units, math.ceil(volume / self.tokens - costs.EPSILON))
        return self.fixed_usd + self.monthly_usd * units


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
    units = [
        Unit(option, unit_usd, capacity_tokens, min_units, candidate.fixed_usd)
        for option, unit_usd in ctx.unit_prices(candidate)
        if purchases is None or option in purchases
    ]
    horizon = CROSSOVER_HORIZON * max(float(total), min_units * capacity_tokens)
    rows = []
    for api in apis:
        for unit in units:
            args = (api.usd_per_token, unit.monthly_usd, unit.tokens, unit.min_units)
            fixed = (api.fixed_usd, unit.fixed_usd)
            volume = costs.break_even_tokens(*args, *fixed)
            found, cut = costs.crossings(*args, horizon, *fixed, limit=MAX_CROSSINGS)
            rows.append(
                Row(
                    api.comparison,
                    api.api_id,
                    unit.purchase,
                    volume,
                    None if volume is None else volume * api.usd_per_token,
                    [
                        Crossing(c.monthly_tokens, "self_hosted")
                        if c.cheaper == "self_hosted"
                        else Crossing(c.monthly_tokens, "cloud_api")
                        for c in found
                    ],
                    horizon,
                    cut,
                )
            )
    return apis, units, rows


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def cost_range(
    ctx: Context,
    candidate: SelfHostedCandidate,
    loads: list[tuple[Shape, int, int, float | None, float]],
    min_units: int,
) -> tuple[float, float]:
    """Low and high monthly cost of a pool of the candidate serving these loads (request shape,
    input and output tokens, peak, KV tokens: one workload's, or a shared pool's members'), from
    the ranges of utilization, the throughput model's error and the purchase rate. Loads
    add up part by part, as in units_needed and the optimizer."""
    found = []
    for end, unit_usd in enumerate(candidate.range_unit_usd):
        parts = [
            costs.unit_load(
                limits_at(ctx, candidate, shape).range_limits[end], tokens_in, tokens_out, peak, kv
            )
            for shape, tokens_in, tokens_out, peak, kv in loads
        ]
        total = (
            sum(p[0] for p in parts),
            sum(p[1] for p in parts),
            sum(p[2] for p in parts),
        )
        units = costs.units_for_load(total, min_units)
        found.append(round(units * unit_usd + candidate.fixed_usd, 2))
    return found[0], found[1]


def _cost_key(option: Option) -> tuple[float, str]:
    return (option.monthly_cost_usd, option.id)


def model_size(catalog: Catalog, placement: str, model_id: str) -> float:
    """Parameters of the open model behind an option; closed API models rank as largest."""
    open_model = model_id if placement == "self_hosted" else catalog.api_models[model_id].open_model
    return catalog.models[open_model].total_params_b.value if open_model else float("inf")


class Unservable(Exception):
    """The workload's own fields rule out every option: reported as bad input."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


def decide(ctx: Context, index: int, workload: Workload) -> tuple[Answers, Option, list[Warning]]:
    """Answer the three questions for one workload and choose the cheapest admissible option."""
    catalog = ctx.catalog
    quality = ctx.task_quality(workload)
    sensitivity = ctx.data_sensitivity(workload)
    perimeter = sensitivity.perimeter
    warnings: list[Warning] = []

    # (tier order, quality rank, what to price): options are priced only once admissible.
    entries: list[tuple[int, int, SelfHostedCandidate | str]]
    if workload.model is None:
        # The article's snapshot models (current: false) compete only when pinned.
        apis = catalog.api_models
        entries = [
            *ctx.self_hosted_entries,
            *(e for e in ctx.api_entries(workload.data, perimeter) if apis[e[2]].current),
        ]
    else:
        entries = [e for e in ctx.self_hosted_entries if e[2].model_id == workload.model]
        if workload.model in catalog.models:
            # An open-weights pin pins the model, not how it is served: the same weights sold
            # as an API compete too, where the perimeter allows them.
            entries += [
                e
                for e in ctx.api_entries(workload.data, perimeter)
                if catalog.api_models[e[2]].open_model == workload.model
            ]
        if workload.model in catalog.api_models:
            api = catalog.api_models[workload.model]
            refusal = _api_allowed(catalog, api, workload.data, perimeter, ctx.region)
            if refusal is not None:
                raise Unservable(
                    [
                        Problem(
                            f"workloads[{index}].model",
                            f"{workload.model} cannot serve {workload.data.value} data "
                            f"(perimeter {perimeter.value}): {refusal}; pin an open-weights "
                            "model or remove the pin",
                        )
                    ]
                )
            entries = [
                e for e in ctx.api_entries(workload.data, perimeter) if e[2] == workload.model
            ]
    if not entries:
        raise Unservable(
            [Problem(f"workloads[{index}]", "no option in the catalog can serve this workload")]
        )

    demand = Demand.of(ctx, workload)

    def price(subject: SelfHostedCandidate | str) -> Option:
        if isinstance(subject, str):
            return _api_option(ctx, subject, catalog.api_models[subject], demand)
        return _self_hosted_option(ctx, subject, demand)

    # A request longer than a model's context window rules the model out, and so does a replica
    # whose KV cache cannot hold one request's context.
    context = demand.request_in + demand.request_out
    windows = catalog.context_windows
    if workload.model is not None and context > windows[workload.model].value:
        window = windows[workload.model]
        raise Unservable(
            [
                Problem(
                    f"workloads[{index}].model",
                    f"a request of {context:,} tokens ({_request_origin(workload)}) is longer "
                    f"than {workload.model}'s context window of {window.value:,.0f} tokens "
                    f"({window.source}): shorten the requests or pin another model",
                )
            ]
        )
    over_window = sorted(
        {
            e[2] if isinstance(e[2], str) else e[2].model_id
            for e in entries
            if context > windows[e[2] if isinstance(e[2], str) else e[2].model_id].value
        }
    )
    too_long = sorted(
        e[2].option_id
        for e in entries
        if not isinstance(e[2], str)
        and e[2].model_id not in over_window
        and not context_fits(ctx, e[2], demand)
    )
    # A self-hosted option on which no user reads at the workload's per-user speed, even one
    # request alone (its decode step is too long), cannot deliver the workload: left out.
    speed = demand.shape[3]
    too_slow = {
        e[2].option_id: limits_at(ctx, e[2], demand.shape).throughput.max_user_tps
        for e in entries
        if not isinstance(e[2], str)
        and e[2].model_id not in over_window
        and e[2].option_id not in too_long
        and not limits_at(ctx, e[2], demand.shape).throughput.delivers_user_speed
    }
    slow_text = ", ".join(f"{o} (at most {too_slow[o]:,.1f})" for o in sorted(too_slow))
    if too_long or over_window or too_slow:
        left_out = {*too_long, *over_window, *too_slow}
        entries = [
            e
            for e in entries
            if (e[2] if isinstance(e[2], str) else e[2].option_id) not in left_out
            and (isinstance(e[2], str) or e[2].model_id not in left_out)
        ]
        if not entries and not too_long and not over_window:
            raise Unservable(
                [
                    Problem(
                        f"workloads[{index}].user_output_tps"
                        if workload.user_output_tps is not None
                        else f"workloads[{index}]",
                        f"no option allowed reaches {speed:g} output tokens/s a user "
                        f"({_speed_origin(workload)}): {slow_text} tokens/s at most, even "
                        "serving one request alone; ask for a lower speed or unpin the model",
                    )
                ]
            )
        if not entries:
            raise Unservable(
                [
                    Problem(
                        f"workloads[{index}].request"
                        if workload.request is not None
                        else f"workloads[{index}]",
                        f"a context of {context:,} tokens "
                        + (
                            f"is longer than the context window of {', '.join(over_window)}"
                            + (" and " if too_long else "")
                            if over_window
                            else ""
                        )
                        + ("fits no replica's KV cache of the options allowed" if too_long else "")
                        + f" ({_request_origin(workload)})"
                        + (
                            f", and no other option reaches {speed:g} output tokens/s a user "
                            f"({_speed_origin(workload)}): {slow_text} tokens/s at most"
                            if too_slow
                            else ""
                        )
                        + ": shorten the requests or unpin the model",
                    )
                ]
            )
    needed = TIER_ORDER[quality.tier]
    meeting = [subject for tier, _, subject in entries if tier >= needed]
    sizes = ctx.model_sizes
    ceiling_alternatives: list[Option] = []
    if meeting:
        admissible = [price(subject) for subject in meeting]
    else:
        # Nothing meets the tier within the perimeter: the best model allowed (the top-ranked of
        # the best tier reached), and say so; the cheaper models of that tier are priced beside
        # it, so the plan shows what insisting on the top-ranked model costs.
        reached = max(tier for tier, _, _ in entries)
        best = [(rank, subject) for tier, rank, subject in entries if tier == reached]
        top_rank = max(rank for rank, _ in best)
        admissible = [price(subject) for rank, subject in best if rank == top_rank]
        admissible.sort(key=lambda o: (o.monthly_cost_usd, sizes[o.model], o.id))
        top = admissible[0]
        cheapest: dict[str, Option] = {}
        for rank, subject in best:
            if rank == top_rank:
                continue
            option = price(subject)
            known = cheapest.get(option.model)
            if known is None or (option.monthly_cost_usd, option.id) < (
                known.monthly_cost_usd,
                known.id,
            ):
                cheapest[option.model] = option
        cheaper = sorted(
            (o for o in cheapest.values() if o.monthly_cost_usd < top.monthly_cost_usd),
            key=lambda o: (o.monthly_cost_usd, sizes[o.model], o.id),
        )
        for option in cheaper:
            # The difference of the two standalone prices, said as what it is: with shared
            # pools (the optimal strategy) pinning the model moves the plan's total by another
            # amount, which only a re-plan with the pin gives.
            option.note = (
                f"comparison only, not chosen: {option.tier.value} like {top.model} but ranked "
                f"below it; deciding this workload alone, "
                f"{usd(top.monthly_cost_usd - option.monthly_cost_usd)} a month less than "
                f"{top.id} (not the change in the plan's total, where pools are shared: "
                f"re-plan with `model: {option.model}` pinned to see that); pin "
                f"`model: {option.model}` to use it"
            )
        ceiling_alternatives = cheaper
        # The ranks that make the top model the top one, with their sources, among the figures
        # of each option they ordered.
        for option in [top, *cheaper]:
            if option.placement == "self_hosted":
                model = catalog.models[option.model]
                option.figures = (
                    *option.figures,
                    ctx.book.add(
                        f"model.{option.model}.quality_rank",
                        model.quality_rank,
                        "quality rank among the open models (higher is better)",
                        model.quality_source,
                        model.quality_date,
                    ),
                )
        # The warning names the cheaper models, not their prices: the prices (and what
        # insisting on the top-ranked model costs) are in each alternative's note, so the same
        # warning of many workloads still groups into one line.
        listed = (
            "; cheaper models of the same tier are priced as alternatives, each saying what "
            f"insisting on the top-ranked {top.model} costs when this workload is decided "
            "alone: " + ", ".join(o.model for o in cheaper)
            if cheaper
            else f"; no model of the {top.tier.value} tier costs less"
        )
        warnings.append(
            Warning(
                code="quality_ceiling",
                message=(
                    f"the task needs a {quality.tier.value} model but nothing at that tier meets "
                    f"the {perimeter.value} perimeter"
                    + (f" or the pinned model {workload.model}" if workload.model else "")
                    + f"; the best model allowed, {top.model} ({top.tier.value}), is used"
                    + listed
                    + f". What is given up: {quality.tier.value}-level quality "
                    f"({catalog.tasks[workload.task].reason}); review its answers on this task "
                    "before relying on them"
                ),
            )
        )
    # Cheapest first; at equal cost the smaller model, as the smallest model that solves the
    # problem is the one to start with; then by id, so the choice never depends on order.
    admissible.sort(key=lambda o: (o.monthly_cost_usd, sizes[o.model], o.id))
    chosen = admissible[0]
    runner_up = admissible[1] if len(admissible) > 1 else None
    reason = (
        f"cheapest of {len(admissible)} option(s) meeting tier "
        f"{admissible[0].tier.value if not meeting else quality.tier.value} within the "
        f"{perimeter.value} perimeter (ties go to the smaller model): {chosen.id} at "
        f"{usd(chosen.monthly_cost_usd)} a month"
        + (
            f"; next, {runner_up.id} at {usd(runner_up.monthly_cost_usd)}"
            if runner_up is not None
            else ""
        )
        + (
            f"; left out because one {context:,}-token request is longer than their context "
            f"window: {', '.join(over_window)}"
            if over_window
            else ""
        )
        + (
            f"; left out because one {context:,}-token context does not fit a replica's KV "
            f"cache: {', '.join(too_long)}"
            if too_long
            else ""
        )
        + (
            f"; left out because no batch reaches {speed:g} output tokens/s a user "
            f"({_speed_origin(workload)}), even one request alone: {slow_text} tokens/s"
            if too_slow
            else ""
        )
    )
    if chosen.placement == "self_hosted":
        candidate = ctx.by_option[chosen.id]
        chosen.monthly_cost_low_usd, chosen.monthly_cost_high_usd = cost_range(
            ctx,
            candidate,
            [
                (
                    demand.shape,
                    demand.input_tokens,
                    demand.output_tokens,
                    demand.peak_output_tps,
                    demand.kv_tokens,
                )
            ],
            demand.min_units,
        )
    # The cheaper models of the tier under a quality ceiling, and the chosen self-hosted model
    # at a lower precision, where its own needs several nodes.
    alternatives = list(ceiling_alternatives)
    for model_id in [chosen.model] if chosen.placement == "self_hosted" else []:
        for candidate in ctx.alternatives.get(model_id, ()):
            if not context_fits(ctx, candidate, demand) or not (
                limits_at(ctx, candidate, demand.shape).throughput.delivers_user_speed
            ):
                continue
            option = _self_hosted_option(ctx, candidate, demand)
            precision = catalog.precisions[candidate.memory_fit.precision]
            option.note = (
                f"comparison only, not chosen: {candidate.memory_fit.precision} weights fit one "
                f"{candidate.instance_type} where {catalog.models[model_id].default_precision} "
                f"weights do not; quality: {precision.quality_note}; throughput from the "
                f"throughput model at {candidate.memory_fit.precision}; not deployable from "
                f"this plan: the catalog has no {candidate.memory_fit.precision} checkpoint"
            )
            alternatives.append(option)
    economics = VolumeEconomics(
        monthly_input_tokens=workload.monthly_tokens.input,
        monthly_output_tokens=workload.monthly_tokens.output,
        options=admissible,
        alternatives=alternatives,
        chosen=chosen.id,
        reason=reason,
        break_even=_break_even(ctx, workload, admissible),
    )
    answers = Answers(
        task_quality=quality, data_sensitivity=sensitivity, volume_economics=economics
    )
    return answers, chosen, warnings
