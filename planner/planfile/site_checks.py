"""What a plan's cluster sites and the pools on them must satisfy (issue 16): a site's node
costs what its recorded figures make (each figure the workloads file did not set is the
catalog's), a pool there costs its nodes at that node-month plus its staff, its purchase option
is the site's bought hardware (owned or bought), never an EC2 purchase option, and the site's
pools fit its nodes. EC2 pools are checked in checks.py."""

from __future__ import annotations

from pydantic import ValidationError

from planner.catalog import Catalog
from planner.catalog.vocabulary import Ownership, Pricing
from planner.costing import nodes_monthly_usd, pieces_cost, site_node_basis
from planner.errors import Problem
from planner.fmt import usd
from planner.formulas import SiteNodeBasis
from planner.inputs.sites import (
    COST_FIGURES,
    HEALTH_CHECKS_INSIDE,
    KubernetesSite,
    LoadBalancer,
    SiteCost,
    Toleration,
)
from planner.planfile.place_checks import again
from planner.planfile.plan import ClusterSite, Plan
from planner.targets.kubernetes_nodes import NoNodeFigure, pod_problem, pod_resources

# The figures that price a purchase only (an owned node has none).
PURCHASE_FIGURES = COST_FIGURES[-2:]


def ownership(site: ClusterSite) -> Ownership:
    """What a pool on the site is paid as: the site's hardware, owned or bought."""
    return Ownership.owned if site.cost.owned else Ownership.bought


def _catalog_figure(plan: Plan, catalog: Catalog, site: ClusterSite, name: str) -> float | None:
    """The figure a site takes where the workloads file does not set it (pricing.yaml
    hardware; the horizon: the plan's assumptions.amortization_months, which is the file's
    assumptions or the catalog's)."""
    hardware = catalog.pricing.hardware
    if name == "amortization_months":
        months = plan.assumptions.get("amortization_months")
        return float(months) if isinstance(months, int | float) else None
    if name == "capital_usd_per_node":
        server = catalog.server_price(site.gpu, site.gpus_per_node)
        return None if server is None else server.value
    figure = {
        "power_kw_per_node": hardware.power_kw,
        "pue": hardware.pue,
        "usd_per_kwh": hardware.usd_per_kwh,
        "hosting_usd_per_node_month": hardware.hosting_usd_per_node_month,
    }[name]
    return figure.value


def site_node_basis_of(site: ClusterSite, catalog: Catalog) -> SiteNodeBasis | None:
    """A node of the site a month from its recorded figures, with its formula's terms (None: a
    purchase without its capital or horizon, reported by site_problems)."""
    cost = site.cost
    try:
        return site_node_basis(
            owned=cost.owned,
            power_kw=cost.power_kw_per_node,
            pue=cost.pue,
            usd_per_kwh=cost.usd_per_kwh,
            hours=catalog.pricing.hours_per_month.value,
            hosting_usd=cost.hosting_usd_per_node_month,
            capital_usd=cost.capital_usd_per_node,
            horizon_months=cost.amortization_months,
        )
    except ValueError:
        return None


def site_node_monthly_usd(site: ClusterSite, catalog: Catalog) -> float | None:
    basis = site_node_basis_of(site, catalog)
    return None if basis is None else basis.monthly_usd


