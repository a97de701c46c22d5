"""A cluster site's nodes are few and shared by every pool placed on it (issue 16): decided one
at a time, workloads fill a site in the file's order, and one whose pool no longer fits there
goes to its next cheapest option off the full site (an API, EC2, or another site with room),
with a warning that says what the site's size costs. A workload whose consumers are pods of a
site (named by namespace) can go nowhere else: those take their site's nodes first, in the
file's order, and one that does not fit is reported. The optimizer keeps the same limit as a
constraint (optimize.solve)."""

from __future__ import annotations

from dataclasses import replace

from planner.errors import Problem
from planner.fmt import usd
from planner.planfile import Answers, Option, Pool, Warning, WorkloadPlan
from planner.planning.callers import callers_site, callers_text
from planner.planning.context import Context
from planner.planning.decide import Decision
from planner.planning.demand import Demand
from planner.planning.options import cost_range
from planner.targets import pool_targets


def site_limits(ctx: Context) -> dict[str, int]:
    """Target -> the nodes its pools may use together, for the targets that limit them."""
    return {
        target.name: target.max_nodes
        for target in pool_targets(ctx.settings)
        if target.max_nodes is not None
    }


def site_of(ctx: Context, option: Option) -> str | None:
    """The target a self-hosted option runs on (None: an API)."""
    if option.placement != "self_hosted":
        return None
    return ctx.by_option[option.id].target.name


def within_sites(ctx: Context, decisions: list[Decision]) -> tuple[list[Decision], list[Problem]]:
    """The decisions (one per workload of the file, in its order) with each site's nodes shared
    in that order (the workloads bound to a site by their callers first), and a problem for each
    workload that no option off its full site can serve (its decision kept as it is: the
    optimizer may still fit it there, in a pool it shares; build_plan refuses it otherwise)."""
    limits = site_limits(ctx)
    if not limits:
        return decisions, []
    left = dict(limits)
    kept: dict[int, Decision] = {}
    problems: list[Problem] = []
    bound = [i for i, d in enumerate(decisions) if callers_site(d.workload) is not None]
    order = [*bound, *(i for i in range(len(decisions)) if i not in set(bound))]

    def fits(option: Option) -> bool:
        site = site_of(ctx, option)
        return site not in left or (option.nodes or 0) <= left[site]

    for index in order:
        decision = decisions[index]
        chosen, answers, warnings = decision.chosen, decision.answers, decision.warnings
        site = site_of(ctx, chosen)
        if not fits(chosen):
            assert site is not None
            economics = answers.volume_economics
            spill = next((o for o in economics.options if fits(o)), None)
            # Nothing taken before it (or more than the site has): the site's size says it.
            alone = left[site] == limits[site] or (chosen.nodes or 0) > limits[site]
            if spill is None and callers_site(decision.workload) is not None:
                problems.append(
                    Problem(
                        f"workloads[{index}]",
                        (
                            f"site {site} has only {limits[site]} GPU node(s)"
                            if alone
                            else f"site {site} has {left[site]} of its {limits[site]} GPU "
                            "nodes left after the workloads bound to it before this one in the "
                            "file"
                        )
                        + ", and no "
                        f"option of this workload fits them ({chosen.id} needs {chosen.nodes}): "
                        f"{callers_text(decision.workload)}, so it cannot go to AWS or an API: "
                        "give the site more nodes (sites, nodes), or a smaller model",
                    )
                )
                kept[index] = decision  # the optimizer may still fit it, sharing a pool
                continue
            if spill is None:
                problems.append(
                    Problem(
                        f"workloads[{index}]",
                        f"site {site} has {left[site]} of its {limits[site]} GPU nodes left and "
                        f"every option of this workload needs a site without room: give the "
                        "site more nodes, or let the workload use AWS or an API (sites, model)",
                    )
                )
                kept[index] = decision
                continue
            room = (
                f"site {site} has only {limits[site]} GPU node(s)"
                if alone
                else f"site {site} has {left[site]} of its {limits[site]} GPU node(s) left after "
                "the workloads before this one in the file, decided one at a time,"
            )
            said = (
                f"{room} and {chosen.id} needs {chosen.nodes}: decided alone, the workload goes "
                f"to {spill.id} instead, "
                f"{usd(spill.monthly_cost_usd - chosen.monthly_cost_usd)} a month more"
            )
            warnings = [*warnings, Warning(code="site_full", message=said)]
            answers = replace(
                answers,
                volume_economics=replace(
                    economics, chosen=spill.id, reason=f"{economics.reason}; {said}"
                ),
            )
            chosen = spill
            if chosen.placement == "self_hosted":  # a chosen option carries its range
                demand = Demand.of(ctx, decision.workload)
                chosen.monthly_cost_low_usd, chosen.monthly_cost_high_usd = cost_range(
                    ctx, ctx.by_option[chosen.id], [demand.load], demand.min_units
                )
        placed = site_of(ctx, chosen)
        if placed in left:
            left[placed] -= chosen.nodes or 0
        kept[index] = Decision(decision.workload, answers, chosen, warnings)
    return [kept[i] for i in sorted(kept)], problems


