"""The fixed costs of reaching the APIs (keys, PrivateLink, the egress network) and of the
connections in consumer VPCs, each counted once and shared among the workloads that use it."""

from __future__ import annotations

from typing import NamedTuple

from planner import formulas
from planner.catalog import Catalog
from planner.catalog.aws_prices import price_figure
from planner.costing import api_fixed_kinds, connection_cost, pieces_cost
from planner.planfile import API_NETWORK_FOR, Connection, WorkloadPlan
from planner.planning import optimize
from planner.planning.cents import allocate
from planner.planning.figures import FigureBook

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


def with_access_costs(
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
        for i, part in zip(members, allocate(cents, weights), strict=True):
            extra[i] += part
    for plan_of, cents in zip(plans, extra, strict=True):
        plan_of.access_share_usd = cents / 100
        if cents:
            plan_of.monthly_cost_usd = (round(plan_of.monthly_cost_usd * 100) + cents) / 100
    return plans, fixed


class Service(NamedTuple):
    """What a workload's callers connect to: its name, and its kind (operations.yaml
    connections)."""

    name: str
    kind: str


def _service_of(catalog: Catalog, plan_of: WorkloadPlan) -> Service | None:
    """The service a workload's callers connect to, and its kind (operations.yaml connections):
    its pool, or the API network its provider is reached through."""
    if plan_of.placement == "self_hosted":
        return Service(plan_of.pool, "self_hosted_pool") if plan_of.pool is not None else None
    if plan_of.provider is None:
        return None
    network = API_NETWORK_FOR[catalog.providers[plan_of.provider].private_link]
    return Service(network, network)


def connections_of(
    catalog: Catalog, plans: list[WorkloadPlan], book: FigureBook | None = None
) -> list[Connection]:
    """What the stack makes in each consumer VPC of this account for each service its callers
    use, priced once per service and VPC (the stack makes one endpoint there, admitting every
    workload's callers). Counts come from the VPC's subnets, as the stacks place the pieces."""
    found: dict[tuple[str, str], tuple[str, set[str], list[str]]] = {}
    for plan_of in plans:
        service = _service_of(catalog, plan_of)
        if service is None or service.kind not in catalog.operations.connections:
            continue
        for consumer in plan_of.consumers:
            if consumer.vpc is None:
                continue
            kind, subnets, names = found.setdefault(
                (service.name, consumer.vpc), (service.kind, set(), [])
            )
            subnets.update(consumer.subnets)
            if plan_of.name not in names:
                names.append(plan_of.name)
    connections = []
    for (service_name, vpc), (kind, subnets, names) in sorted(found.items()):
        cents, terms, tokens = connection_cost(catalog, kind, len(subnets))
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
                formula=formulas.connection_formula(terms),
            )
        )
    return connections


def with_connections(plans: list[WorkloadPlan], connections: list[Connection]) -> None:
    """Each connection split equally, in whole cents, among the workloads that name its VPC;
    each share added to the workload's cost and both ends of its range."""
    by_name = {plan_of.name: plan_of for plan_of in plans}
    for connection in connections:
        cents = round(connection.monthly_cost_usd * 100)
        for name, share in zip(
            connection.workloads,
            allocate(cents, [1.0] * len(connection.workloads)),
            strict=True,
        ):
            plan_of = by_name[name]
            plan_of.connection_share_usd = (round(plan_of.connection_share_usd * 100) + share) / 100
            for field in ("monthly_cost_usd", "monthly_cost_low_usd", "monthly_cost_high_usd"):
                setattr(plan_of, field, (round(getattr(plan_of, field) * 100) + share) / 100)
