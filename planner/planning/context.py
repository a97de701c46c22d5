"""What every workload's answers share: the catalog, the settings, the candidates and the API
models, as tables computed once per plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.catalog import DATA_ORDER, TIER_ORDER, ApiModel, Catalog
from planner.catalog.vocabulary import DataClass, Perimeter, Pricing, Task, Tier
from planner.costing import costs
from planner.costing.costs import Settings
from planner.costing.throughput import default_throughput_data
from planner.inputs.workloads import Workload
from planner.planfile.schema import DataSensitivity, TaskQuality
from planner.planning.candidates import SelfHostedCandidate, Shape, ShapeLimits, memory_fit_of
from planner.planning.figures import ASSUMED_SPEED, FigureBook, throughput_figures
from planner.planning.text import tokens_text


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
        VPC's transit gateway attachment when callers name VPCs (stacks/private_link.py,
        stacks/egress.py)."""
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
            kv_precision = default_throughput_data().architectures[model_id].kv_cache_precision
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
                *throughput_figures(book, model_id, instance.gpu),
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
                    memory_fit=memory_fit_of(capacity),
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
                memory_fit=memory_fit_of(capacity),
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
                if api_allowed(self.catalog, api, data, perimeter, self.region) is None:
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


def api_allowed(
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


def model_size(catalog: Catalog, placement: str, model_id: str) -> float:
    """Parameters of the open model behind an option; closed API models rank as largest."""
    open_model = model_id if placement == "self_hosted" else catalog.api_models[model_id].open_model
    return catalog.models[open_model].total_params_b.value if open_model else float("inf")
