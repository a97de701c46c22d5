"""Build the plan: every workload's three answers, the self-hosted pools, the API access, totals."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from genai_prices import __version__ as genai_prices_version

from planner.catalog import Catalog
from planner.costing import Settings, api_fixed_kinds, pool_staff_usd
from planner.errors import PlannerError, Problem
from planner.inputs import networks
from planner.inputs.loader import LoadedWorkloads
from planner.inputs.sites import KubernetesSite
from planner.planfile import (
    API_NETWORK_FOR,
    SCHEMA_VERSION,
    ClusterLoadBalancer,
    ClusterSite,
    Plan,
    Pool,
    ProviderAccess,
    SiteNodeCost,
    Totals,
)
from planner.planning.access import EGRESS, connections_of, with_access_costs, with_connections
from planner.planning.context import Context
from planner.planning.decide import Decision, Unservable, decide
from planner.planning.figures import FigureBook, speed_figure
from planner.planning.input_warnings import price_change_warnings, with_input_warnings
from planner.planning.pools import Purchases
from planner.planning.settings import settings_for
from planner.planning.sites import range_warnings, within_sites
from planner.planning.strategies import SiteOverfull, per_workload, shared_pools
from planner.targets import pool_targets
from planner.targets.kubernetes import KubernetesTarget
from planner.targets.kubernetes_nodes import pod_problem, pod_resources

Strategy = Literal["optimal", "per-workload"]


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
            (c.cidr for w in spec.workloads for c in w.consumers if c.cidr is not None),
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


def _cluster_sites(
    loaded: LoadedWorkloads, settings: Settings, catalog: Catalog, book: FigureBook
) -> list[ClusterSite]:
    """The file's Kubernetes sites, in its order, with what the stack deploys there, what a
    node costs (the figures the pools' formulas cite) and what each pool pod there holds, its
    figures recorded in the book. Each is used: every workload's options name its node type, a
    pool on it names it as its site."""
    found: list[ClusterSite] = []
    problems: list[Problem] = []
    targets = {t.site.name: t for t in pool_targets(settings) if isinstance(t, KubernetesTarget)}
    for index, site in enumerate(loaded.spec.sites or []):
        if not isinstance(site, KubernetesSite):
            continue
        pod = pod_resources(catalog, site, index)
        problem = pod_problem(pod)
        if problem is not None:
            field, message = problem
            line = (
                loaded.lines.line(("sites", index, field))
                if field in site.model_fields_set
                else None
            )
            problems.append(Problem(f"sites[{index}].{field}", message, line))
            continue
        target = targets[site.name]
        basis = target.node_cost(catalog).basis
        found.append(
            ClusterSite(
                name=site.name,
                context=site.context,
                gpu=site.gpu,
                gpus_per_node=site.gpus_per_node,
                nodes=site.nodes,
                node_selector=dict(site.node_selector),
                tolerations=[toleration.manifest() for toleration in site.tolerations],
                storage_class=site.storage_class,
                weights_source=site.weights_source,
                cpus_per_node=pod.cpus_per_node,
                memory_gib_per_node=pod.memory_gib_per_node,
                pod_cpus=pod.cpus,
                pod_memory_mib=pod.memory_mib,
                shm_mib=pod.shm_mib,
                figures=[book.add(*figure) for figure in pod.figures],
                cost=SiteNodeCost(
                    owned=basis.owned,
                    power_kw_per_node=basis.power_kw,
                    pue=basis.pue,
                    usd_per_kwh=basis.usd_per_kwh,
                    hosting_usd_per_node_month=basis.hosting_usd,
                    capital_usd_per_node=basis.capital_usd,
                    amortization_months=basis.horizon_months,
                    from_file=target.from_file(),
                    node_monthly_usd=round(basis.monthly_usd, 2),
                ),
                load_balancer=None
                if site.load_balancer is None
                else ClusterLoadBalancer(
                    annotations=dict(site.load_balancer.annotations),
                    load_balancer_class=site.load_balancer.load_balancer_class,
                    dns_suffix=site.load_balancer.dns_suffix,
                    health_check_cidrs=list(site.load_balancer.health_check_cidrs),
                ),
                assumptions=[
                    f"{a.text} ({a.source}, {a.date})"
                    for a in [
                        *catalog.cluster_assumptions,
                        *(catalog.load_balancer_assumptions if site.load_balancer else []),
                        *(
                            catalog.health_check_assumptions
                            if site.load_balancer and site.load_balancer.health_check_cidrs
                            else []
                        ),
                    ]
                ],
            )
        )
    if problems:
        raise PlannerError(str(loaded.path), problems)
    return found


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
    # A site too small to size a pod stops here.
    sites = _cluster_sites(loaded, settings, catalog, book)
    ctx = Context(catalog=catalog, settings=settings, book=book, region=spec.region)

    decisions: list[Decision] = []
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
        decisions.append(Decision(workload, answers, chosen, warnings))
    if problems:
        raise PlannerError(str(loaded.path), problems)
    decisions, site_problems = within_sites(ctx, decisions)
    site_error = PlannerError(
        str(loaded.path),
        [replace(p, line=loaded.lines.line_of_field(p.field)) for p in site_problems],
    )
    # One at a time, a site's workloads may not fit where sharing pools would: under the
    # optimal strategy they are refused only if its plan, too, cannot keep them within the site.
    if site_problems and strategy == "per-workload":
        raise site_error

    purchases: Purchases = {}
    alone_plans, pools = per_workload(ctx, decisions, purchases, strategy == "per-workload")
    gap = 0.0
    stopped = False
    stopped_by_nodes = False
    workload_plans, access_fixed = with_access_costs(catalog, alone_plans)
    # Decided one at a time, each workload's connections are its own service's.
    per_workload_cents = sum(round(w.monthly_cost_usd * 100) for w in alone_plans) + sum(
        round(c.monthly_cost_usd * 100) for c in connections_of(catalog, alone_plans)
    )
    if time_limit is None:
        time_limit = catalog.optimizer.time_limit_s.value
    if strategy != "per-workload":
        alone_costs = {w.name: w.monthly_cost_usd for w in alone_plans}
        try:
            workload_plans, pools, solution = shared_pools(
                ctx, decisions, purchases, alone_costs, time_limit, progress
            )
        except SiteOverfull:
            if site_problems:
                raise site_error from None
            raise
        gap, stopped = round(solution.gap_usd, 2), solution.stopped_by_time_limit
        stopped_by_nodes = solution.stopped_by_node_limit
        workload_plans, access_fixed = with_access_costs(catalog, workload_plans)

    with_input_warnings(catalog, spec, decisions, workload_plans)
    price_change_warnings(ctx, decisions, workload_plans)
    range_warnings(ctx, pools, workload_plans)

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
                # An `iam_role` provider is reached with the callers' IAM role, the others
                # with an API key (providers.yaml auth; one rule, costing.api_fixed_kinds,
                # which also prices the key's secret).
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
    connections = connections_of(catalog, workload_plans, book)
    with_connections(workload_plans, connections)
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
        sites=sites,
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
