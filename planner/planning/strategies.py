"""The two strategies: each workload decided alone (a pool of its own), or workloads sharing
pools where that costs less (the optimizer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from planner.costing import unit_load
from planner.fmt import usd
from planner.inputs.workloads import Workload
from planner.planfile import Answers, Consumer, Option, Pool, Warning, WorkloadPlan
from planner.planning import optimize
from planner.planning.access import shared_access
from planner.planning.cents import allocate
from planner.planning.context import Context
from planner.planning.decide import Decision
from planner.planning.demand import Demand, availability_floor, limits_at, shape_of
from planner.planning.options import CostRange
from planner.planning.pools import (
    Purchases,
    build_pool,
    option_of,
    pool_keys_by_workload,
    pool_name_of,
    pool_range,
)
from planner.planning.sites import placed_after_all, site_limits


class SiteOverfull(AssertionError):
    """The optimizer's plan overfills a cluster site: no plan keeps it within its nodes (its
    program is infeasible, or the time limit stopped it before it found one). A bug unless
    some workload, decided alone, did not fit its site either (build_plan then refuses it)."""


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
        consumers=[Consumer.of(c) for c in workload.consumers],
        placement=chosen.placement,
        model=chosen.model,
        provider=chosen.provider,
        pool=pool,
        answers=answers,
        monthly_cost_usd=cost,
        warnings=warnings,
    )


def per_workload(
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
                    build_pool(
                        ctx,
                        pool_name,
                        chosen,
                        [decision],
                        chosen.nodes,
                        chosen.monthly_cost_usd,
                        purchases,
                        CostRange(
                            _known(chosen.monthly_cost_low_usd),
                            _known(chosen.monthly_cost_high_usd),
                        ),
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


def _decided(decisions: list[Decision], pool_keys: dict[str, dict[str, str]]) -> dict[str, str]:
    """Each workload where it was decided alone: its pool's key, or its API's provider."""
    found = {}
    for workload, _, chosen, _ in decisions:
        if chosen.placement == "self_hosted":
            found[workload.name] = pool_keys[workload.name][chosen.id]
        else:
            assert chosen.provider is not None
            found[workload.name] = chosen.provider
    return found


def _known(value: float | None) -> float:
    assert value is not None, "the chosen option carries its range"
    return value


def shared_pools(
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
    pool_keys = pool_keys_by_workload(ctx, decisions)
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
        key: ctx.by_option[option_of(key)] for keys in pool_keys.values() for key in keys.values()
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
        start=_decided(decisions, pool_keys) if site_limits(ctx) else None,
    )
    if optimize.overfull(solution.units, by_key):
        raise SiteOverfull(f"the optimizer's plan overfills a site: {solution.units}")

    members: dict[str, list[Decision]] = {}
    for decision, demand in zip(decisions, demands, strict=True):
        chosen_id = solution.assignment[demand.name]
        if chosen_id in demand.candidates:
            members.setdefault(chosen_id, []).append(decision)
    pools: dict[str, Pool] = {}
    shares: dict[str, tuple[float, str]] = {}
    ranges: dict[str, CostRange] = {}
    for key in sorted(members):
        group = members[key]
        option_id = option_of(key)
        candidate = ctx.by_option[option_id]
        units = solution.units[key]
        nodes = units * candidate.capacity.nodes_per_unit
        cost_cents = round(
            (candidate.nodes_monthly_usd(ctx.catalog, nodes) + candidate.fixed_usd) * 100
        )
        # Each member pays in proportion to what it costs in the per-workload plan, so none
        # pays more than there: a pool in the optimum costs no more than its members did.
        weights = [alone_costs[member.workload.name] for member in group]
        option = next(o for o in group[0].answers.volume_economics.options if o.id == option_id)
        name = pool_name_of(key)
        pools[key] = build_pool(
            ctx,
            name,
            option,
            group,
            units * candidate.capacity.nodes_per_unit,
            cost_cents / 100,
            purchases,
            pool_range(ctx, candidate, group, kv_by_name),
        )
        others = [member.workload.name for member in group]
        low, high = pools[key].monthly_cost_low_usd, pools[key].monthly_cost_high_usd
        for member, cents in zip(group, allocate(cost_cents, weights), strict=True):
            mates = [n for n in others if n != member.workload.name]
            part = cents / cost_cents if cost_cents else 0.0
            ranges[member.workload.name] = CostRange(round(low * part, 2), round(high * part, 2))
            shares[member.workload.name] = (
                cents / 100,
                f"shared pool {name} ({units * candidate.capacity.nodes_per_unit} x "
                f"{candidate.instance_type}, {usd(cost_cents / 100)} a month"
                + (f", with {', '.join(mates)}" if mates else "")
                + "): this workload's share, in proportion to its per-workload cost, is "
                + usd(cents / 100),
            )
    plans = []
    for decision in decisions:
        workload, answers, alone, warnings = decision
        chosen_key = solution.assignment[workload.name]
        chosen_id = option_of(chosen_key)
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
            answers, warnings = placed_after_all(ctx, chosen, answers, warnings)
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
