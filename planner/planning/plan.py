"""Build the plan: every workload's three answers, the self-hosted pools, the API access, totals."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Literal

from genai_prices import __version__ as genai_prices_version

from planner.catalog import Catalog, Figure
from planner.catalog.aws_prices import price_figure
from planner.catalog.vocabulary import Perimeter, Pricing
from planner.costing import (
    Settings,
    api_fixed_kinds,
    connection_cost,
    pieces_cost,
    pool_staff_usd,
    purchase_costs,
    unit_load,
    units_for_load,
)
from planner.costing.throughput_data import throughput_data
from planner.errors import PlannerError, Problem
from planner.inputs import networks
from planner.inputs.loader import LoadedWorkloads
from planner.inputs.workloads import Workload, WorkloadsFile
from planner.planfile import (
    API_NETWORK_FOR,
    SCHEMA_VERSION,
    Answers,
    Connection,
    Consumer,
    Crossing,
    Option,
    Plan,
    Pool,
    PoolCrossover,
    PoolLoad,
    ProviderAccess,
    PurchaseOptionCost,
    Totals,
    Warning,
    WorkloadPlan,
)
from planner.planning import optimize
from planner.planning.answers import (
    Context,
    Demand,
    FigureBook,
    SelfHostedCandidate,
    Unservable,
    admissible_apis,
    availability_floor,
    cost_range,
    crossover_lines,
    decide,
    limits_at,
    longest_request,
    shape_of,
    speed_figure,
)

Strategy = Literal["optimal", "per-workload"]
PERIMETER_ORDER = {Perimeter.contractual: 0, Perimeter.private_link: 1, Perimeter.technical: 2}


def catalog_sha256(catalog: Catalog) -> str:
    """One hash over the data files of the catalog that priced the plan (the directory it was
    read from), so a plan records which catalog priced it."""
    digest = hashlib.sha256()
    for path in sorted(catalog.directory.glob("*.yaml")):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    digest.update(f"genai-prices {genai_prices_version}".encode())
    return digest.hexdigest()


def settings_for(catalog: Catalog, spec: WorkloadsFile, book: FigureBook) -> Settings:
    """Catalog defaults, overridden by the workloads file; each recorded with its source."""
    defaults = catalog.defaults
    given = spec.assumptions
    request = given.request
    settings = Settings(
        pricing=given.pricing or Pricing(defaults.pricing.value),
        utilization=given.utilization or defaults.utilization.value,
        memory_reserve=(
            given.memory_reserve
            if given.memory_reserve is not None
            else defaults.memory_reserve.value
        ),
        request_input_tokens=(
            request.input_tokens if request else int(defaults.request_input_tokens.value)
        ),
        request_output_tokens=(
            request.output_tokens if request else int(defaults.request_output_tokens.value)
        ),
        price_date=given.price_date or date.fromisoformat(defaults.price_date.value),
        user_output_tps=given.user_output_tps or defaults.user_output_tps.value,
        engineer_usd_per_month=given.engineer_usd_per_month,
        pool_fte=given.pool_fte,
        amortization_months=given.amortization_months,
        instance_types=tuple(sorted(set(given.instance_types))) if given.instance_types else None,
        utilization_range=_range(defaults.utilization) if not given.utilization else None,
        throughput_range=throughput_range(catalog),
    )
    overridden = "set in the workloads file (assumptions)"
    for key, unit, value, default in (
        ("utilization", "share of capacity", given.utilization, defaults.utilization),
        ("memory_reserve", "share of GPU memory", given.memory_reserve, defaults.memory_reserve),
        (
            "user_output_tps",
            "output tokens/s per user",
            given.user_output_tps,
            defaults.user_output_tps,
        ),
    ):
        if value is None:
            book.add(f"assumption.{key}", default.value, unit, default.source, default.date)
        else:
            book.add(f"assumption.{key}", value, unit, overridden, "")
    return settings


def throughput_range(catalog: Catalog) -> tuple[float, float]:
    """The planning range of every throughput: the fit's typical error either way."""
    error = throughput_data(catalog).fit.geometric_mean_error
    return 1 / error, error


def _range(figure: Figure) -> tuple[float, float] | None:
    if figure.low is None or figure.high is None:
        return None
    return figure.low, figure.high


