"""Fixed pieces: what does not grow with volume. A pool's staff, the network and security pieces
of a pool or an API's access (operations.yaml, priced from aws_prices.yaml), what the stack adds
in each consumer VPC, and a stack component's monthly cost from the same pieces."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from planner import formulas
from planner.catalog import Catalog
from planner.catalog.aws_prices import list_price
from planner.costing.settings import Settings


@dataclass(frozen=True)
class FixedCost:
    """A monthly cost that does not grow with volume, and how it is made up (its terms; the
    formula is written from them once, planner/formulas.py)."""

    monthly_usd: float
    terms: formulas.PiecesTerms | formulas.PoolFixedTerms

    @cached_property
    def formula(self) -> str:
        return formulas.fixed_formula(self.terms)


def pieces_cost(catalog: Catalog, kinds: tuple[str, ...]) -> FixedCost:
    """The list price a month of the network and security pieces of these kinds
    (planner/data/operations.yaml, priced from aws_prices.yaml); usage charges aside."""
    terms = _pieces_terms(catalog, kinds)
    return FixedCost(round(terms.total_usd, 2), terms)


def _pieces_terms(catalog: Catalog, kinds: tuple[str, ...]) -> formulas.PiecesTerms:
    total, parts = 0.0, []
    for kind in kinds:
        for piece in catalog.operations.pieces[kind]:
            price = list_price(catalog, piece.resource, piece.count, piece.what)
            if price is not None:
                total += price.monthly_usd
                parts.append(formulas.PiecePrice(price.monthly_usd, piece.what))
    return formulas.PiecesTerms(tuple(parts), total)


def component_monthly_usd(
    catalog: Catalog, pieces: tuple[str, ...], connections: list[tuple[str, int]]
) -> float:
    """What a stack component costs a month, usage charges aside, from the same operations.yaml
    pieces and connections the plan prices: its own pieces (pieces_cost) and what it makes in
    consumer VPCs, each (kind, subnets) priced as connection_cost does. The stacks report it as
    the component's `monthly_cost_usd`, so the two cannot drift apart."""
    cents = round(pieces_cost(catalog, pieces).monthly_usd * 100) if pieces else 0
    for kind, subnets in connections:
        cents += connection_cost(catalog, kind, subnets)[0]
    return cents / 100


def connection_cost(
    catalog: Catalog, kind: str, subnets: int
) -> tuple[int, formulas.ConnectionTerms, list[str]]:
    """What the stack adds in one consumer VPC for one service of this kind
    (operations.yaml connections, priced from aws_prices.yaml): whole cents a month, the terms
    of its formula (formulas.connection_formula), and the resource types priced. Each resource
    is rounded to the cent as `planner preview` prices it, so the plan and the preview agree to
    the cent."""
    cents, parts, tokens = 0, [], []
    for piece in catalog.operations.connections.get(kind, []):
        count = subnets if piece.per == "subnet" else 1
        price = list_price(catalog, piece.resource, count, piece.what)
        if price is None or not count:
            continue
        cents += round(price.monthly_usd * 100)
        parts.append(formulas.PricedResource(price.monthly_usd, price.quantity))
        tokens.append(piece.resource)
    return cents, formulas.ConnectionTerms(tuple(parts), cents), tokens


def _staff(catalog: Catalog, settings: Settings | None) -> tuple[float, float]:
    """A pool's share of an engineer and the engineer's monthly cost, as the file sets them."""
    staff = catalog.operations.staff
    fte = staff.pool_fte.value
    engineer = staff.engineer_usd_per_month.value
    if settings is not None:
        fte = fte if settings.pool_fte is None else settings.pool_fte
        engineer = (
            engineer if settings.engineer_usd_per_month is None else settings.engineer_usd_per_month
        )
    return fte, engineer


def pool_staff_usd(catalog: Catalog, settings: Settings | None = None) -> float:
    """A pool's staff a month, in whole cents: the one figure the plan's pool costs, its staff
    total and `planner preview`'s staff line all use."""
    fte, engineer = _staff(catalog, settings)
    return round(fte * engineer, 2)


def pool_fixed_cost(
    catalog: Catalog,
    settings: Settings | None = None,
    kinds: tuple[str, ...] = ("self_hosted_pool",),
) -> FixedCost:
    """What a self-hosted pool costs besides its nodes: a share of an engineer to run it, and
    its network and security pieces of these kinds (operations.yaml; a cluster's pool has none
    of its own), the staff figures as the workloads file sets them."""
    fte, engineer = _staff(catalog, settings)
    people = pool_staff_usd(catalog, settings)
    pieces = _pieces_terms(catalog, kinds)
    total = round(people + round(pieces.total_usd, 2), 2)
    return FixedCost(total, formulas.PoolFixedTerms(fte, engineer, people, pieces))


def api_fixed_kinds(catalog: Catalog, provider_id: str) -> tuple[str, ...]:
    """The pieces a provider's access needs: its boundary (PrivateLink, else the shared egress
    network) and, where its callers authenticate with an API key (providers.yaml auth) rather
    than their IAM role, a secret for the key."""
    provider = catalog.providers[provider_id]
    boundary = "private_link" if provider.private_link else "egress_network"
    return (boundary, "api_key") if provider.needs_api_key else (boundary,)
