"""What a plan must satisfy beyond its types (plan_problems): every reference resolves, the
totals add up to the cent, and a pool's nodes cost what its cost says; where the plan puts things
is place_checks.py."""

from __future__ import annotations

from planner.catalog import Catalog
from planner.catalog.vocabulary import Pricing
from planner.costing import node_hourly_usd, nodes_monthly_usd, pieces_cost, purchase_costs
from planner.errors import Problem
from planner.fmt import tokens_count, usd
from planner.planfile.place_checks import (
    again,
    consumer_problems,
    network_problems,
    perimeter_problems,
    place_problems,
)
from planner.planfile.plan import Plan
from planner.planfile.site_checks import (
    cluster_pool_cost_problems,
    pricing_problems,
    site_problems,
)


def _cents(amount: float) -> int:
    return round(amount * 100)


def plan_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """Everything a plan must satisfy beyond its types, each problem with its field. The totals
    must add up to the cent: they are sums of whole cents when the planner writes them."""
    problems: list[Problem] = []

    def problem(field: str, message: str) -> None:
        problems.append(Problem(field, f"{message}: plan again with `planner plan`"))

    def not_negative(field: str, value: float | int | None) -> None:
        if value is not None and value < 0:
            problem(field, f"{value} is negative")

    def adds_up(field: str, value: float, parts: list[float], what: str) -> None:
        expected = sum(_cents(part) for part in parts)
        if _cents(value) != expected:
            problem(field, f"{usd(value)} is not {what}, {usd(expected / 100)}")

    workloads = {w.name: w for w in plan.workloads}
    pools = {pool.name: pool for pool in plan.pools}
    clusters = {}
    for index, site in enumerate(plan.sites):
        if site.name in clusters:
            problem(f"sites[{index}].name", f"{site.name!r} is repeated")
        clusters[site.name] = site
    providers = {access.provider: access for access in plan.providers}
    seen: set[str] = set()
    for index, w in enumerate(plan.workloads):
        at = f"workloads[{index}]"
        if w.name in seen:
            problem(f"{at}.name", f"{w.name!r} is repeated")
        seen.add(w.name)
        for name in (
            "monthly_cost_usd",
            "monthly_cost_low_usd",
            "monthly_cost_high_usd",
            "access_share_usd",
            "connection_share_usd",
        ):
            not_negative(f"{at}.{name}", getattr(w, name))
        if w.connection_share_usd and _cents(w.access_share_usd) + _cents(
            w.connection_share_usd
        ) > _cents(w.monthly_cost_usd):
            problem(
                f"{at}.connection_share_usd",
                "with access_share_usd, above the workload's monthly_cost_usd",
            )
        if w.monthly_cost_low_usd > w.monthly_cost_high_usd:
            problem(f"{at}.monthly_cost_low_usd", "above monthly_cost_high_usd")
        economics = w.answers.volume_economics
        not_negative(
            f"{at}.answers.volume_economics.monthly_input_tokens", economics.monthly_input_tokens
        )
        not_negative(
            f"{at}.answers.volume_economics.monthly_output_tokens", economics.monthly_output_tokens
        )
        if w.placement == "self_hosted":
            if w.model not in catalog.models:
                problem(f"{at}.model", f"{w.model!r} is not an open model of the catalog")
            if w.pool not in pools:
                problem(f"{at}.pool", f"{w.pool!r} names no pool of this plan")
            elif w.name not in pools[w.pool].workloads:
                problem(f"{at}.pool", f"pool {w.pool!r} does not list {w.name!r}")
            if w.access_share_usd:
                problem(f"{at}.access_share_usd", "a self-hosted workload shares no API access")
        else:
            if w.model not in catalog.api_models:
                problem(f"{at}.model", f"{w.model!r} is not an API model of the catalog")
            if w.pool is not None:
                problem(f"{at}.pool", f"an API workload is in no pool, found {w.pool!r}")
            if w.provider not in providers:
                problem(f"{at}.provider", f"{w.provider!r} names no provider of this plan")
            elif w.name not in providers[w.provider].workloads:
                problem(f"{at}.provider", f"provider {w.provider!r} does not list {w.name!r}")
            if _cents(w.access_share_usd) > _cents(w.monthly_cost_usd):
                problem(f"{at}.access_share_usd", "above the workload's monthly_cost_usd")
        option_ids = set()
        for number, option in enumerate(economics.options + economics.alternatives):
            kind = "options" if number < len(economics.options) else "alternatives"
            place = number if kind == "options" else number - len(economics.options)
            where = f"{at}.answers.volume_economics.{kind}[{place}]"
            if kind == "options":
                option_ids.add(option.id)
            not_negative(f"{where}.monthly_cost_usd", option.monthly_cost_usd)
            not_negative(f"{where}.fixed_monthly_usd", option.fixed_monthly_usd)
            if option.nodes is not None and option.nodes < 1:
                problem(f"{where}.nodes", f"{option.nodes} nodes: at least 1")
            if (
                option.instance_type is not None
                and option.instance_type not in catalog.instances
                and option.instance_type not in clusters
            ):
                problem(
                    f"{where}.instance_type",
                    f"{option.instance_type!r} is not an instance type of the catalog",
                )
            known = catalog.models if option.placement == "self_hosted" else catalog.api_models
            if option.model not in known:
                problem(f"{where}.model", f"{option.model!r} is not a model of the catalog")
        if economics.chosen not in option_ids:
            problem(
                f"{at}.answers.volume_economics.chosen",
                f"{economics.chosen!r} is none of the workload's options",
            )

    seen = set()
    for index, pool in enumerate(plan.pools):
        at = f"pools[{index}]"
        if pool.name in seen:
            problem(f"{at}.name", f"{pool.name!r} is repeated")
        seen.add(pool.name)
        if pool.model not in catalog.models:
            problem(f"{at}.model", f"{pool.model!r} is not an open model of the catalog")
        instance = catalog.instances.get(pool.instance_type)
        cluster = clusters.get(pool.site)
        if cluster is not None:
            # A cluster pool's node is its site's GPU node (its cost is the site's, not
            # instances.yaml's: site_checks.py recomputes it).
            if pool.instance_type != cluster.name:
                problem(
                    f"{at}.instance_type",
                    f"{pool.instance_type!r}, but a pool on site {cluster.name} runs on its nodes",
                )
            elif pool.gpus_per_node != cluster.gpus_per_node:
                problem(
                    f"{at}.gpus_per_node",
                    f"{pool.gpus_per_node}, but a node of site {cluster.name} has "
                    f"{cluster.gpus_per_node}",
                )
        elif instance is None:
            problem(
                f"{at}.instance_type",
                f"{pool.instance_type!r} is not an instance type of the catalog",
            )
        elif pool.gpus_per_node != instance.gpus:
            problem(
                f"{at}.gpus_per_node",
                f"{pool.gpus_per_node}, but a {pool.instance_type} has {instance.gpus}",
            )
        if (pool.capacity_reservation_id is None) != (pool.capacity_reservation_zone is None):
            problem(
                f"{at}.capacity_reservation_zone",
                "a capacity reservation and its availability zone go together: plan again",
            )
        for name in (
            "nodes",
            "tensor_parallel",
            "pipeline_parallel",
            "replicas_per_node",
            "max_model_len",
        ):
            if getattr(pool, name) < 1:
                problem(f"{at}.{name}", f"{getattr(pool, name)}: at least 1")
        if not 0 < pool.gpu_memory_utilization <= 1:
            problem(
                f"{at}.gpu_memory_utilization",
                f"{pool.gpu_memory_utilization}: a share of GPU memory, above 0 and at most 1",
            )
        if pool.tensor_parallel * pool.replicas_per_node > pool.gpus_per_node:
            problem(
                f"{at}.replicas_per_node",
                f"{pool.replicas_per_node} replicas of tensor parallel {pool.tensor_parallel} "
                f"need more than the node's {pool.gpus_per_node} GPUs",
            )
        if pool.pipeline_parallel > 1 and pool.replicas_per_node != 1:
            problem(
                f"{at}.replicas_per_node",
                f"{pool.replicas_per_node}, but a replica spans {pool.pipeline_parallel} nodes",
            )
        open_model = catalog.models.get(pool.model)
        if open_model is not None and pool.precision not in open_model.checkpoints:
            # The nodes load the checkpoint published at the pool's precision.
            problem(f"{at}.precision", f"{pool.model} has no checkpoint at {pool.precision!r}")
        elif open_model is not None and pool.weights != open_model.checkpoints[pool.precision].repo:
            # The nodes download `weights` and serve them as `model` (planning/pools.py sets
            # it): other weights would be served under the reviewed model's name.
            problem(
                f"{at}.weights",
                f"{pool.weights!r}, but {pool.model}'s checkpoint at {pool.precision} is "
                f"{open_model.checkpoints[pool.precision].repo!r}",
            )
        window = catalog.context_windows.get(pool.model)
        if window is not None and pool.max_model_len > window.value:
            problem(
                f"{at}.max_model_len",
                f"{pool.max_model_len:,} tokens, over {pool.model}'s context window of "
                f"{tokens_count(window.value)}",
            )
        for name in (
            "monthly_cost_usd",
            "monthly_cost_low_usd",
            "monthly_cost_high_usd",
            "monthly_tokens",
        ):
            not_negative(f"{at}.{name}", getattr(pool, name))
        for number, purchase in enumerate(pool.purchase_options):
            not_negative(
                f"{at}.purchase_options[{number}].monthly_cost_usd", purchase.monthly_cost_usd
            )
        if not pool.workloads:
            problem(f"{at}.workloads", "a pool names no workload")
        members = []
        for number, name in enumerate(pool.workloads):
            member = workloads.get(name)
            if member is None:
                problem(f"{at}.workloads[{number}]", f"{name!r} is no workload of this plan")
            elif member.pool != pool.name:
                problem(f"{at}.workloads[{number}]", f"{name!r} is placed in {member.pool!r}")
            else:
                # The pool's own cost: its workloads' connections are priced apart.
                members.append(member.monthly_cost_usd - member.connection_share_usd)
                if member.model != pool.model:
                    # A pool serves its workloads' model (their answers chose it), no other.
                    problem(
                        f"{at}.model",
                        f"{pool.model!r}, but its workload {name!r} is planned for "
                        f"{member.model!r}",
                    )
        if len(members) == len(pool.workloads) and pool.workloads:
            adds_up(
                f"{at}.monthly_cost_usd",
                pool.monthly_cost_usd,
                members,
                "the sum of its workloads' costs less their connection shares",
            )

    for index, access in enumerate(plan.providers):
        at = f"providers[{index}]"
        if access.provider not in catalog.providers:
            problem(f"{at}.provider", f"{access.provider!r} is not a provider of the catalog")
        not_negative(f"{at}.fixed_monthly_usd", access.fixed_monthly_usd)
        if not access.workloads:
            problem(f"{at}.workloads", "a provider's access names no workload")
        for number, name in enumerate(access.workloads):
            member = workloads.get(name)
            if member is None:
                problem(f"{at}.workloads[{number}]", f"{name!r} is no workload of this plan")
            elif member.placement != "cloud_api" or member.provider != access.provider:
                problem(f"{at}.workloads[{number}]", f"{name!r} does not use {access.provider}")
        for number, model in enumerate(access.models):
            if model not in catalog.api_models:
                problem(f"{at}.models[{number}]", f"{model!r} is not an API model of the catalog")

    problems.extend(network_problems(plan))
    totals = plan.totals
    for name in (
        "monthly_cost_usd",
        "monthly_cost_low_usd",
        "monthly_cost_high_usd",
        "self_hosted_usd",
        "cloud_api_usd",
        "staff_usd",
        "api_tokens_usd",
        "shared_access_usd",
        "connections_usd",
        "per_workload_usd",
        "egress_network_usd",
        "optimality_gap_usd",
    ):
        not_negative(f"totals.{name}", getattr(totals, name))
    costs = [w.monthly_cost_usd for w in plan.workloads]
    adds_up(
        "totals.monthly_cost_usd", totals.monthly_cost_usd, costs, "the sum of the workloads' costs"
    )
    adds_up(
        "totals.monthly_cost_usd",
        totals.monthly_cost_usd,
        [totals.self_hosted_usd, totals.cloud_api_usd],
        "self_hosted_usd + cloud_api_usd",
    )
    adds_up(
        "totals.self_hosted_usd",
        totals.self_hosted_usd,
        [w.monthly_cost_usd for w in plan.workloads if w.placement == "self_hosted"],
        "the sum of the self-hosted workloads' costs",
    )
    adds_up(
        "totals.cloud_api_usd",
        totals.cloud_api_usd,
        [totals.api_tokens_usd, totals.shared_access_usd]
        + [w.connection_share_usd for w in plan.workloads if w.placement == "cloud_api"],
        "api_tokens_usd + shared_access_usd + the API workloads' connection_share_usd",
    )
    adds_up(
        "totals.shared_access_usd",
        totals.shared_access_usd,
        [a.fixed_monthly_usd for a in plan.providers] + [totals.egress_network_usd],
        "the providers' fixed_monthly_usd and egress_network_usd",
    )
    adds_up(
        "totals.shared_access_usd",
        totals.shared_access_usd,
        [w.access_share_usd for w in plan.workloads],
        "the sum of the workloads' access_share_usd",
    )
    problems.extend(_connection_problems(plan))
    adds_up(
        "totals.connections_usd",
        totals.connections_usd,
        [c.monthly_cost_usd for c in plan.connections],
        "the sum of the connections' costs",
    )
    adds_up(
        "totals.connections_usd",
        totals.connections_usd,
        [w.connection_share_usd for w in plan.workloads],
        "the sum of the workloads' connection_share_usd",
    )
    adds_up(
        "totals.monthly_cost_low_usd",
        totals.monthly_cost_low_usd,
        [w.monthly_cost_low_usd for w in plan.workloads],
        "the sum of the workloads' low ends",
    )
    adds_up(
        "totals.monthly_cost_high_usd",
        totals.monthly_cost_high_usd,
        [w.monthly_cost_high_usd for w in plan.workloads],
        "the sum of the workloads' high ends",
    )
    adds_up(
        "totals.saved_by_sharing_usd",
        totals.saved_by_sharing_usd,
        [totals.per_workload_usd, -totals.monthly_cost_usd],
        "per_workload_usd - monthly_cost_usd",
    )
    fte, engineer = plan.assumptions.get("pool_fte"), plan.assumptions.get("engineer_usd_per_month")
    if isinstance(fte, int | float) and isinstance(engineer, int | float):
        adds_up(
            "totals.staff_usd",
            totals.staff_usd,
            [round(fte * engineer, 2)] * len(plan.pools),
            f"{len(plan.pools)} pool(s) x {fte:g} engineer x {usd(engineer)}",
        )
    else:
        problem("assumptions.pool_fte", "pool_fte and engineer_usd_per_month must be numbers")
    problems.extend(place_problems(plan, catalog))
    problems.extend(consumer_problems(plan, catalog))
    problems.extend(perimeter_problems(plan, catalog))
    problems.extend(_node_cost_problems(plan, catalog))
    problems.extend(site_problems(plan, catalog))
    problems.extend(pricing_problems(plan))
    return problems


