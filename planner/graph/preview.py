"""`planner preview`: what `pulumi preview` would create, computed offline, with resource costs.

It runs the real program (__main__.py) under Pulumi's mocks, so the resource tree is the one the
CLI would see, then prices each resource from planner/data/aws_prices.yaml (and the GPU nodes from
the catalog at the plan's purchase option), in the manner of an Infracost breakdown. Its text and
JSON are rendered by planner/render/preview_report.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from planner import formulas, names
from planner.catalog import Catalog, Instance
from planner.catalog.aws_prices import list_price
from planner.catalog.vocabulary import Pricing
from planner.console import is_long, progress
from planner.costing import node_hourly_usd, node_rate, nodes_monthly_usd, published_rate
from planner.errors import PlannerError, Problem
from planner.fmt import usd, usd_per_hour
from planner.graph.offline import (
    OfflineRun,
    Registered,
    plan_subnet_zones,
    run_program,
    standard_invokes,
)
from planner.inputs.lines import loader_of, repeated_keys
from planner.planfile import ClusterSite, Plan, Pool, read_plan
from planner.planfile.site_checks import site_node_basis_of

SECRET = "[secret]"


@dataclass(frozen=True)
class ResourceCost:
    urn: str
    type: str
    name: str
    monthly_usd: float
    quantity: str
    usage: str | None
    source: str


@dataclass
class Preview:
    stack: str
    plan: Plan
    run: OfflineRun
    costs: list[ResourceCost]
    # The config the program ran with, as `pulumi preview --json` records it under "config"
    # (secret values masked): verify --preview reads the Kubernetes sites' ranges from it.
    config: dict[str, str] = field(default_factory=dict)

    def ordered(self) -> list[tuple[int, Registered]]:
        """Resources depth-first from the stack, siblings by name and type: the same program
        gives the same listing however its asynchronous registrations interleave."""
        children: dict[str, list[Registered]] = {}
        for resource in self.run.resources:
            children.setdefault(resource.parent, []).append(resource)
        listing: list[tuple[int, Registered]] = []

        def visit(urn: str, depth: int) -> None:
            for child in sorted(children.get(urn, []), key=lambda r: (r.name, r.type)):
                listing.append((depth, child))
                visit(child.urn, depth + 1)

        visit(self.run.stack_urn, 1)
        return listing

    @property
    def total_usd(self) -> float:
        """The resources' list prices a month (what AWS bills for them, usage aside)."""
        return _cents(c.monthly_usd for c in self.costs)

    @property
    def connections_usd(self) -> float:
        """The resources the stack makes in the consumers' VPCs (endpoints, private zones, ...),
        whichever component makes them: the plan's connections."""
        inside = _in_consumer_vpcs(self.run, self.plan)
        return _cents(c.monthly_usd for c in self.costs if c.urn in inside)

    @property
    def pools_usd(self) -> float:
        """The resources of the self-hosted pools in their own networks: nodes, network pieces
        (a cluster pool's nodes too, at its site's node-month)."""
        tops = _top_types(self.run)
        inside = _in_consumer_vpcs(self.run, self.plan)
        return _cents(
            c.monthly_usd
            for c in self.costs
            if tops.get(c.urn) in POOL_COMPONENTS and c.urn not in inside
        )

    @property
    def site_nodes_usd(self) -> float:
        """The cluster pools' nodes: bought hardware at their sites' node-month, no AWS bill."""
        return _cents(c.monthly_usd for c in self.costs if c.type == CLUSTER_POOL)

    @property
    def free_resources(self) -> int:
        """The resources that cost nothing by themselves (IAM, security groups, ...)."""
        priced = {c.urn for c in self.costs}
        return sum(1 for r in self.run.resources if r.custom and r.urn not in priced)

    @property
    def shared_access_usd(self) -> float:
        """The resources of the API access, each paid once: providers' pieces, egress network."""
        return _cents((self.total_usd, -self.pools_usd, -self.connections_usd))

    @property
    def grand_total_usd(self) -> float:
        """The resources, plus what no resource bills: the pools' staff and the API tokens
        (both from the plan). Each piece once: the plan's total, and the stack's budget."""
        totals = self.plan.totals
        return _cents((self.total_usd, totals.staff_usd, totals.api_tokens_usd))

    @property
    def agrees(self) -> bool:
        return round(self.grand_total_usd * 100) == round(self.plan.totals.monthly_cost_usd * 100)


