"""The three answers, each decided separately for one workload.

1. task quality: the smallest tier that solves the task;
2. data sensitivity: the perimeter the data requires;
3. volume economics: every option meeting both, priced at the workload's volume, and the choice.

About 520 lines on purpose: `decide` and its named steps (admissible options, the pin, the tier
with its ceiling warning, the choice, the alternatives) all read one workload's admitted options
and the reasons the plan gives for leaving each out; the candidates and their pricing already
live apart (candidates.py, options.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

from planner.catalog import TIER_ORDER
from planner.catalog.vocabulary import Perimeter
from planner.errors import Problem
from planner.fmt import tokens_count, tokens_per_second, usd
from planner.inputs.workloads import Workload
from planner.planfile import Answers, Option, TaskQuality, VolumeEconomics, Warning
from planner.planning.callers import callers_text, on_callers_site
from planner.planning.candidates import SelfHostedCandidate
from planner.planning.context import Context, Entry, api_allowed
from planner.planning.crossings import break_even
from planner.planning.demand import Demand, context_fits, limits_at
from planner.planning.options import api_option, cost_range, self_hosted_option


class Unservable(Exception):
    """The workload's own fields rule out every option: reported as bad input."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


class Decision(NamedTuple):
    """A workload with its answers, the option chosen for it alone and its answers' warnings."""

    workload: Workload
    answers: Answers
    chosen: Option
    warnings: list[Warning]


def decide(ctx: Context, index: int, workload: Workload) -> tuple[Answers, Option, list[Warning]]:
    """Answer the three questions for one workload and choose the cheapest admissible option:
    the pin, admission, the tier (and its quality ceiling), the choice, the alternatives."""
    quality = ctx.task_quality(workload)
    sensitivity = ctx.data_sensitivity(workload)
    perimeter = sensitivity.perimeter
    allowed, site, refused = on_callers_site(
        ctx, index, workload, _allowed(ctx, index, workload, perimeter)
    )
    if refused is not None:
        raise Unservable([refused])
    demand = Demand.of(ctx, workload)
    try:
        entries, left_out = _admitted(ctx, index, workload, allowed, demand)
    except Unservable as exc:
        if site is None:
            raise
        # The options it lacks are the site's: say that the site is why.
        raise Unservable(
            [
                replace(
                    p,
                    message=f"{p.message} (only options on site {site} are allowed: "
                    f"{callers_text(workload)}, which an API or an EC2 pool cannot reach)",
                )
                for p in exc.problems
            ]
        ) from None
    left_out = replace(left_out, site=site)
    tier = _at_tier(ctx, workload, quality, perimeter, entries, demand, site)
    chosen, reason = _choice(ctx, workload, quality, perimeter, tier, left_out, demand)
    # The cheaper models of the tier under a quality ceiling, and the chosen self-hosted model
    # at a lower precision, where its own needs several nodes.
    alternatives = [*tier.ceiling_alternatives, *_lower_precision_alternatives(ctx, chosen, demand)]
    economics = VolumeEconomics(
        monthly_input_tokens=workload.monthly_tokens.input,
        monthly_output_tokens=workload.monthly_tokens.output,
        options=tier.options,
        alternatives=alternatives,
        chosen=chosen.id,
        reason=reason,
        break_even=break_even(ctx, workload, tier.options),
    )
    answers = Answers(
        task_quality=quality, data_sensitivity=sensitivity, volume_economics=economics
    )
    return answers, chosen, tier.warnings


def _allowed(ctx: Context, index: int, workload: Workload, perimeter: Perimeter) -> list[Entry]:
    """Step 1, the pin: what the perimeter allows, narrowed to the pinned model where the file
    pins one (an open-weights pin admits the same weights sold as an API too)."""
    catalog = ctx.catalog
    entries: list[Entry]
    if workload.model is None:
        # The article's snapshot models (current: false) compete only when pinned.
        apis = catalog.api_models
        entries = [
            *ctx.self_hosted_entries,
            *(e for e in ctx.api_entries[workload.data] if apis[e.model_id].current),
        ]
    else:
        entries = [e for e in ctx.self_hosted_entries if e.model_id == workload.model]
        if workload.model in catalog.models:
            # An open-weights pin pins the model, not how it is served: the same weights sold
            # as an API compete too, where the perimeter allows them.
            entries += [
                e
                for e in ctx.api_entries[workload.data]
                if catalog.api_models[e.model_id].open_model == workload.model
            ]
        if workload.model in catalog.api_models:
            api = catalog.api_models[workload.model]
            refusal = api_allowed(catalog, api, workload.data, perimeter, ctx.region)
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
            entries = [e for e in ctx.api_entries[workload.data] if e.subject == workload.model]
    if not entries:
        raise Unservable(
            [Problem(f"workloads[{index}]", "no option in the catalog can serve this workload")]
        )
    return entries