def input_warnings(
    catalog: Catalog, spec: WorkloadsFile, workload: Workload, chosen: Option
) -> list[Warning]:
    """What the file asks that is allowed but unusual: said in the plan, never priced silently."""
    warnings = []
    if spec.assumptions.price_region not in (None, spec.region):
        warnings.append(
            Warning(
                code="price_region",
                message=f"priced at {spec.assumptions.price_region} prices "
                f"(assumptions.price_region): the catalog has none for {spec.region}, where "
                "the stack is deployed; prices there differ",
            )
        )
    tokens = workload.monthly_tokens
    if tokens.total == 0:
        warnings.append(
            Warning(
                code="zero_volume",
                message="monthly_tokens is 0 input and 0 output: the workload is planned with "
                "no traffic, so only its fixed costs are priced; give its expected volume",
            )
        )
    if workload.data not in catalog.private_consumers.data_classes:
        public = [
            c.cidr for c in workload.consumers if not catalog.private_consumers.is_private(c.cidr)
        ]
        if public:
            warnings.append(
                Warning(
                    code="public_consumers",
                    message=f"consumers {', '.join(public)} are public address space: the "
                    f"workload's endpoint admits callers from the internet there "
                    f"({workload.data.value} data allows it; confidential and regulated "
                    "data would not)",
                )
            )
    if any(c.vpc is None and c.account is None for c in workload.consumers):
        # One message for every workload (grouped when many): the file shows which entries.
        warnings.append(
            Warning(
                code="consumers_inside",
                message="a consumer given as a plain range names no VPC or account, so it is "
                "taken as callers inside the stack's own network: nothing outside the stack "
                "reaches this workload through it. Name where the callers run: {cidr, vpc, "
                "subnets} for a VPC of this account, {cidr, account} for another account",
            )
        )
    api = catalog.api_models.get(chosen.model) if chosen.provider else None
    if api is not None and api.inference_profile is not None:
        profile = api.inference_profile
        where = (
            f"any of {len(profile.destination_regions)} commercial regions (a global profile)"
            if profile.scope == "global"
            else ", ".join(profile.destination_regions)
        )
        warnings.append(
            Warning(
                code="cross_region_inference",
                message=f"{chosen.model} is served only through the cross-region inference "
                f"profile {profile.id}: requests made in {spec.region} may be processed in "
                f"{where} (planner/data/api_models.yaml, {profile.date})",
            )
        )
    defaults = catalog.defaults
    sizes = []
    if chosen.nodes is not None and chosen.nodes >= defaults.warn_nodes_per_workload.value:
        sizes.append(
            f"{chosen.nodes:,} nodes of {chosen.instance_type} (warned from "
            f"{defaults.warn_nodes_per_workload.value:,.0f})"
        )
    if chosen.monthly_cost_usd >= defaults.warn_usd_per_workload.value:
        sizes.append(
            f"{chosen.monthly_cost_usd:,.2f} USD a month (warned from "
            f"{defaults.warn_usd_per_workload.value:,.0f})"
        )
    if sizes:
        warnings.append(
            Warning(
                code="large_workload",
                message=f"one workload needs {' and '.join(sizes)} for the "
                f"{tokens.input:,} input and {tokens.output:,} output tokens a month it asks: "
                "check monthly_tokens (thresholds in planner/data/assumptions.yaml)",
            )
        )
    return warnings


Decision = tuple[Workload, Answers, Option, list[Warning]]
# (instance type, nodes) -> the pool's cost under each purchase option, computed once per plan.
Purchases = dict[tuple[str, int], list[PurchaseOptionCost]]


def _with_input_warnings(
    catalog: Catalog, spec: WorkloadsFile, decisions: list[Decision], plans: list[WorkloadPlan]
) -> None:
    """Each workload's warnings: its answers' (decide) and those of the option the plan
    assigns it. The optimal plan may move a workload off its standalone choice (into a shared
    pool, or to an API), so these follow the final assignment, never the choice alone."""
    for (workload, _, _, decided), plan_of in zip(decisions, plans, strict=True):
        assert plan_of.name == workload.name
        economics = plan_of.answers.volume_economics
        assigned = next(o for o in economics.options if o.id == economics.chosen)
        plan_of.warnings = [*decided, *input_warnings(catalog, spec, workload, assigned)]


def _workload_plan(
    workload: Workload,
    answers: Answers,
    chosen: Option,
    warnings: list[Warning],
    pool: str | None,
    cost: float,
) -> WorkloadPlan:
    return WorkloadPlan(
        name=workload.name,
        task=workload.task.value,
        data=workload.data.value,
        consumers=[
            Consumer(cidr=c.cidr, vpc=c.vpc, subnets=tuple(c.subnets), account=c.account)
            for c in workload.consumers
        ],
        placement=chosen.placement,
        model=chosen.model,
        provider=chosen.provider,
        pool=pool,
        answers=answers,
        monthly_cost_usd=cost,
        warnings=warnings,
    )


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