def placed_after_all(
    ctx: Context, chosen: Option, answers: Answers, warnings: list[Warning]
) -> tuple[Answers, list[Warning]]:
    """A workload its site had no room for, decided one at a time, that the optimizer placed
    there after all (sharing a pool): the site_full warning, and the sentence within_sites
    added to its choice's reason, say it goes elsewhere, which the plan no longer does. Its
    answers and warnings without them."""
    site = site_of(ctx, chosen)
    said = [
        w
        for w in warnings
        if site is not None and w.code == "site_full" and w.message.startswith(f"site {site} ")
    ]
    if not said:
        return answers, warnings
    economics = answers.volume_economics
    reason = economics.reason
    for w in said:
        reason = reason.removesuffix(f"; {w.message}")
    return (
        replace(answers, volume_economics=replace(economics, reason=reason)),
        [w for w in warnings if w not in said],
    )


def range_warnings(ctx: Context, pools: list[Pool], plans: list[WorkloadPlan]) -> None:
    """A pool's cost range prices its units at both ends of the uncertain settings; on a site
    of limited nodes the unfavourable end may need more nodes than the site has beside its
    other pools. Its workloads then say so: the range's high end is a pool that would not fit
    there (at that throughput the plan would spill, or, for a workload bound to the site by its
    callers, could not serve it), not a cost the site can run at."""
    limits = site_limits(ctx)
    by_name = {w.name: w for w in plans}
    for pool in pools:
        most = limits.get(pool.site)
        if most is None:
            continue
        candidate = ctx.by_option[f"self_hosted/{pool.model}/{pool.instance_type}"]
        unit_high = candidate.range_unit_usd[1]
        units = round((pool.monthly_cost_high_usd - candidate.fixed_usd) / unit_high)
        nodes = units * candidate.capacity.nodes_per_unit
        others = sum(p.nodes for p in pools if p.site == pool.site and p.name != pool.name)
        if nodes + others <= most:
            continue
        said = (
            f"at the unfavourable end of its cost range pool {pool.name} would need {nodes} "
            f"node(s) of site {pool.site}, which has {most} ({others} taken by its other pools): "
            f"the range's high end, {usd(pool.monthly_cost_high_usd)}, is a pool that would not "
            "fit there; at that throughput the workload "
        )
        for name in pool.workloads:
            plan_of = by_name[name]
            # Callers that are a site's pods leave it no other option to spill to.
            bound = next((c.site for c in plan_of.consumers if c.site is not None), None)
            end = (
                "would spill to its next option"
                if bound is None
                else f"could not be served: its consumers are pods of site {bound}, so it has "
                "no option off the site to spill to (give the site more nodes)"
            )
            plan_of.warnings.append(Warning(code="site_range", message=said + end))