def site_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """Each site's cost figures: the catalog's where the file did not set them, the same as
    the plan's figures cite, and a node-month they make; its pools within its nodes."""
    found: list[Problem] = []
    for index, site in enumerate(plan.sites):
        at = f"sites[{index}].cost"
        cost = site.cost
        for name in PURCHASE_FIGURES:
            value = getattr(cost, name)
            if cost.owned and value is not None:
                found.append(again(f"{at}.{name}", f"{value:g}, but an owned node has no {name}"))
            elif not cost.owned and value is None:
                found.append(again(f"{at}.{name}", "missing: a bought node's cost needs it"))
        for number, name in enumerate(cost.from_file):
            if name not in COST_FIGURES or getattr(cost, name) is None:
                found.append(
                    again(
                        f"{at}.from_file[{number}]",
                        f"{name!r} is no cost figure this site has ({', '.join(COST_FIGURES)})",
                    )
                )
        for name in COST_FIGURES:
            value = getattr(cost, name)
            if value is None or (cost.owned and name in PURCHASE_FIGURES):
                continue  # an owned node's purchase figure: reported above
            if value < 0 or (value == 0 and name != "hosting_usd_per_node_month"):
                found.append(again(f"{at}.{name}", f"{value:g} is not a positive figure"))
            cited = plan.figures.get(f"site.{site.name}.{name}")
            if cited is not None and cited.value != value:
                found.append(
                    again(
                        f"{at}.{name}",
                        f"{value:g}, but the plan's figure site.{site.name}.{name} is "
                        f"{cited.value}",
                    )
                )
            if name in cost.from_file:
                continue
            default = _catalog_figure(plan, catalog, site, name)
            if default is not None and default != value:
                found.append(
                    again(
                        f"{at}.{name}",
                        f"{value:g}, but the workloads file does not set it (from_file) and "
                        f"the catalog's is {default:g} (pricing.yaml hardware)",
                    )
                )
        monthly = site_node_monthly_usd(site, catalog)
        if monthly is not None and round(monthly * 100) != round(cost.node_monthly_usd * 100):
            found.append(
                again(
                    f"{at}.node_monthly_usd",
                    f"{usd(cost.node_monthly_usd)}, but its figures make {usd(monthly)} a node "
                    "a month",
                )
            )
        used = [(i, p) for i, p in enumerate(plan.pools) if p.site == site.name]
        taken = sum(p.nodes for _, p in used)
        if taken > site.nodes:
            found.append(
                again(
                    f"sites[{index}].nodes",
                    f"{site.nodes:,} GPU node(s), but its pools ("
                    + ", ".join(f"pools[{i}]" for i, _ in used)
                    + f") use {taken:,}",
                )
            )
    found.extend(load_balancer_problems(plan, catalog))
    found.extend(pod_size_problems(plan, catalog))
    found.extend(toleration_problems(plan))
    return found


def toleration_problems(plan: Plan) -> list[Problem]:
    """Each site's tolerations as the workloads file's loader takes them (planner/inputs/
    sites.py Toleration) and writes them: the stack puts them in the pods' spec as they are, so
    one the API refuses would fail the pods at `pulumi up`."""
    found: list[Problem] = []
    for index, site in enumerate(plan.sites):
        for position, given in enumerate(site.tolerations):
            at = f"sites[{index}].tolerations[{position}]"
            try:
                written = Toleration.model_validate(given).manifest()
            except ValidationError as error:
                for detail in error.errors():
                    field = ".".join(str(part) for part in detail["loc"])
                    message = str(detail["msg"]).removeprefix("Value error, ")
                    found.append(again(f"{at}.{field}" if field else at, message))
                continue
            if written != given:
                found.append(again(at, f"not as the planner writes it: {written}"))
    return found


# How the plan cites a node figure the workloads file set (planner/targets/kubernetes_nodes.py).
_FROM_FILE = "set in the workloads file"
# What a site records of its pods, and the PodResources field each is.
_POD_FIELDS = (
    ("cpus_per_node", "cpus_per_node"),
    ("memory_gib_per_node", "memory_gib_per_node"),
    ("pod_cpus", "cpus"),
    ("pod_memory_mib", "memory_mib"),
    ("shm_mib", "shm_mib"),
)