POOL_COMPONENT = names.INFERENCE_POOL
# A pool on a cluster site: its nodes are priced on the component (the site's node-month from
# the plan's sites[].cost), as no resource the stack makes is a node.
CLUSTER_POOL = names.CLUSTER_POOL
POOL_COMPONENTS = (POOL_COMPONENT, CLUSTER_POOL)


def _cents(amounts: Iterable[float]) -> float:
    """A sum of amounts in whole cents, added as cents so no float drift reaches the total."""
    return sum(round(amount * 100) for amount in amounts) / 100


def _in_consumer_vpcs(run: OfflineRun, plan: Plan) -> set[str]:
    """URNs of the resources placed in a consumer VPC of the plan (their `vpcId`, or a private
    zone's `vpcs`): what the stack adds on the callers' side."""
    vpcs = {c.vpc for w in plan.workloads for c in w.consumers if c.vpc is not None}
    found = set()
    for resource in run.resources:
        inputs = resource.inputs
        placed = {inputs.get("vpcId")} | {
            v.get("vpcId") for v in inputs.get("vpcs") or [] if isinstance(v, dict)
        }
        if placed & vpcs:
            found.add(resource.urn)
    return found


def _top_types(run: OfflineRun) -> dict[str, str]:
    """URN -> the type of the top-level component it belongs to (a pool, an access, ...)."""
    by_urn = {r.urn: r for r in run.resources}
    found = {}
    for resource in run.resources:
        top = resource
        while top.parent in by_urn:
            top = by_urn[top.parent]
        found[resource.urn] = top.type
    return found


def _stack_yaml(path: Path, text: str) -> Any:
    """The stack file's document; a key given twice is malformed (YAML would keep the last
    silently, where `pulumi` may read another)."""
    loader = loader_of(text)
    try:
        root = loader.get_single_node()
        repeated = repeated_keys(root)
        if repeated:
            loc, first, again = repeated[0]
            raise PlannerError.single(
                str(path),
                "",
                f"malformed YAML: {loc[-1]!r} is given twice in one mapping (lines {first} and "
                f"{again}): keep one",
                again,
            )
        return loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()


