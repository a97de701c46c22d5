"""The three answers, each decided separately for one workload.

1. task quality: the smallest tier that solves the task;
2. data sensitivity: the perimeter the data requires;
3. volume economics: every option meeting both, priced at the workload's volume, and the choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner import costs
from planner.catalog import DATA_ORDER, TIER_ORDER, ApiModel, Catalog
from planner.costs import Capacity, Settings
from planner.errors import Problem
from planner.model import (
    Answers,
    BreakEven,
    DataSensitivity,
    FigureUsed,
    MemoryFit,
    Option,
    TaskQuality,
    VolumeEconomics,
    Warning,
)
from planner.workloads import Availability, Perimeter, Workload


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


@dataclass(frozen=True)
class SelfHostedCandidate:
    """A model on an instance type: what one scaling unit costs and serves (volume-independent)."""

    model_id: str
    instance_type: str
    capacity: Capacity
    unit_monthly_usd: float
    figure_ids: tuple[str, ...]


@dataclass
class Context:
    """What every workload's answers share: the catalog, the settings and the figures used."""

    catalog: Catalog
    settings: Settings
    book: FigureBook
    region: str
    seconds_per_month: float = 0.0
    candidates: dict[str, list[SelfHostedCandidate]] = field(default_factory=dict)
    _api_prices: dict[tuple[str, int, int], tuple[costs.ApiPrice, tuple[str, ...]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.seconds_per_month = self.catalog.pricing.hours_per_month.value * 3600
        for model_id in sorted(self.catalog.models):
            self.candidates[model_id] = self._candidates_for(model_id)

    def _candidates_for(self, model_id: str) -> list[SelfHostedCandidate]:
        catalog, settings, book = self.catalog, self.settings, self.book
        model = catalog.models[model_id]
        found = []
        for instance_type in sorted(catalog.instances):
            instance = catalog.instances[instance_type]
            capacity = costs.unit_capacity(catalog, model, instance, settings)
            if capacity is None:
                continue
            option = catalog.pricing.options[settings.pricing]
            hours = catalog.pricing.hours_per_month
            unit_monthly = (
                costs.node_hourly_usd(catalog, instance, settings.pricing)
                * hours.value
                * capacity.nodes_per_unit
            )
            precision = catalog.precisions[capacity.fit.precision].bytes_per_param
            figure_ids = (
                book.add(
                    f"instance.{instance_type}.on_demand_usd_per_hour",
                    instance.on_demand_usd_per_hour.value,
                    "USD/hour",
                    instance.on_demand_usd_per_hour.source,
                    instance.on_demand_usd_per_hour.date,
                ),
                book.add(
                    f"pricing.{settings.pricing.value}.multiplier",
                    option.multiplier.value,
                    "x on-demand",
                    option.multiplier.source,
                    option.multiplier.date,
                ),
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
                    precision.value,
                    "bytes per parameter",
                    precision.source,
                    precision.date,
                ),
                book.add(
                    f"throughput.{model_id}.{instance.gpu}",
                    round(capacity.output_ceiling_tps / (capacity.fit.replicas_per_node or 1), 2),
                    "output tokens/s per replica (ceiling)",
                    capacity.throughput_source
                    + (
                        "; H100 figure used for lack of one on this GPU"
                        if capacity.throughput_is_stand_in
                        else ""
                    ),
                    capacity.throughput_date,
                ),
                "assumption.utilization",
                "assumption.serving_efficiency",
                "assumption.memory_reserve",
            )
            found.append(
                SelfHostedCandidate(model_id, instance_type, capacity, unit_monthly, figure_ids)
            )
        return found

    def api_price(
        self, api_id: str, api: ApiModel, request_in: int, request_out: int
    ) -> tuple[costs.ApiPrice, tuple[str, ...]]:
        key = (api_id, request_in, request_out)
        cached = self._api_prices.get(key)
        if cached is None:
            price = costs.api_price(
                self.catalog, api, request_in, request_out, self.settings.price_date
            )
            shape = f"{request_in}/{request_out}"
            ids = (
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
            cached = (price, ids)
            self._api_prices[key] = cached
        return cached


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
    catalog: Catalog, api: ApiModel, workload: Workload, perimeter: Perimeter
) -> str | None:
    """None when the API may serve this workload, else why not."""
    provider = catalog.providers[api.provider]
    if perimeter is Perimeter.technical:
        return "the technical perimeter allows no cloud API"
    if perimeter is Perimeter.private_link and not provider.private_link:
        return f"{provider.name} is not reachable through AWS PrivateLink"
    if DATA_ORDER[workload.data] > DATA_ORDER[provider.max_data]:
        return f"{provider.name} may receive at most {provider.max_data.value} data"
    return None


def _quality_rank(catalog: Catalog, option: Option) -> int:
    """Open models rank by the catalog; a hosted open model ranks as its open model."""
    if option.placement == "self_hosted":
        return catalog.models[option.model].quality_rank
    open_model = catalog.api_models[option.model].open_model
    return catalog.models[open_model].quality_rank if open_model else 0


def _self_hosted_option(ctx: Context, candidate: SelfHostedCandidate, workload: Workload) -> Option:
    settings, capacity = ctx.settings, candidate.capacity
    fit = capacity.fit
    min_units = 2 if workload.availability is Availability.high else 1
    units = costs.units_for_load(
        capacity,
        workload.monthly_tokens.input,
        workload.monthly_tokens.output,
        ctx.seconds_per_month,
        settings,
        workload.peak_tokens_per_second,
        min_units,
    )
    nodes = units * capacity.nodes_per_unit
    cost = units * candidate.unit_monthly_usd
    instance = ctx.catalog.instances[candidate.instance_type]
    hourly = costs.node_hourly_usd(ctx.catalog, instance, settings.pricing)
    derate = settings.serving_efficiency * settings.utilization
    out_tps = workload.monthly_tokens.output / ctx.seconds_per_month
    total_tps = workload.monthly_tokens.total / ctx.seconds_per_month
    formula = (
        f"units = max({min_units} ({workload.availability.value} availability), "
        f"ceil(max(output {out_tps:,.1f} tok/s / {capacity.output_ceiling_tps * derate:,.1f}, "
        f"total {total_tps:,.1f} tok/s / {capacity.total_ceiling_tps * derate:,.1f})"
        + (
            f", peak {workload.peak_tokens_per_second:,.0f} tok/s / "
            f"{capacity.output_ceiling_tps * settings.serving_efficiency:,.1f}"
            if workload.peak_tokens_per_second
            else ""
        )
        + f")) = {units}, where a unit's ceiling x serving efficiency {settings.serving_efficiency}"
        f" x utilization {settings.utilization}; nodes = {units} x {capacity.nodes_per_unit} = "
        f"{nodes}; cost = {nodes} x {hourly:,.4g} USD/h ({settings.pricing.value}) x "
        f"{ctx.catalog.pricing.hours_per_month.value:,.0f} h = {usd(cost)}"
    )
    return Option(
        id=f"self_hosted/{candidate.model_id}/{candidate.instance_type}",
        placement="self_hosted",
        model=candidate.model_id,
        tier=ctx.catalog.models[candidate.model_id].tier,
        instance_type=candidate.instance_type,
        pricing=settings.pricing,
        memory_fit=MemoryFit(
            precision=fit.precision,
            weights_gb=round(fit.weights_gb, 1),
            gpu_memory_gb=fit.gpu_memory_gb,
            gpus_per_replica=fit.gpus_per_replica,
            tensor_parallel=fit.tensor_parallel,
            pipeline_parallel=fit.pipeline_parallel,
            replicas_per_node=fit.replicas_per_node,
            fits_one_node=fit.nodes_per_replica == 1,
            note=fit.note,
        ),
        nodes=nodes,
        monthly_cost_usd=round(cost, 2),
        formula=formula,
        figures=list(candidate.figure_ids),
    )


def _api_option(ctx: Context, api_id: str, api: ApiModel, workload: Workload) -> Option:
    request_in, request_out = _request_shape(ctx, workload)
    price, figure_ids = ctx.api_price(api_id, api, request_in, request_out)
    tokens = workload.monthly_tokens
    cost = costs.api_monthly_cost(price, tokens.input, tokens.output)
    formula = (
        f"{tokens_text(tokens.input)} input x {price.input_usd_per_mtok:,.4g} USD/M + "
        f"{tokens_text(tokens.output)} output x {price.output_usd_per_mtok:,.4g} USD/M "
        f"(prices for a request of {request_in:,} input / {request_out:,} output tokens) = "
        f"{usd(cost)}"
    )
    return Option(
        id=f"cloud_api/{api_id}",
        placement="cloud_api",
        model=api_id,
        provider=api.provider,
        tier=api.tier,
        monthly_cost_usd=round(cost, 2),
        formula=formula,
        figures=list(figure_ids),
    )


def _request_shape(ctx: Context, workload: Workload) -> tuple[int, int]:
    if workload.request is not None:
        return workload.request.input_tokens, workload.request.output_tokens
    return ctx.settings.request_input_tokens, ctx.settings.request_output_tokens


def _break_even(ctx: Context, workload: Workload, options: list[Option]) -> BreakEven | None:
    """Break-even between the cheapest API option and the self-hosted option that breaks even
    soonest (the API is linear in volume, so its cheapest option is cheapest at every volume)."""
    api = min((o for o in options if o.placement == "cloud_api"), key=_cost_key, default=None)
    own_options = [o for o in options if o.placement == "self_hosted"]
    if api is None or not own_options:
        return None
    tokens = workload.monthly_tokens
    request_in, request_out = _request_shape(ctx, workload)
    if tokens.total > 0:
        output_share = tokens.output / tokens.total
    else:
        output_share = request_out / (request_in + request_out)
    price, _ = ctx.api_price(api.model, ctx.catalog.api_models[api.model], request_in, request_out)
    api_per_token = (
        (1 - output_share) * price.input_usd_per_mtok + output_share * price.output_usd_per_mtok
    ) / costs.MILLION
    derate = ctx.settings.serving_efficiency * ctx.settings.utilization
    min_units_floor = 2 if workload.availability is Availability.high else 1

    # (volume or None, -(API value of a unit / unit cost), id) orders the candidates.
    best: tuple[tuple[float, float, str], Option, SelfHostedCandidate, float, float | None] | None
    best = None
    for own in own_options:
        candidate = next(
            c for c in ctx.candidates[own.model] if c.instance_type == own.instance_type
        )
        capacity = candidate.capacity
        seconds_per_token = max(
            output_share / capacity.output_ceiling_tps, 1 / capacity.total_ceiling_tps
        )
        unit_tokens = ctx.seconds_per_month * derate / seconds_per_token
        min_units = costs.units_for_load(
            capacity, 0, 0, ctx.seconds_per_month, ctx.settings,
            workload.peak_tokens_per_second, min_units_floor,
        )  # fmt: skip
        volume = costs.break_even_tokens(
            api_per_token, candidate.unit_monthly_usd, unit_tokens, min_units
        )
        ratio = api_per_token * unit_tokens / candidate.unit_monthly_usd
        key = (volume if volume is not None else float("inf"), -ratio, own.id)
        if best is None or key < best[0]:
            best = (key, own, candidate, unit_tokens, volume)
    assert best is not None
    _, own, candidate, unit_tokens, volume = best
    if volume is None:
        explanation = (
            f"no self-hosted option ever breaks even with {api.id}; the closest, {own.id}, "
            f"serves at most {tokens_text(unit_tokens)} tokens a month per unit, which cost "
            f"{usd(api_per_token * unit_tokens)} through the API, less than the unit's "
            f"{usd(candidate.unit_monthly_usd)}"
        )
        return BreakEven(
            api_option=api.id,
            self_hosted_option=own.id,
            monthly_tokens=None,
            api_monthly_usd=None,
            explanation=explanation,
        )
    spend = volume * api_per_token
    explanation = (
        f"{own.id} costs less than {api.id} from {tokens_text(volume)} tokens a month "
        f"(at this workload's input/output mix), that is from {usd(spend)} a month of API spend; "
        f"this workload has {tokens_text(tokens.total)}"
    )
    return BreakEven(
        api_option=api.id,
        self_hosted_option=own.id,
        monthly_tokens=round(volume),
        api_monthly_usd=round(spend, 2),
        explanation=explanation,
    )


def _cost_key(option: Option) -> tuple[float, str]:
    return (option.monthly_cost_usd, option.id)


def _choice_key(catalog: Catalog, option: Option) -> tuple[float, float, str]:
    """Cheapest first; at equal cost the smaller model, as the smallest model that solves the
    problem is the one to start with; then by id, so the choice never depends on order."""
    open_model = (
        option.model
        if option.placement == "self_hosted"
        else catalog.api_models[option.model].open_model
    )
    size = catalog.models[open_model].total_params_b.value if open_model else float("inf")
    return (option.monthly_cost_usd, size, option.id)


class Unservable(Exception):
    """The workload's own fields rule out every option: reported as bad input."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


def decide(ctx: Context, index: int, workload: Workload) -> tuple[Answers, Option, list[Warning]]:
    """Answer the three questions for one workload and choose the cheapest admissible option."""
    catalog = ctx.catalog
    quality = task_quality(catalog, workload)
    sensitivity = data_sensitivity(catalog, workload)
    perimeter = sensitivity.perimeter
    warnings: list[Warning] = []
    problems: list[Problem] = []

    options: list[Option] = []
    for model_id, candidates in ctx.candidates.items():
        if workload.model is None or workload.model == model_id:
            options.extend(_self_hosted_option(ctx, c, workload) for c in candidates)
    for api_id in sorted(catalog.api_models):
        api = catalog.api_models[api_id]
        if workload.model is not None and workload.model != api_id:
            continue
        refusal = _api_allowed(catalog, api, workload, perimeter)
        if refusal is None:
            options.append(_api_option(ctx, api_id, api, workload))
        elif workload.model == api_id:
            problems.append(
                Problem(
                    f"workloads[{index}].model",
                    f"{api_id} cannot serve {workload.data.value} data (perimeter "
                    f"{perimeter.value}): {refusal}; pin an open-weights model or remove the pin",
                )
            )
    if problems:
        raise Unservable(problems)
    if not options:
        raise Unservable(
            [Problem(f"workloads[{index}]", "no option in the catalog can serve this workload")]
        )

    needed = TIER_ORDER[quality.tier]
    meeting = [o for o in options if TIER_ORDER[o.tier] >= needed]
    if meeting:
        admissible = meeting
    else:
        best = max(_quality_rank(catalog, o) for o in options)
        admissible = [o for o in options if _quality_rank(catalog, o) == best]
        warnings.append(
            Warning(
                code="quality_ceiling",
                message=(
                    f"the task needs a {quality.tier.value} model but nothing at that tier meets "
                    f"the {perimeter.value} perimeter"
                    + (f" or the pinned model {workload.model}" if workload.model else "")
                    + f"; the best model allowed, {admissible[0].model} "
                    f"({admissible[0].tier.value}), is used. What is given up: "
                    f"{quality.tier.value}-level quality ({catalog.tasks[workload.task].reason}); "
                    "review its answers on this task before relying on them"
                ),
            )
        )
    admissible.sort(key=lambda option: _choice_key(catalog, option))
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
    )
    if chosen.placement == "self_hosted":
        assert chosen.instance_type is not None
        candidate = next(
            c for c in ctx.candidates[chosen.model] if c.instance_type == chosen.instance_type
        )
        if candidate.capacity.throughput_is_stand_in:
            warnings.append(
                Warning(
                    code="throughput_stand_in",
                    message=(
                        f"no throughput figure for {chosen.model} on "
                        f"{catalog.instances[chosen.instance_type].gpu.upper()}: the H100 figure "
                        "is used, which likely understates this GPU; benchmark before committing"
                    ),
                )
            )
    economics = VolumeEconomics(
        monthly_input_tokens=workload.monthly_tokens.input,
        monthly_output_tokens=workload.monthly_tokens.output,
        options=admissible,
        chosen=chosen.id,
        reason=reason,
        break_even=_break_even(ctx, workload, admissible),
    )
    answers = Answers(
        task_quality=quality, data_sensitivity=sensitivity, volume_economics=economics
    )
    return answers, chosen, warnings