def pod_size_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """Each site's node and pod sizes as the planner makes them (kubernetes_nodes.py
    pod_resources): a node's CPUs and memory the workloads file's where the plan's figures cite
    it so, else the catalog's server of the site's GPU; the pod's CPUs, memory and shared memory
    what those leave. The stack deploys the recorded sizes: a pod asking for more than a node
    can give is never scheduled."""
    found: list[Problem] = []
    for index, site in enumerate(plan.sites):
        at = f"sites[{index}]"

        def from_file(field: str, site: ClusterSite = site) -> bool:
            cited = plan.figures.get(f"site.{site.name}.{field}")
            return cited is not None and str(cited.source).startswith(_FROM_FILE)

        # The site as the file gave it, as far as its pods' sizes go.
        node = KubernetesSite.model_construct(
            name=site.name,
            kind="kubernetes",
            context=site.context,
            gpu=site.gpu,
            gpus_per_node=site.gpus_per_node,
            nodes=site.nodes,
            node_selector=site.node_selector,
            storage_class=site.storage_class,
            weights_source=site.weights_source,
            cpus_per_node=site.cpus_per_node if from_file("cpus_per_node") else None,
            memory_gib_per_node=(
                site.memory_gib_per_node if from_file("memory_gib_per_node") else None
            ),
            cost=SiteCost.model_construct(owned=site.cost.owned),
        )
        try:
            pods = pod_resources(catalog, node, index)
        except NoNodeFigure as missing:
            found.append(
                again(
                    f"{at}.{missing}",
                    f"the catalog has no node of {site.gpus_per_node} x {site.gpu} and the "
                    f"plan's figures do not say the workloads file gave {missing}",
                )
            )
            continue
        for field, made in _POD_FIELDS:
            value, expected = getattr(site, field), getattr(pods, made)
            if value != expected:
                found.append(
                    again(
                        f"{at}.{field}",
                        f"{value:g}, but the site's node figures make {expected:g} "
                        "(kubernetes.yaml node_resources; the figures the plan cites)",
                    )
                )
        too_small = pod_problem(pods)
        if too_small is not None:
            found.append(again(f"{at}.{too_small[0]}", too_small[1]))
        ids = [figure.key for figure in pods.figures]
        if site.figures != ids:
            found.append(again(f"{at}.figures", f"{site.figures}, but its pods rest on {ids}"))
        for figure in pods.figures:
            cited = plan.figures.get(figure.key)
            if cited is None or cited.value != figure.value:
                found.append(
                    again(
                        f"figures.{figure.key}",
                        f"{'missing' if cited is None else cited.value}, but site "
                        f"{site.name}'s pods rest on {figure.value:g} ({figure.source})",
                    )
                )
    return found


def load_balancer_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """Each site's load balancer as the workloads file's loader takes it (planner/inputs/
    sites.py LoadBalancer): annotations or a class that make it internal, each a Kubernetes
    name, and an AWS NLB's settings that keep the plan's assumptions; verify holds the pools'
    Services to it, so a plan stating less would pass a public one."""
    found: list[Problem] = []
    for index, site in enumerate(plan.sites):
        lb = site.load_balancer
        if lb is None:
            continue
        at = f"sites[{index}].load_balancer"
        try:
            LoadBalancer.model_validate(
                {
                    "annotations": lb.annotations,
                    "class": lb.load_balancer_class,
                    "health_check_cidrs": lb.health_check_cidrs,
                }
                | ({} if lb.dns_suffix is None else {"dns_suffix": lb.dns_suffix})
            )
        except ValidationError as error:
            for detail in error.errors():
                # The file's `class` is the plan's load_balancer_class.
                name = ".".join(
                    "load_balancer_class" if part == "class" else str(part)
                    for part in detail["loc"][:1]
                )
                message = str(detail["msg"]).removeprefix("Value error, ")
                found.append(again(f"{at}.{name}" if name else at, message))
        for position, cidr in enumerate(lb.health_check_cidrs):
            problem = catalog.private_consumers.range_problem(cidr, HEALTH_CHECKS_INSIDE)
            if problem:
                found.append(again(f"{at}.health_check_cidrs[{position}]", problem))
    return found


