"""What the file asks that is allowed but unusual: said in the plan, never priced silently."""

from __future__ import annotations

from genai_prices import __version__ as genai_prices_version

from planner import costing
from planner.catalog import Catalog
from planner.fmt import usd, usd_dollars
from planner.inputs.workloads import Workload, WorkloadsFile
from planner.planfile import Option, Warning, WorkloadPlan
from planner.planning.context import Context
from planner.planning.decide import Decision
from planner.planning.demand import request_shape


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
            c.cidr
            for c in workload.consumers
            if c.cidr is not None and not catalog.private_consumers.is_private(c.cidr)
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
    clusters = {site.name for site in spec.sites or [] if site.kind == "kubernetes"}
    on_cluster = chosen.placement == "self_hosted" and chosen.instance_type in clusters
    # On a cluster site a plain range is a caller outside the cluster, reached through the
    # site's internal load balancer (planning admits no other): nothing to warn of there.
    if not on_cluster and any(
        c.cidr is not None and c.vpc is None and c.account is None for c in workload.consumers
    ):
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
            f"{usd(chosen.monthly_cost_usd)} a month (warned from "
            f"{usd_dollars(defaults.warn_usd_per_workload.value)})"
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


def with_input_warnings(
    catalog: Catalog, spec: WorkloadsFile, decisions: list[Decision], plans: list[WorkloadPlan]
) -> None:
    """Each workload's warnings: its answers' (decide) and those of the option the plan
    assigns it. The optimal plan may move a workload off its standalone choice (into a shared
    pool, or to an API), so these follow the final assignment, never the choice alone (the
    answers' warnings as the strategy left them: sites.placed_after_all)."""
    for (workload, _, _, _), plan_of in zip(decisions, plans, strict=True):
        assert plan_of.name == workload.name
        economics = plan_of.answers.volume_economics
        assigned = next(o for o in economics.options if o.id == economics.chosen)
        plan_of.warnings = [*plan_of.warnings, *input_warnings(catalog, spec, workload, assigned)]


def _per_mtok(value: float) -> str:
    return f"{value:,.6g}"


def _prices(input_usd: float, output_usd: float, cached_usd: float | None) -> str:
    """Input / output USD per million, and the cache-read price where the model has one."""
    cached = f" ({_per_mtok(cached_usd)} cached input)" if cached_usd is not None else ""
    return f"{_per_mtok(input_usd)} / {_per_mtok(output_usd)}{cached}"


def price_change_warnings(
    ctx: Context, decisions: list[Decision], plans: list[WorkloadPlan]
) -> None:
    """A workload on an API whose price the pinned snapshot already changes after the plan's
    price_date (an introductory price that ends, an announced rise) says so: the plan is priced
    at its price_date, which a price that has since ended would otherwise quote silently (an
    outside review: an introductory 2 / 10 USD per million, ended a month after the price date,
    chosen at half the price it then had)."""
    when = ctx.settings.price_date
    for (workload, _, _, _), plan_of in zip(decisions, plans, strict=True):
        if plan_of.placement != "cloud_api" or plan_of.model not in ctx.catalog.api_models:
            continue
        api = ctx.catalog.api_models[plan_of.model]
        request_in, request_out = request_shape(ctx, workload)
        later = costing.later_prices(ctx.catalog, api, request_in, request_out, when)
        if not later:
            continue
        now = costing.api_price(ctx.catalog, api, request_in, request_out, when)
        priced = _prices(
            now.input_usd_per_mtok, now.output_usd_per_mtok, now.cached_input_usd_per_mtok
        )
        changes = "; ".join(
            f"{_prices(p.input_usd_per_mtok, p.output_usd_per_mtok, p.cached_input_usd_per_mtok)}"
            f" from {p.start.isoformat()}"
            for p in later
        )
        plan_of.warnings = [
            *plan_of.warnings,
            Warning(
                code="api_price_changes",
                message=f"{plan_of.model} is priced as of the plan's price_date, "
                f"{when.isoformat()}, at {priced} USD per million input / output tokens; "
                f"the pinned genai-prices {genai_prices_version} prices it at {changes}: give "
                "assumptions.price_date on or after that date to plan at that price",
            ),
        ]