@dataclass(frozen=True)
class LeftOut:
    """What the admission step left out, and why (the choice's reason says it)."""

    context: int  # tokens of one request's context (input and output)
    over_window: list[str]  # models whose context window is shorter
    too_long: list[str]  # self-hosted options whose replica's KV cache cannot hold it
    too_slow: dict[str, float]  # self-hosted options too slow for the per-user speed: their best
    speed: float  # the per-user speed, output tokens/s
    slow_text: str
    # self-hosted options on targets its callers cannot reach (a cluster site, for callers that
    # name a VPC or an account, Target.reached_from_outside; one without an internal load
    # balancer, for callers by range, Target.reached_by_range)
    unreachable: list[str] = field(default_factory=list)
    unreachable_why: str = ""
    # the Kubernetes site its callers' pods run on: only options there were admitted
    site: str | None = None


def _admitted(
    ctx: Context, index: int, workload: Workload, entries: list[Entry], demand: Demand
) -> tuple[list[Entry], LeftOut]:
    """Step 2, admission: a request longer than a model's context window rules the model out,
    and so does a replica whose KV cache cannot hold one request's context, or on which no user
    reads at the workload's per-user speed."""
    context = demand.request_in + demand.request_out
    windows = ctx.catalog.context_windows
    if workload.model is not None and context > windows[workload.model].value:
        window = windows[workload.model]
        raise Unservable(
            [
                Problem(
                    f"workloads[{index}].model",
                    f"a request of {context:,} tokens ({_request_origin(workload)}) is longer "
                    f"than {workload.model}'s context window of "
                    f"{tokens_count(window.value)} tokens "
                    f"({window.source}): shorten the requests or pin another model",
                )
            ]
        )
    self_hosted = [e.subject for e in entries if not isinstance(e.subject, str)]
    over_window = sorted({e.model_id for e in entries if context > windows[e.model_id].value})
    too_long = sorted(
        c.option_id
        for c in self_hosted
        if c.model_id not in over_window and not context_fits(ctx, c, demand)
    )
    # A self-hosted option on which no user reads at the workload's per-user speed, even one
    # request alone (its decode step is too long), cannot deliver the workload: left out.
    speed = demand.shape.user_output_tps
    too_slow = {
        c.option_id: limits_at(ctx, c, demand.shape).throughput.max_user_tps
        for c in self_hosted
        if c.model_id not in over_window
        and c.option_id not in too_long
        and not limits_at(ctx, c, demand.shape).throughput.delivers_user_speed
    }
    slow_text = ", ".join(
        f"{o} (at most {tokens_per_second(too_slow[o])})" for o in sorted(too_slow)
    )
    # Callers naming a VPC or an account ask for a PrivateLink endpoint; callers given by
    # their range only reach a cluster pool through its site's internal load balancer.
    linked = any(c.vpc is not None or c.account is not None for c in workload.consumers)
    by_range = any(
        c.cidr is not None and c.vpc is None and c.account is None for c in workload.consumers
    )
    # A public range (outside the catalog's private ranges) is no caller an internal load
    # balancer is reached from.
    private = ctx.catalog.private_consumers
    public = sorted(
        c.cidr for c in workload.consumers if c.cidr is not None and not private.is_private(c.cidr)
    )
    unreachable = sorted(
        c.option_id
        for c in self_hosted
        if (linked and not c.target.reached_from_outside)
        or (by_range and not c.target.reached_by_range)
        or (public and not c.target.reached_by_public_range)
    )
    why = (
        "its callers name a VPC or an account, for which a cluster site makes no PrivateLink "
        "endpoint"
        if linked
        else f"its callers include the public range{'s' if len(public) > 1 else ''} "
        f"{', '.join(public)}, from which a cluster site's internal load balancer is not reached"
        if public
        else "its callers are given by their range, outside the cluster, and the cluster site "
        "has no internal load balancer (sites[].load_balancer)"
    )
    if unreachable and not [
        e for e in entries if isinstance(e.subject, str) or e.subject.option_id not in unreachable
    ]:
        raise Unservable(
            [
                Problem(
                    f"workloads[{index}].consumers",
                    f"{why}, and every option allowed runs on one: "
                    + ("" if linked or public else "give the site a load_balancer, or ")
                    + f"let the workload use AWS or an API ({', '.join(unreachable)})",
                )
            ]
        )
    if too_long or over_window or too_slow or unreachable:
        left_out = {*too_long, *over_window, *too_slow, *unreachable}
        entries = [
            e
            for e in entries
            if (e.subject if isinstance(e.subject, str) else e.subject.option_id) not in left_out
            and (isinstance(e.subject, str) or e.model_id not in left_out)
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
    return entries, LeftOut(
        context, over_window, too_long, too_slow, speed, slow_text, unreachable, why
    )


def _price(ctx: Context, subject: SelfHostedCandidate | str, demand: Demand) -> Option:
    """An admitted option priced at the workload's demand."""
    if isinstance(subject, str):
        return api_option(ctx, subject, ctx.catalog.api_models[subject], demand)
    return self_hosted_option(ctx, subject, demand)


class AtTier(NamedTuple):
    """Step 3, the tier: the admitted options priced, those meeting the task's tier, or under a
    quality ceiling the best allowed, with the cheaper models of that tier beside them."""

    options: list[Option]
    meets_tier: bool
    ceiling_alternatives: list[Option]
    warnings: list[Warning]


def _at_tier(
    ctx: Context,
    workload: Workload,
    quality: TaskQuality,
    perimeter: Perimeter,
    entries: list[Entry],
    demand: Demand,
    site: str | None = None,
) -> AtTier:
    """The options meeting the task's tier; where none does, the quality ceiling (`site`: the
    cluster site its callers' pods run on, the only place it may be served)."""
    needed = TIER_ORDER[quality.tier]
    meeting = [e.subject for e in entries if e.tier >= needed]
    if meeting:
        return AtTier([_price(ctx, subject, demand) for subject in meeting], True, [], [])
    admissible, cheaper, warning = _quality_ceiling(
        ctx, workload, quality, perimeter, entries, demand, site
    )
    return AtTier(admissible, False, cheaper, [warning])


def _quality_ceiling(
    ctx: Context,
    workload: Workload,
    quality: TaskQuality,
    perimeter: Perimeter,
    entries: list[Entry],
    demand: Demand,
    site: str | None = None,
) -> tuple[list[Option], list[Option], Warning]:
    """The best model allowed, the cheaper models of its tier as alternatives, and the warning
    that says what is given up."""
    sizes = ctx.model_sizes
    # Nothing meets the tier within the perimeter: the best model allowed (the top-ranked of
    # the best tier reached), and say so; the cheaper models of that tier are priced beside
    # it, so the plan shows what insisting on the top-ranked model costs.
    reached = max(e.tier for e in entries)
    best = [e for e in entries if e.tier == reached]
    top_rank = max(e.rank for e in best)
    admissible = [_price(ctx, e.subject, demand) for e in best if e.rank == top_rank]
    admissible.sort(key=lambda o: (o.monthly_cost_usd, sizes[o.model], o.id))
    top = admissible[0]
    cheapest: dict[str, Option] = {}
    for e in best:
        if e.rank == top_rank:
            continue
        option = _price(ctx, e.subject, demand)
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
    # The ranks that make the top model the top one, with their sources, among the figures
    # of each option they ordered.
    for option in [top, *cheaper]:
        if option.placement == "self_hosted":
            model = ctx.catalog.models[option.model]
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
    warning = Warning(
        code="quality_ceiling",
        message=(
            f"the task needs a {quality.tier.value} model but nothing at that tier meets "
            f"the {perimeter.value} perimeter"
            + (f" or the pinned model {workload.model}" if workload.model else "")
            + (
                f" on site {site}, the only place it may be served ({callers_text(workload)}, "
                "which an API or an EC2 pool cannot reach)"
                if site is not None
                else ""
            )
            + f"; the best model allowed, {top.model} ({top.tier.value}), is used"
            + listed
            + f". What is given up: {quality.tier.value}-level quality "
            f"({ctx.catalog.tasks[workload.task].reason}); review its answers on this task "
            "before relying on them"
        ),
    )
    return admissible, cheaper, warning


def _choice(
    ctx: Context,
    workload: Workload,
    quality: TaskQuality,
    perimeter: Perimeter,
    tier: AtTier,
    left_out: LeftOut,
    demand: Demand,
) -> tuple[Option, str]:
    """Step 4, the choice: cheapest first; at equal cost the smaller model, as the smallest model
    that solves the problem is the one to start with; then by id, so the choice never depends
    on order. The chosen self-hosted option carries its cost range."""
    admissible = tier.options
    admissible.sort(key=lambda o: (o.monthly_cost_usd, ctx.model_sizes[o.model], o.id))
    chosen = admissible[0]
    runner_up = admissible[1] if len(admissible) > 1 else None
    reason = (
        f"cheapest of {len(admissible)} option(s) meeting tier "
        f"{admissible[0].tier.value if not tier.meets_tier else quality.tier.value} within the "
        f"{perimeter.value} perimeter (ties go to the smaller model): {chosen.id} at "
        f"{usd(chosen.monthly_cost_usd)} a month"
        + (
            f"; next, {runner_up.id} at {usd(runner_up.monthly_cost_usd)}"
            if runner_up is not None
            else ""
        )
        + (
            f"; left out because one {left_out.context:,}-token request is longer than their "
            f"context window: {', '.join(left_out.over_window)}"
            if left_out.over_window
            else ""
        )
        + (
            f"; left out because one {left_out.context:,}-token context does not fit a "
            f"replica's KV cache: {', '.join(left_out.too_long)}"
            if left_out.too_long
            else ""
        )
        + (
            f"; left out because no batch reaches {left_out.speed:g} output tokens/s a user "
            f"({_speed_origin(workload)}), even one request alone: {left_out.slow_text} "
            "tokens/s"
            if left_out.too_slow
            else ""
        )
        + (
            f"; left out because {left_out.unreachable_why}: {', '.join(left_out.unreachable)}"
            if left_out.unreachable
            else ""
        )
        + (
            f"; only options on site {left_out.site} were admitted: "
            f"{callers_text(workload)}, which an API or an EC2 pool cannot reach"
            if left_out.site is not None
            else ""
        )
    )
    if chosen.placement == "self_hosted":
        candidate = ctx.by_option[chosen.id]
        chosen.monthly_cost_low_usd, chosen.monthly_cost_high_usd = cost_range(
            ctx, candidate, [demand.load], demand.min_units
        )
    return chosen, reason


def _lower_precision_alternatives(ctx: Context, chosen: Option, demand: Demand) -> list[Option]:
    """Step 5, alternatives: the chosen self-hosted model at a lower precision, where its own
    needs several nodes, priced beside the choice and never chosen."""
    found: list[Option] = []
    if chosen.placement != "self_hosted":
        return found
    for candidate in ctx.lower_precisions.get(chosen.model, ()):
        if not context_fits(ctx, candidate, demand) or not (
            limits_at(ctx, candidate, demand.shape).throughput.delivers_user_speed
        ):
            continue
        option = self_hosted_option(ctx, candidate, demand)
        precision = ctx.catalog.precisions[candidate.memory_fit.precision]
        option.note = (
            f"comparison only, not chosen: {candidate.memory_fit.precision} weights fit one "
            f"{candidate.instance_type} where {ctx.catalog.models[chosen.model].default_precision} "
            f"weights do not; quality: {precision.quality_note}; throughput from the "
            f"throughput model at {candidate.memory_fit.precision}; not deployable from "
            f"this plan: the catalog has no {candidate.memory_fit.precision} checkpoint"
        )
        found.append(option)
    return found


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