def stack_config(project: Path, stack: str) -> tuple[dict[str, str], list[str]]:
    """Config from Pulumi.<stack>.yaml. Encrypted values cannot be read offline: they are passed
    as a placeholder, marked secret, so the program takes the same path as with the real key."""
    path = project / f"Pulumi.{stack}.yaml"
    try:
        data = _stack_yaml(path, path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PlannerError.single(
            str(path), "", f"no such stack config: run `planner plan WORKLOADS --stack {stack}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlannerError.unreadable(str(path), exc, "stack config file") from None
    except yaml.YAMLError as exc:
        raise PlannerError.malformed_yaml(str(path), exc) from None
    if not isinstance(data, dict):
        raise PlannerError.single(str(path), "", "expected a mapping with `config`")
    if not isinstance(data.get("config") or {}, dict):
        raise PlannerError.single(str(path), "config", "expected a mapping")
    config: dict[str, str] = {}
    secrets: list[str] = []
    for key, value in (data.get("config") or {}).items():
        full = key if ":" in key else names.config_key(key)
        if isinstance(value, dict) and "secure" in value:
            config[full] = SECRET
            secrets.append(full)
        elif isinstance(value, bool):
            config[full] = "true" if value else "false"
        elif isinstance(value, str):
            config[full] = value
        else:
            config[full] = json.dumps(value)
    return config, secrets


def run_preview(project: Path, catalog: Catalog, stack: str, plan_file: Path | None) -> Preview:
    if plan_file is not None:
        plan = read_plan(plan_file)
        stack = plan.stack
        try:
            relative = plan_file.resolve().relative_to(project.resolve()).as_posix()
        except ValueError:
            relative = plan_file.resolve().as_posix()
        config = {names.CONFIG_PLAN: relative, "aws:region": plan.region}
        secrets: list[str] = []
    else:
        config, secrets = stack_config(project, stack)
        if names.CONFIG_PLAN not in config:
            raise PlannerError.single(
                f"Pulumi.{stack}.yaml", f"config.{names.CONFIG_PLAN}", "not set: run `planner plan`"
            )
        plan = read_plan(project / config[names.CONFIG_PLAN])
    long = is_long(len(plan.workloads))
    if long:  # seconds to minutes: say what is running, on stderr
        progress(
            f"running the program under Pulumi's mocks for {len(plan.workloads):,} workloads..."
        )
    try:
        region = config.get("aws:region", "us-east-1")
        answer = standard_invokes(region, None, plan_subnet_zones(plan))
        run = run_program(project, stack, config, secret_keys=secrets, answer_invoke=answer)
    except pulumi.RunError as exc:
        # The program's own complaint about the plan (stale, corrupted) names the plan file:
        # blame that file, not a stack config that may not be in play.
        named, lines = config[names.CONFIG_PLAN], str(exc).splitlines()
        if lines and all(line.startswith(f"{named}: ") for line in lines):
            raise PlannerError(
                named, [Problem("", line.removeprefix(f"{named}: ")) for line in lines]
            ) from None
        raise PlannerError.single(f"Pulumi.{stack}.yaml", "", str(exc)) from None
    if long:
        progress(f"pricing {len(run.resources):,} resources...")
    shown = {key: SECRET if key in secrets else value for key, value in sorted(config.items())}
    return Preview(stack, plan, run, price_resources(run, plan, catalog), shown)


def price_resources(run: OfflineRun, plan: Plan, catalog: Catalog) -> list[ResourceCost]:
    hours = catalog.pricing.hours_per_month.value
    by_urn = {r.urn: r for r in run.resources}
    pricing = {pool.name: pool.pricing for pool in plan.pools}
    costs = []
    pools = {pool.name: pool for pool in plan.pools}
    sites = {site.name: site for site in plan.sites}
    for resource in sorted(run.resources, key=lambda r: r.urn):
        if resource.type == CLUSTER_POOL and resource.name in pools:
            pool = pools[resource.name]
            if pool.site in sites:
                nodes = _graph_nodes(resource, run, sites[pool.site])
                costs.append(_site_nodes_cost(resource, pool, sites[pool.site], catalog, nodes))
            continue
        if not resource.custom:
            continue
        if resource.type == "aws:autoscaling/group:Group":
            costs.append(_node_cost(resource, by_urn, catalog, pricing, hours))
            continue
        count, what = _quantity(resource)
        price = list_price(catalog, resource.type, count, what) if count else None
        if price is not None:
            costs.append(
                ResourceCost(
                    resource.urn,
                    resource.type,
                    resource.name,
                    price.monthly_usd,
                    price.quantity,
                    price.usage,
                    price.source,
                )
            )
    return costs


def _quantity(resource: Registered) -> tuple[int, str]:
    if resource.type == "aws:ec2/vpcEndpoint:VpcEndpoint":
        if resource.inputs.get("vpcEndpointType") != "Interface":
            return 0, "gateway endpoint"
        zones = len(resource.inputs.get("subnetIds") or [])
        return zones, f"{zones} availability zone(s)"
    if resource.type == "aws:networkfirewall/firewall:Firewall":
        endpoints = len(resource.inputs.get("subnetMappings") or [])
        return endpoints, f"{endpoints} endpoint(s)"
    return 1, "1"


def _node_cost(
    group: Registered,
    by_urn: dict[str, Registered],
    catalog: Catalog,
    pricing: dict[str, Any],
    hours: float,
) -> ResourceCost:
    template_urns = group.dependencies.get("launchTemplate") or []
    template = by_urn.get(template_urns[0]) if template_urns else None
    instance_type = template.inputs.get("instanceType") if template else None
    tags = {t["key"]: t["value"] for t in group.inputs.get("tags") or []}
    option = pricing.get(tags.get(names.TAG_POOL, ""), "on_demand")
    nodes = int(group.inputs.get("desiredCapacity") or 0)
    if instance_type not in catalog.instances:
        return ResourceCost(
            group.urn, group.type, group.name, 0.0, f"{nodes} x unknown instance type", None, ""
        )
    instance = catalog.instances[instance_type]
    hourly = node_hourly_usd(catalog, instance, option)
    return ResourceCost(
        group.urn,
        group.type,
        group.name,
        nodes_monthly_usd(hourly, hours, nodes),
        f"{nodes} x {instance_type} at {usd_per_hour(hourly)} ({option}) x {hours:.0f} h",
        None,
        f"{instance.on_demand_usd_per_hour.source}, {instance.on_demand_usd_per_hour.date}; "
        f"{_rate_source(catalog, instance, option)}",
    )


def _pod_gpus(template: Any) -> int:
    """The GPUs a pod template's containers ask for (limits: the device plugin's resource)."""
    spec = (template or {}).get("spec") or {}
    total = 0
    for container in spec.get("containers") or []:
        limits = ((container or {}).get("resources") or {}).get("limits") or {}
        try:
            total += int(limits.get("nvidia.com/gpu") or 0)
        except (TypeError, ValueError):
            continue
    return total


def _graph_nodes(component: Registered, run: OfflineRun, site: ClusterSite) -> int:
    """The GPU nodes a cluster pool's serving pods take in the graph (as EC2 pools are priced
    from their group's desiredCapacity): the Deployment's replicas, or the LeaderWorkerSet's
    groups of a leader and workers, times their GPUs, over a node's GPUs; not the plan's count,
    so a preview that serves more or fewer than the plan disagrees with it."""
    children = {component.urn}
    gpus = 0
    for resource in run.resources:  # registered parents first
        if resource.parent not in children:
            continue
        children.add(resource.urn)
        spec = resource.inputs.get("spec") or {}
        if resource.type == "kubernetes:apps/v1:Deployment":
            gpus += int(spec.get("replicas") or 0) * _pod_gpus(spec.get("template"))
        elif resource.type.endswith(":LeaderWorkerSet"):
            group = spec.get("leaderWorkerTemplate") or {}
            leader = group.get("leaderTemplate") or group.get("workerTemplate")
            size = int(group.get("size") or 1)
            per_group = _pod_gpus(leader) + (size - 1) * _pod_gpus(group.get("workerTemplate"))
            gpus += int(spec.get("replicas") or 0) * per_group
    return math.ceil(gpus / site.gpus_per_node)


def _site_nodes_cost(
    component: Registered, pool: Pool, site: ClusterSite, catalog: Catalog, nodes: int
) -> ResourceCost:
    """A cluster pool's nodes as the graph serves them (`nodes`): bought hardware at the site's
    node-month as the plan records it (sites[].cost, the figures the plan-file checks
    recompute), each node-month in whole cents as the plan prices the pool; not an AWS list
    price."""
    hours = catalog.pricing.hours_per_month.value
    node = site.cost.node_monthly_usd
    basis = site_node_basis_of(site, catalog)
    paid = "owned" if site.cost.owned else "bought"
    return ResourceCost(
        component.urn,
        component.type,
        component.name,
        nodes_monthly_usd(node / hours, hours, nodes),
        f"{nodes} x GPU node of site {site.name} at {usd(node)} a node-month ({paid} "
        "hardware, not an AWS bill)",
        None,
        f"site {site.name}: "
        + (formulas.site_node_formula(basis) if basis is not None else "its node-month")
        + " (plan.json sites[].cost)",
    )


def _rate_source(catalog: Catalog, instance: Instance, option: str) -> str:
    """What a node's price under the purchase option rests on, with its source."""
    pricing = Pricing(option)
    rate = node_rate(catalog, instance, pricing)
    published = published_rate(catalog, instance, pricing)
    if published is not None:
        premium = catalog.pricing.options[pricing].premium
        if pricing is Pricing.spot and premium is not None:  # the premium's source too
            return f"{rate.basis}: {published.figure.source}; premium: {premium.source}"
        return f"{rate.basis}: {published.figure.source}"
    return f"{rate.basis}: {catalog.pricing.options[pricing].multiplier.source}"