def pricing_problems(plan: Plan) -> list[Problem]:
    """A cluster's pool (and option) is paid as its site's hardware, owned or bought; an EC2
    pool (and option) as a purchase option, never owned or bought."""
    sites = {site.name: site for site in plan.sites}
    found: list[Problem] = []

    def check(field: str, paid: Pricing | Ownership | None, node_type: str, site: str) -> None:
        cluster = sites.get(site)
        if cluster is not None:
            if isinstance(paid, Pricing):
                found.append(
                    again(
                        field,
                        f"{paid.value!r} is an EC2 purchase option, but site {site}'s nodes are "
                        f"bought hardware: {ownership(cluster).value}",
                    )
                )
            elif paid is not None and paid != ownership(cluster):
                found.append(
                    again(
                        field,
                        f"{paid.value!r}, but site {site}'s nodes are "
                        f"{ownership(cluster).value} (sites[].cost.owned)",
                    )
                )
        elif isinstance(paid, Ownership):
            found.append(
                again(
                    field,
                    f"{paid.value!r} is a cluster site's hardware, but {node_type} is an EC2 "
                    "instance type: on_demand, spot, savings_1yr or savings_3yr",
                )
            )

    for index, pool in enumerate(plan.pools):
        check(f"pools[{index}].pricing", pool.pricing, pool.instance_type, pool.site)
    for index, workload in enumerate(plan.workloads):
        economics = workload.answers.volume_economics
        for kind, options in (
            ("options", economics.options),
            ("alternatives", economics.alternatives),
        ):
            for number, option in enumerate(options):
                if option.instance_type is None:
                    continue
                # An option on a site is named by the site (its instance_type).
                site = option.instance_type if option.instance_type in sites else "aws"
                check(
                    f"workloads[{index}].answers.volume_economics.{kind}[{number}].pricing",
                    option.pricing,
                    option.instance_type,
                    site,
                )
    return found


def cluster_pool_cost_problems(plan: Plan, catalog: Catalog, staff_usd: float) -> list[Problem]:
    """A cluster pool costs its nodes at its site's node-month (each node-month in whole cents,
    as costing.nodes_monthly_usd prices every pool) plus its staff: a cluster pool has no
    network pieces of its own (planner/targets/kubernetes.py pool_fixed_cost). Its purchase
    option is the same nodes, owned or bought."""
    sites = {site.name: site for site in plan.sites}
    hours = catalog.pricing.hours_per_month.value
    fixed = round(staff_usd + pieces_cost(catalog, ()).monthly_usd, 2)
    found: list[Problem] = []
    for index, pool in enumerate(plan.pools):
        site = sites.get(pool.site)
        if site is None or pool.nodes < 1:
            continue  # EC2 pools: checks.py; a bad count: plan_problems
        monthly = site_node_monthly_usd(site, catalog)
        if monthly is None:
            continue  # site_problems reports it
        at = f"pools[{index}]"
        nodes = nodes_monthly_usd(monthly / hours, hours, pool.nodes)
        expected = round((nodes + fixed) * 100)
        if round(pool.monthly_cost_usd * 100) != expected:
            found.append(
                again(
                    f"{at}.monthly_cost_usd",
                    f"{usd(pool.monthly_cost_usd)}, but {pool.nodes:,} node(s) of site "
                    f"{site.name} at {usd(monthly)} a node-month "
                    f"({ownership(site).value}) and the pool's staff cost "
                    f"{usd(expected / 100)}: nodes and cost disagree",
                )
            )
        option = "owned" if site.cost.owned else "buy"
        price = round(pool.nodes * round(monthly, 2), 2)
        for number, purchase in enumerate(pool.purchase_options):
            if purchase.option != option:
                found.append(
                    again(
                        f"{at}.purchase_options[{number}].option",
                        f"{purchase.option!r}, but a node of site {site.name} is paid only as "
                        f"{option}",
                    )
                )
            elif round(purchase.monthly_cost_usd * 100) != round(price * 100):
                found.append(
                    again(
                        f"{at}.purchase_options[{number}].monthly_cost_usd",
                        f"{usd(purchase.monthly_cost_usd)}, but {pool.nodes:,} node(s) of site "
                        f"{site.name} cost {usd(price)} {option}",
                    )
                )
    return found