def _connection_problems(plan: Plan) -> list[Problem]:
    """Each connection names a consumer VPC of its workloads, and those workloads use its
    service; a workload sharing a connection has a share."""
    problems: list[Problem] = []
    workloads = {w.name: w for w in plan.workloads}
    for index, connection in enumerate(plan.connections):
        at = f"connections[{index}]"

        def problem(field: str, message: str) -> None:
            problems.append(Problem(field, f"{message}: plan again with `planner plan`"))

        if connection.monthly_cost_usd < 0:
            problem(f"{at}.monthly_cost_usd", f"{connection.monthly_cost_usd} is negative")
        if not connection.workloads:
            problem(f"{at}.workloads", "a connection names no workload")
        for number, name in enumerate(connection.workloads):
            member = workloads.get(name)
            if member is None:
                problem(f"{at}.workloads[{number}]", f"{name!r} is no workload of this plan")
                continue
            if connection.vpc not in {c.vpc for c in member.consumers}:
                problem(f"{at}.vpc", f"{connection.vpc!r} is no consumer VPC of {name!r}")
            if connection.monthly_cost_usd and not member.connection_share_usd:
                problem(f"{at}.workloads[{number}]", f"{name!r} has no connection_share_usd")
    return problems


def _node_cost_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """A pool's cost is its nodes at its purchase option plus its staff and network pieces, to
    the cent (as planning/pools.py prices it); its purchase options are the same nodes priced
    each way. A node count changed alone, or an absurd one, disagrees with the costs. A
    cluster pool's nodes are its site's (site_checks.py)."""
    fte, engineer = plan.assumptions.get("pool_fte"), plan.assumptions.get("engineer_usd_per_month")
    months = plan.assumptions.get("amortization_months")
    if not isinstance(fte, int | float) or not isinstance(engineer, int | float):
        return []  # plan_problems reports it
    staff = round(fte * engineer, 2)
    fixed = round(staff + pieces_cost(catalog, ("self_hosted_pool",)).monthly_usd, 2)
    hours = catalog.pricing.hours_per_month.value
    found = cluster_pool_cost_problems(plan, catalog, staff)
    sites = {site.name for site in plan.sites}
    for index, pool in enumerate(plan.pools):
        instance = catalog.instances.get(pool.instance_type)
        if instance is None or pool.nodes < 1 or pool.site in sites:
            continue  # reported by plan_problems; a cluster pool: site_checks.py
        if not isinstance(pool.pricing, Pricing):
            continue  # owned or bought on EC2: site_checks.pricing_problems
        at = f"pools[{index}]"
        hourly = node_hourly_usd(catalog, instance, pool.pricing)
        expected = round((nodes_monthly_usd(hourly, hours, pool.nodes) + fixed) * 100)
        if _cents(pool.monthly_cost_usd) != expected:
            found.append(
                again(
                    f"{at}.monthly_cost_usd",
                    f"{usd(pool.monthly_cost_usd)}, but {pool.nodes:,} x {pool.instance_type}"
                    f" ({pool.pricing.value}) and the pool's staff and network pieces cost "
                    f"{usd(expected / 100)}: nodes and cost disagree",
                )
            )
        recomputed = {
            cost.option: cost.monthly_usd
            for cost in purchase_costs(
                catalog,
                pool.instance_type,
                pool.nodes,
                months if isinstance(months, int | float) else None,
            )
        }
        for number, purchase in enumerate(pool.purchase_options):
            price = recomputed.get(purchase.option)
            if price is None:
                found.append(
                    again(
                        f"{at}.purchase_options[{number}].option",
                        f"{purchase.option!r} is no purchase option of {pool.instance_type}",
                    )
                )
            elif _cents(purchase.monthly_cost_usd) != _cents(price):
                found.append(
                    again(
                        f"{at}.purchase_options[{number}].monthly_cost_usd",
                        f"{usd(purchase.monthly_cost_usd)}, but {pool.nodes:,} x "
                        f"{pool.instance_type} cost {usd(price)} {purchase.option}",
                    )
                )
    return found