def _pool(
    ctx: Context,
    name: str,
    option: Option,
    members: list[Decision],
    nodes: int,
    cost: float,
    purchases: Purchases,
    cost_range: tuple[float, float],
) -> Pool:
    assert option.instance_type and option.memory_fit and option.pricing
    catalog = ctx.catalog
    workloads = [w for w, *_ in members]
    # The APIs every member may use (its tier, perimeter and pin admit), as the plan compares.
    allowed = [set(admissible_apis(a.volume_economics.options)) for _, a, _, _ in members]
    _, _, rows = crossover_lines(
        ctx, ctx.by_option[option.id], workloads, sorted(set.intersection(*allowed))
    )
    perimeters = [answers.data_sensitivity.perimeter for _, answers, _, _ in members]
    # A reservation and the zone it is in (the loader holds one zone per reservation); a pool
    # has at most one: _pool_keys keeps workloads of different reservations, or none, apart.
    reservations = sorted(
        {
            (w.capacity_reservation_id, w.capacity_reservation_zone)
            for w, *_ in members
            if w.capacity_reservation_id
        }
    )
    assert len(reservations) <= 1 and (
        not reservations or all(w.capacity_reservation_id for w, *_ in members)
    ), f"pool {name} mixes capacity reservations: {reservations}"
    key = (option.instance_type, nodes)
    purchase = purchases.get(key)
    if purchase is None:  # many pools have the same instance type and size
        purchase = purchases[key] = [
            PurchaseOptionCost(
                option=cost.option,
                monthly_cost_usd=cost.monthly_usd,
                formula=cost.formula,
                comparison_only=cost.comparison_only,
            )
            for cost in purchase_costs(
                catalog, option.instance_type, nodes, ctx.settings.amortization_months
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
        instance_type=option.instance_type,
        nodes=nodes,
        gpus_per_node=catalog.instances[option.instance_type].gpus,
        precision=option.memory_fit.precision,
        tensor_parallel=fit.tensor_parallel,
        pipeline_parallel=fit.pipeline_parallel,
        replicas_per_node=fit.replicas_per_node,
        max_model_len=max_model_len(ctx, model.context_window.value, option, workloads),
        gpu_memory_utilization=round(1 - ctx.settings.memory_reserve, 4),
        pricing=option.pricing,
        # The strictest perimeter of its workloads: a pool is built for that one.
        perimeter=max(perimeters, key=lambda p: PERIMETER_ORDER[p]),
        capacity_reservation_id=reservations[0][0] if reservations else None,
        capacity_reservation_zone=reservations[0][1] if reservations else None,
        monthly_cost_usd=cost,
        monthly_cost_low_usd=cost_range[0],
        monthly_cost_high_usd=cost_range[1],
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
    """Each member's load in units of the option (costs.unit_load at its own request shape) and
    how the pool's nodes follow from them: every part adds up on its own, the units are the
    largest of the rounded-up sums and of the members' minimums (costs.units_for_load, as the
    optimizer sizes a pool). The nodes the plan has must be those."""
    candidate = ctx.by_option[option_id]
    loads = []
    exact = [0.0, 0.0, 0.0]
    for w in workloads:
        limits = limits_at(ctx, candidate, shape_of(ctx, w)).limits
        volume, peak, kv = unit_load(
            limits,
            w.monthly_tokens.input,
            w.monthly_tokens.output,
            w.peak_tokens_per_second,
            Demand.of(ctx, w).kv_tokens,
        )
        exact = [exact[0] + volume, exact[1] + peak, exact[2] + kv]
        loads.append(
            PoolLoad(
                workload=w.name,
                volume_units=round(volume, 6),
                peak_units=round(peak, 6),
                kv_cache_units=round(kv, 6),
                min_units=availability_floor(w),
            )
        )
    totals = exact
    minimum = max(x.min_units for x in loads)
    units = units_for_load((exact[0], exact[1], exact[2]), minimum)
    per_unit = candidate.capacity.nodes_per_unit
    assert units * per_unit == nodes, f"{option_id}: {units} x {per_unit} units, {nodes} nodes"
    formula = (
        f"units = max(largest minimum {minimum}, ceil(volume {totals[0]:,.4f}), "
        f"ceil(peak {totals[1]:,.4f}), ceil(KV cache {totals[2]:,.4f})) = {units}, the sums of "
        f"{len(loads)} member(s)' loads in units of one {candidate.instance_type} "
        f"{'node' if per_unit == 1 else f'{per_unit}-node replica'}; nodes = {units} x "
        f"{per_unit} = {nodes}"
    )
    return loads, formula


def _per_workload(
    ctx: Context, decisions: list[Decision], purchases: Purchases, with_pools: bool = True
) -> tuple[list[WorkloadPlan], list[Pool]]:
    """Each workload decided alone: its cheapest option, a pool of its own if self-hosted; an
    API workload's cost is its usage here (build_plan adds its share of the access). Without
    pools, only the workloads' costs (what the optimal strategy compares with)."""
    plans, pools = [], []
    for decision in decisions:
        workload, answers, chosen, warnings = decision
        pool_name = None
        if chosen.placement == "self_hosted":
            assert chosen.nodes
            pool_name = f"{workload.name}-pool"
            if with_pools:
                pools.append(
                    _pool(
                        ctx,
                        pool_name,
                        chosen,
                        [decision],
                        chosen.nodes,
                        chosen.monthly_cost_usd,
                        purchases,
                        (_known(chosen.monthly_cost_low_usd), _known(chosen.monthly_cost_high_usd)),
                    )
                )
        cost = chosen.monthly_cost_usd
        if chosen.placement == "cloud_api":
            cost -= chosen.fixed_monthly_usd
        plan_of = _workload_plan(workload, answers, chosen, warnings, pool_name, cost)
        if chosen.placement == "self_hosted":
            plan_of.monthly_cost_low_usd = _known(chosen.monthly_cost_low_usd)
            plan_of.monthly_cost_high_usd = _known(chosen.monthly_cost_high_usd)
        plans.append(plan_of)
    return plans, pools


def _known(value: float | None) -> float:
    assert value is not None, "the chosen option carries its range"
    return value


EGRESS = "egress-network"


def shared_access(catalog: Catalog) -> dict[str, optimize.Shared]:
    """The fixed costs of reaching the APIs, paid once: each provider's own pieces (its key's
    secret, its PrivateLink endpoint), and the egress network the others share."""
    shared = {EGRESS: optimize.Shared(pieces_cost(catalog, ("egress_network",)).monthly_usd)}
    for provider_id in sorted(catalog.providers):
        kinds = api_fixed_kinds(catalog, provider_id)
        own = tuple(kind for kind in kinds if kind != "egress_network")
        shared[provider_id] = optimize.Shared(
            pieces_cost(catalog, own).monthly_usd if own else 0.0,
            EGRESS if "egress_network" in kinds else None,
        )
    return shared


def _access_fixed_cents(
    catalog: Catalog, shared: dict[str, optimize.Shared], access: str, users: list[WorkloadPlan]
) -> int:
    """An access's fixed cost in whole cents, as the stack builds it for these callers: the
    PrivateLink network of its own only for callers given as plain CIDRs (consumer VPCs get the
    endpoint as their connection), and the egress VPC's transit gateway attachment only when
    consumer VPCs attach to the egress path."""
    usd = shared[access].fixed_usd
    consumers = [c for plan_of in users for c in plan_of.consumers]
    provider = catalog.providers.get(access)
    plain = any(c.vpc is None and c.account is None for c in consumers)
    if provider is not None and provider.private_link and not plain:
        usd -= pieces_cost(catalog, ("private_link",)).monthly_usd
    if access == EGRESS and any(c.vpc is not None for c in consumers):
        usd += pieces_cost(catalog, ("egress_transit",)).monthly_usd
    return round(usd * 100)


def _with_access_costs(
    catalog: Catalog, plans: list[WorkloadPlan]
) -> tuple[list[WorkloadPlan], dict[str, float]]:
    """API workloads pay their usage and, in proportion to it, the fixed costs of the access
    and boundary they use, each counted once in the plan (added to the plans in place).
    Returns the plans and the fixed cost by access."""
    shared = shared_access(catalog)
    users: dict[str, list[int]] = {}
    for index, plan_of in enumerate(plans):
        if plan_of.placement == "cloud_api":
            assert plan_of.provider is not None
            users.setdefault(plan_of.provider, []).append(index)
            parent = shared[plan_of.provider].parent
            if parent is not None:
                users.setdefault(parent, []).append(index)
    extra = [0] * len(plans)
    fixed: dict[str, float] = {}
    for access in sorted(users):
        cents = _access_fixed_cents(catalog, shared, access, [plans[i] for i in users[access]])
        fixed[access] = cents / 100
        members = users[access]
        weights = [plans[i].monthly_cost_usd for i in members]
        for i, part in zip(members, _allocate(cents, weights), strict=True):
            extra[i] += part
    for plan_of, cents in zip(plans, extra, strict=True):
        plan_of.access_share_usd = cents / 100
        if cents:
            plan_of.monthly_cost_usd = (round(plan_of.monthly_cost_usd * 100) + cents) / 100
    return plans, fixed


def _pool_range(
    ctx: Context,
    candidate: SelfHostedCandidate,
    members: list[Decision],
    kv_tokens: dict[str, float],
) -> tuple[float, float]:
    """A shared pool's cost at both ends of the uncertain settings' ranges: its members' loads
    add up at those settings' unit limits, as in the optimum at the expected ones."""
    loads = [
        (
            shape_of(ctx, w),
            w.monthly_tokens.input,
            w.monthly_tokens.output,
            w.peak_tokens_per_second,
            kv_tokens[w.name],
        )
        for w, *_ in members
    ]
    return cost_range(ctx, candidate, loads, max(availability_floor(w) for w, *_ in members))


def pool_name_for(option_id: str) -> str:
    """self_hosted/deepseek-v3.2/p5en.48xlarge -> deepseek-v3-2-p5en-48xlarge (a DNS label)."""
    _, model, instance = option_id.split("/")
    return f"{model}-{instance}".replace(".", "-")


def _allocate(total_cents: int, weights: list[float]) -> list[int]:
    """Split whole cents in proportion to the weights, largest remainders first: the parts add
    up to the total exactly."""
    if not weights or sum(weights) <= 0:
        weights = [1.0] * len(weights)
    scale = sum(weights)
    shares = [total_cents * weight / scale for weight in weights]
    cents = [math.floor(share) for share in shares]
    order = sorted(range(len(shares)), key=lambda i: (cents[i] - shares[i], i))
    for i in order[: total_cents - sum(cents)]:
        cents[i] += 1
    return cents


# A pool whose members include a workload with callers in public address space: kept apart from
# workloads whose data may only be called from private ranges (data_classes.yaml).
PUBLIC_CALLERS = "+public-callers"
# A pool that launches its nodes into a workload's capacity reservation: shared only by the
# workloads naming that reservation (option id + RESERVATION + its id).
RESERVATION = "+reservation-"


def _public_callers(ctx: Context, workload: Workload) -> bool:
    private = ctx.catalog.private_consumers
    return any(not private.is_private(c.cidr) for c in workload.consumers)


def _pool_keys(ctx: Context, decisions: list[Decision]) -> dict[str, dict[str, str]]:
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


def _option_of(key: str) -> str:
    return key.split("+", 1)[0]  # option ids have no "+"


def _pool_name_of(key: str) -> str:
    """A pool's name from its key: its option's, then what keeps it apart (its group, public
    callers, a capacity reservation)."""
    name = pool_name_for(_option_of(key))
    if GROUP in key:
        name += "-tp" + key.split(GROUP, 1)[1].split("+", 1)[0]
    if PUBLIC_CALLERS in key:
        name += "-public-callers"
    if RESERVATION in key:
        name += "-" + key.split(RESERVATION, 1)[1]
    return name


def _shared_pools(
    ctx: Context,
    decisions: list[Decision],
    purchases: Purchases,
    alone_costs: dict[str, float],
    time_limit: float | None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[WorkloadPlan], list[Pool], optimize.Solution]:
    """Workloads share self-hosted pools where that costs less: the optimum within the
    catalog's gap (optimizer.yaml), or the best plan found when the time limit stops it."""
    demands = []
    kv_by_name: dict[str, float] = {}
    pool_keys = _pool_keys(ctx, decisions)
    for workload, answers, _, _ in decisions:
        options = answers.volume_economics.options
        apis: dict[str, float] = {}
        for option in options:
            if option.placement == "cloud_api":
                assert option.provider is not None
                usage = option.monthly_cost_usd - option.fixed_monthly_usd
                apis[option.provider] = min(usage, apis.get(option.provider, usage))
        kv_tokens = Demand.of(ctx, workload).kv_tokens
        kv_by_name[workload.name] = kv_tokens
        candidates: dict[str, tuple[float, ...]] = {}
        for option in options:
            if option.placement == "self_hosted":
                limits = limits_at(ctx, ctx.by_option[option.id], shape_of(ctx, workload)).limits
                candidates[pool_keys[workload.name][option.id]] = unit_load(
                    limits,
                    workload.monthly_tokens.input,
                    workload.monthly_tokens.output,
                    workload.peak_tokens_per_second,
                    kv_tokens,
                )
        demands.append(
            optimize.Demand(
                name=workload.name,
                apis=apis,
                candidates=candidates,
                min_units=availability_floor(workload),
            )
        )
    by_key = {
        key: ctx.by_option[_option_of(key)] for keys in pool_keys.values() for key in keys.values()
    }
    solution = optimize.solve(
        demands,
        by_key,
        shared_access(ctx.catalog),
        time_limit,
        ctx.catalog.optimizer.gap.value,
        progress,
        int(ctx.catalog.optimizer.node_limit.value),
        ctx.catalog.optimizer.highs_options(),
    )

    members: dict[str, list[tuple[Decision, optimize.Demand]]] = {}
    for decision, demand in zip(decisions, demands, strict=True):
        chosen_id = solution.assignment[demand.name]
        if chosen_id in demand.candidates:
            members.setdefault(chosen_id, []).append((decision, demand))
    pools: dict[str, Pool] = {}
    shares: dict[str, tuple[float, str]] = {}
    ranges: dict[str, tuple[float, float]] = {}
    for key in sorted(members):
        group = members[key]
        option_id = _option_of(key)
        candidate = ctx.by_option[option_id]
        units = solution.units[key]
        nodes = units * candidate.capacity.nodes_per_unit
        cost_cents = round(
            (candidate.nodes_monthly_usd(ctx.catalog, nodes) + candidate.fixed_usd) * 100
        )
        # Each member pays in proportion to what it costs in the per-workload plan, so none
        # pays more than there: a pool in the optimum costs no more than its members did.
        weights = [alone_costs[decision[0].name] for decision, _ in group]
        option = next(o for o in group[0][0][1].volume_economics.options if o.id == option_id)
        name = _pool_name_of(key)
        pools[key] = _pool(
            ctx,
            name,
            option,
            [d for d, _ in group],
            units * candidate.capacity.nodes_per_unit,
            cost_cents / 100,
            purchases,
            _pool_range(ctx, candidate, [d for d, _ in group], kv_by_name),
        )
        others = [d[0].name for d, _ in group]
        low, high = pools[key].monthly_cost_low_usd, pools[key].monthly_cost_high_usd
        for (decision, _), cents in zip(group, _allocate(cost_cents, weights), strict=True):
            mates = [n for n in others if n != decision[0].name]
            part = cents / cost_cents if cost_cents else 0.0
            ranges[decision[0].name] = (round(low * part, 2), round(high * part, 2))
            shares[decision[0].name] = (
                cents / 100,
                f"shared pool {name} ({units * candidate.capacity.nodes_per_unit} x "
                f"{candidate.instance_type}, {cost_cents / 100:,.2f} USD a month"
                + (f", with {', '.join(mates)}" if mates else "")
                + f"): this workload's share, in proportion to its per-workload cost, is "
                f"{cents / 100:,.2f} USD",
            )
    plans = []
    for decision in decisions:
        workload, answers, alone, warnings = decision
        chosen_key = solution.assignment[workload.name]
        chosen_id = _option_of(chosen_key)
        if chosen_key not in by_key:
            api = min(
                (
                    o
                    for o in answers.volume_economics.options
                    if o.placement == "cloud_api" and o.provider == chosen_id
                ),
                key=lambda o: (o.monthly_cost_usd, o.id),
            )
            # Its usage; build_plan adds its share of the access and boundary it uses.
            chosen, cost, pool_name = api, api.monthly_cost_usd - api.fixed_monthly_usd, None
            note = "cheaper through its API than in any shared pool"
        else:
            chosen = next(o for o in answers.volume_economics.options if o.id == chosen_id)
            cost, note = shares[workload.name]
            pool_name = pools[chosen_key].name
        economics = replace(
            answers.volume_economics,
            chosen=chosen.id,
            reason=(
                f"{note}; alone, {answers.volume_economics.reason}"
                if chosen.id != alone.id or chosen_key in by_key
                else answers.volume_economics.reason
            ),
        )
        plan_of = _workload_plan(
            workload,
            replace(answers, volume_economics=economics),
            chosen,
            warnings,
            pool_name,
            cost,
        )
        if workload.name in ranges:
            plan_of.monthly_cost_low_usd, plan_of.monthly_cost_high_usd = ranges[workload.name]
        plans.append(plan_of)
    return plans, [pools[key] for key in sorted(pools)], solution


def _with_ranges(
    loaded: LoadedWorkloads, pools: list[Pool], providers: list[ProviderAccess]
) -> tuple[list[Pool], dict[str, str]]:
    """Each pool's range and the API networks' the providers need, from the file's network
    space, clear of every consumer's range; a PlannerError naming the field when it runs out."""
    spec = loaded.spec
    network = spec.network
    needs = sorted({API_NETWORK_FOR[access.private_link] for access in providers})
    try:
        allocation = networks.allocate(
            len(pools),
            needs,
            (c.cidr for w in spec.workloads for c in w.consumers),
            network.space,
            network.pools,
            network.apis,
        )
    except networks.OutOfRanges as exc:
        name = "apis" if exc.what == networks.API_WHAT else "pools"
        given = "network" in spec.model_fields_set and name in network.model_fields_set
        where = ("network", name)
        raise PlannerError(
            str(loaded.path),
            [
                Problem(
                    f"network.{name}",
                    f"ran out of ranges for {exc.what}: {exc.needed} /{exc.size} range(s) "
                    f"needed, counting up from {getattr(network, name)}"
                    + ("" if given else " (the default)")
                    + f" round network.space {network.space}, and only {exc.free} are free "
                    "beside the consumers' ranges"
                    + ("" if name == "apis" else " and the API networks")
                    + ": give network.space a larger block, or network."
                    + name
                    + " a smaller size (up to /24)",
                    loaded.lines.line(where) if given else None,
                )
            ],
        ) from None
    placed = [
        pool.model_copy(update={"cidr": cidr})
        for pool, cidr in zip(pools, allocation.pools, strict=True)
    ]
    return placed, allocation.networks


def _service_of(catalog: Catalog, plan_of: WorkloadPlan) -> tuple[str, str] | None:
    """The service a workload's callers connect to, and its kind (operations.yaml connections):
    its pool, or the API network its provider is reached through."""
    if plan_of.placement == "self_hosted":
        return (plan_of.pool, "self_hosted_pool") if plan_of.pool is not None else None
    if plan_of.provider is None:
        return None
    network = API_NETWORK_FOR[catalog.providers[plan_of.provider].private_link]
    return network, network


def _connections(
    catalog: Catalog, plans: list[WorkloadPlan], book: FigureBook | None = None
) -> list[Connection]:
    """What the stack makes in each consumer VPC of this account for each service its callers
    use, priced once per service and VPC (the stack makes one endpoint there, admitting every
    workload's callers). Counts come from the VPC's subnets, as the stacks place the pieces."""
    found: dict[tuple[str, str], tuple[str, set[str], list[str]]] = {}
    for plan_of in plans:
        service = _service_of(catalog, plan_of)
        if service is None or service[1] not in catalog.operations.connections:
            continue
        for consumer in plan_of.consumers:
            if consumer.vpc is None:
                continue
            kind, subnets, names = found.setdefault(
                (service[0], consumer.vpc), (service[1], set(), [])
            )
            subnets.update(consumer.subnets)
            if plan_of.name not in names:
                names.append(plan_of.name)
    connections = []
    for (service_name, vpc), (kind, subnets, names) in sorted(found.items()):
        cents, formula, tokens = connection_cost(catalog, kind, len(subnets))
        if book is not None:
            for token in tokens:
                figure = price_figure(catalog, token)
                if figure is not None:
                    book.add(f"aws_prices:{token}", *figure)
        connections.append(
            Connection(
                service=service_name,
                kind=kind,
                vpc=vpc,
                subnets=sorted(subnets),
                workloads=names,
                monthly_cost_usd=cents / 100,
                formula=formula,
            )
        )
    return connections


def _with_connections(plans: list[WorkloadPlan], connections: list[Connection]) -> None:
    """Each connection split equally, in whole cents, among the workloads that name its VPC;
    each share added to the workload's cost and both ends of its range."""
    by_name = {plan_of.name: plan_of for plan_of in plans}
    for connection in connections:
        cents = round(connection.monthly_cost_usd * 100)
        for name, share in zip(
            connection.workloads,
            _allocate(cents, [1.0] * len(connection.workloads)),
            strict=True,
        ):
            plan_of = by_name[name]
            plan_of.connection_share_usd = (round(plan_of.connection_share_usd * 100) + share) / 100
            for field in ("monthly_cost_usd", "monthly_cost_low_usd", "monthly_cost_high_usd"):
                setattr(plan_of, field, (round(getattr(plan_of, field) * 100) + share) / 100)


def build_plan(
    loaded: LoadedWorkloads,
    catalog: Catalog,
    stack: str,
    workloads_file: str,
    strategy: Strategy = "per-workload",
    time_limit: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Plan:
    """The plan of a workloads file (the CLI's default strategy is optimal; per-workload here
    keeps library callers' plans as they were). The optimal strategy stops at the catalog's
    time limit (optimizer.yaml) unless `time_limit` gives another; `progress` hears how its
    solve goes."""
    spec = loaded.spec
    book = FigureBook()
    settings = settings_for(catalog, spec, book)
    for index, workload in enumerate(spec.workloads):  # its own speed, cited with its line
        where = ("workloads", index, "user_output_tps")
        speed_figure(
            book, workload, f"workloads[{index}].user_output_tps", loaded.lines.line(where)
        )
    ctx = Context(catalog=catalog, settings=settings, book=book, region=spec.region)

    decisions: list[tuple[Workload, Answers, Option, list[Warning]]] = []
    problems: list[Problem] = []
    for index, workload in enumerate(spec.workloads):
        try:
            answers, chosen, warnings = decide(ctx, index, workload)
        except Unservable as exc:
            problems.extend(
                replace(p, line=loaded.lines.line_of_field(p.field)) if p.line is None else p
                for p in exc.problems
            )
            continue
        decisions.append((workload, answers, chosen, warnings))
    if problems:
        raise PlannerError(str(loaded.path), problems)

    purchases: Purchases = {}
    alone_plans, pools = _per_workload(ctx, decisions, purchases, strategy == "per-workload")
    gap = 0.0
    stopped = False
    stopped_by_nodes = False
    workload_plans, access_fixed = _with_access_costs(catalog, alone_plans)
    # Decided one at a time, each workload's connections are its own service's.
    per_workload_cents = sum(round(w.monthly_cost_usd * 100) for w in alone_plans) + sum(
        round(c.monthly_cost_usd * 100) for c in _connections(catalog, alone_plans)
    )
    if time_limit is None:
        time_limit = catalog.optimizer.time_limit_s.value
    if strategy != "per-workload":
        alone_costs = {w.name: w.monthly_cost_usd for w in alone_plans}
        workload_plans, pools, solution = _shared_pools(
            ctx, decisions, purchases, alone_costs, time_limit, progress
        )
        gap, stopped = round(solution.gap_usd, 2), solution.stopped_by_time_limit
        stopped_by_nodes = solution.stopped_by_node_limit
        workload_plans, access_fixed = _with_access_costs(catalog, workload_plans)

    _with_input_warnings(catalog, spec, decisions, workload_plans)

    api_users: dict[str, list[tuple[str, str]]] = {}
    for plan_of in workload_plans:
        if plan_of.placement == "cloud_api":
            assert plan_of.provider is not None
            api_users.setdefault(plan_of.provider, []).append((plan_of.name, plan_of.model))

    providers = []
    for provider_id in sorted(api_users):
        provider = catalog.providers[provider_id]
        users = api_users[provider_id]
        providers.append(
            ProviderAccess(
                provider=provider_id,
                hosts=[host.format(region=spec.region) for host in provider.hosts],
                private_link=provider.private_link,
                models=sorted({model for _, model in users}),
                # Bedrock is reached with the nodes' IAM role; the others need an API key
                # (one rule, costs.api_fixed_kinds, which also prices the key's secret).
                secret_config_key=f"{provider_id}_api_key"
                if "api_key" in api_fixed_kinds(catalog, provider_id)
                else None,
                workloads=[name for name, _ in users],
                fixed_monthly_usd=access_fixed.get(provider_id, 0.0),
            )
        )

    pools, networks = _with_ranges(loaded, pools, providers)
    for plan_of in workload_plans:
        if plan_of.placement == "cloud_api":  # prices and volume are given: no range
            plan_of.monthly_cost_low_usd = plan_of.monthly_cost_high_usd = plan_of.monthly_cost_usd
    connections = _connections(catalog, workload_plans, book)
    _with_connections(workload_plans, connections)
    api_connection_cents = sum(
        round(w.connection_share_usd * 100) for w in workload_plans if w.placement == "cloud_api"
    )
    # Sum in whole cents so the total equals the workloads' costs to the cent.
    cents = [round(w.monthly_cost_usd * 100) for w in workload_plans]
    self_cents = sum(
        c for c, w in zip(cents, workload_plans, strict=True) if w.placement == "self_hosted"
    )
    total_cents = sum(cents)
    shared_cents = sum(round(usd * 100) for usd in access_fixed.values())
    staff_cents = len(pools) * round(pool_staff_usd(catalog, settings) * 100)
    figures = {key: book.figures[key] for key in sorted(book.figures)}
    return Plan(
        schema_version=SCHEMA_VERSION,
        organization=spec.organization,
        stack=stack,
        region=spec.region,
        workloads_file=workloads_file,
        inputs_sha256=loaded.sha256,
        catalog_sha256=catalog_sha256(catalog),
        assumptions={
            "pricing": settings.pricing.value,
            "utilization": settings.utilization,
            "memory_reserve": settings.memory_reserve,
            "user_output_tps": settings.user_output_tps,
            "request_input_tokens": settings.request_input_tokens,
            "request_output_tokens": settings.request_output_tokens,
            "price_date": settings.price_date.isoformat(),
            "engineer_usd_per_month": settings.engineer_usd_per_month
            if settings.engineer_usd_per_month is not None
            else catalog.operations.staff.engineer_usd_per_month.value,
            "pool_fte": settings.pool_fte
            if settings.pool_fte is not None
            else catalog.operations.staff.pool_fte.value,
            "amortization_months": settings.amortization_months
            or catalog.pricing.hardware.horizon_months.value,
            "genai_prices_version": genai_prices_version,
            # Only where the file restricts them.
            **(
                {"instance_types": ", ".join(settings.instance_types)}
                if settings.instance_types
                else {}
            ),
            # How the optimizer stopped: at a proven gap, or at a time limit first.
            **(
                {
                    "optimizer_gap": catalog.optimizer.gap.value,
                    "optimizer_node_limit": int(catalog.optimizer.node_limit.value),
                    "optimizer_time_limit_s": time_limit,
                }
                if strategy == "optimal"
                else {}
            ),
            # Only where it stands in for the region's own prices (the plan warns).
            **(
                {"price_region": spec.assumptions.price_region}
                if spec.assumptions.price_region not in (None, spec.region)
                else {}
            ),
        },
        workloads=workload_plans,
        pools=pools,
        providers=providers,
        networks=networks,
        connections=connections,
        strategy=strategy,
        totals=Totals(
            monthly_cost_usd=total_cents / 100,
            monthly_cost_low_usd=round(sum(w.monthly_cost_low_usd for w in workload_plans), 2),
            monthly_cost_high_usd=round(sum(w.monthly_cost_high_usd for w in workload_plans), 2),
            self_hosted_usd=self_cents / 100,
            cloud_api_usd=(total_cents - self_cents) / 100,
            staff_usd=staff_cents / 100,
            api_tokens_usd=(total_cents - self_cents - shared_cents - api_connection_cents) / 100,
            shared_access_usd=shared_cents / 100,
            connections_usd=sum(round(c.monthly_cost_usd * 100) for c in connections) / 100,
            per_workload_usd=per_workload_cents / 100,
            egress_network_usd=access_fixed.get(EGRESS, 0.0),
            optimality_gap_usd=gap,
            optimizer_stopped_by_time_limit=stopped,
            optimizer_stopped_by_node_limit=stopped_by_nodes,
            saved_by_sharing_usd=(per_workload_cents - total_cents) / 100,
        ),
        figures=figures,
    )
