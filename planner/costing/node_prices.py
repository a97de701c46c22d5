"""Node prices: an instance type's node an hour under a purchase option (a published rate, or
on-demand times the option's multiplier, with its planning range), a pool's nodes a month, and
the same nodes under every purchase option and bought outright."""

from __future__ import annotations

from dataclasses import dataclass

from planner import formulas
from planner.catalog import Catalog, Figure, Instance
from planner.catalog.vocabulary import Pricing
from planner.costing.settings import MILLION


@dataclass(frozen=True, slots=True)
class NodeRate:
    """One node an hour under a purchase option, its planning range, and what it rests on: a
    published rate of the instance type, or the on-demand price times an inferred multiplier
    (its terms; `basis` writes them, planner/formulas.py)."""

    usd_per_hour: float
    low: float
    high: float
    published: bool
    terms: formulas.RateBasis

    @property
    def basis(self) -> str:
        return formulas.rate_basis(self.terms)


# The Instance field that holds a purchase option's published rate, and how a basis names it:
# a new published option is a data field (catalog.Instance, instances.yaml) and an entry here.
PUBLISHED_RATES: dict[Pricing, tuple[str, str]] = {
    Pricing.spot: ("spot_usd_per_hour", "spot"),
    Pricing.savings_1yr: ("savings_1yr_usd_per_hour", "1-year rate"),
    Pricing.savings_3yr: ("savings_3yr_usd_per_hour", "3-year rate"),
}


@dataclass(frozen=True, slots=True)
class PublishedRate:
    """A published rate an instance type's node is priced at under a purchase option: the
    Instance field it comes from (the plan's figure is instance.<type>.<field>) and the figure."""

    field: str
    label: str
    figure: Figure


def published_rate(catalog: Catalog, instance: Instance, pricing: Pricing) -> PublishedRate | None:
    """The published figure behind a node's price under the option, or None where the instance
    type has none (the option's multiplier of on-demand then applies). A spot price counts only
    with the premium pricing.yaml adds to it for interruptions and the on-demand fallback."""
    entry = PUBLISHED_RATES.get(pricing)
    if entry is None:
        return None
    field, label = entry
    figure = getattr(instance, field)
    if not isinstance(figure, Figure):
        return None
    if pricing is Pricing.spot and catalog.pricing.options[pricing].premium is None:
        return None
    return PublishedRate(field, label, figure)


def node_rate(catalog: Catalog, instance: Instance, pricing: Pricing) -> NodeRate:
    option = catalog.pricing.options[pricing]
    on_demand = instance.on_demand_usd_per_hour.value
    published = published_rate(catalog, instance, pricing)
    if published is not None:
        figure = published.figure
        if option.premium is not None and pricing is Pricing.spot:
            premium = option.premium

            def with_premium(price: float | None, share: float | None) -> float:
                # An end the spot price has no range for takes its value: the premium's range.
                # Above on-demand no one buys spot: the fallback is on-demand itself.
                return min(
                    on_demand,
                    (figure.value if price is None else price)
                    * (1 + (premium.value if share is None else share)),
                )

            high = with_premium(figure.high, premium.high)
            return NodeRate(
                with_premium(figure.value, premium.value),
                with_premium(figure.low, premium.low),
                high,
                True,
                formulas.SpotBasis(
                    figure.value,
                    figure.date,
                    premium.value,
                    on_demand if high >= on_demand else None,
                ),
            )
        return NodeRate(
            figure.value,
            figure.value if figure.low is None else figure.low,
            figure.value if figure.high is None else figure.high,
            True,
            formulas.PublishedBasis(published.label, figure.value, figure.date),
        )
    multiplier = option.multiplier
    low = multiplier.value if multiplier.low is None else multiplier.low
    high = multiplier.value if multiplier.high is None else multiplier.high
    return NodeRate(
        on_demand * multiplier.value,
        on_demand * low,
        on_demand * high,
        pricing == Pricing.on_demand,
        formulas.MultiplierBasis(on_demand, multiplier.value, pricing != Pricing.on_demand),
    )


def node_hourly_usd(catalog: Catalog, instance: Instance, pricing: Pricing) -> float:
    return node_rate(catalog, instance, pricing).usd_per_hour


def site_node_basis(
    *,
    owned: bool,
    power_kw: float,
    pue: float,
    usd_per_kwh: float,
    hours: float,
    hosting_usd: float,
    capital_usd: float | None,
    horizon_months: float | None,
) -> formulas.SiteNodeBasis:
    """A cluster site's GPU node a month as bought hardware: power x PUE x electricity x hours,
    hosting, and for a purchase (not owned) the capital over the horizon. The one arithmetic
    the planning (planner/targets/kubernetes.py), the plan-file checks and `planner preview`
    use, so the three agree to the cent."""
    power_usd = power_kw * pue * usd_per_kwh * hours
    capital_month = 0.0
    if not owned:
        if capital_usd is None or horizon_months is None:
            raise ValueError("a purchase needs its capital and horizon")
        capital_month = capital_usd / horizon_months
    return formulas.SiteNodeBasis(
        owned=owned,
        power_kw=power_kw,
        pue=pue,
        usd_per_kwh=usd_per_kwh,
        hours=hours,
        power_usd=power_usd,
        hosting_usd=hosting_usd,
        capital_usd=None if owned else capital_usd,
        horizon_months=None if owned else horizon_months,
        capital_month_usd=capital_month,
        monthly_usd=power_usd + hosting_usd + capital_month,
    )


def nodes_monthly_usd(node_hourly_usd: float, hours_per_month: float, nodes: int) -> float:
    """Nodes a month: a node-month in whole cents, times the nodes. The one price the plan's
    pools and `planner preview`'s auto-scaling groups both use; rounding each node-month (not
    each group) makes a pool cost the same however its nodes are grouped (one group per
    multi-node replica in the stack)."""
    return nodes * round(node_hourly_usd * hours_per_month * 100) / 100


def usd_per_million_tokens(
    hourly_usd: float, tokens_per_second: float, utilization: float
) -> float:
    """The article's formula: hourly price / (tokens per second x utilization x 3600) x 1e6."""
    return hourly_usd / (tokens_per_second * utilization * 3600) * MILLION


@dataclass(frozen=True)
class PurchaseCost:
    """A pool's nodes a month under one purchase option, and the terms of its formula."""

    option: str
    monthly_usd: float
    terms: formulas.RentedNodesTerms | formulas.BoughtNodesTerms | formulas.SiteNodesTerms
    comparison_only: bool

    @property
    def formula(self) -> str:
        return formulas.purchase_formula(self.terms)


def purchase_costs(
    catalog: Catalog, instance_type: str, nodes: int, horizon_months: float | None = None
) -> list[PurchaseCost]:
    """A pool's nodes under every purchase option, and bought outright where the catalog has a
    server price (capital over the horizon, plus power): the last as a comparison only."""
    instance = catalog.instances[instance_type]
    hours = catalog.pricing.hours_per_month.value
    found = []
    for option in Pricing:
        rate = node_rate(catalog, instance, option)
        hourly = rate.usd_per_hour
        # As the pool's own cost is priced: each node-month in whole cents.
        monthly = nodes_monthly_usd(hourly, hours, nodes)
        found.append(
            PurchaseCost(
                option.value,
                round(monthly, 2),
                formulas.RentedNodesTerms(nodes, hourly, rate.terms, hours, monthly),
                False,
            )
        )
    hardware = catalog.pricing.hardware
    server = hardware.servers.get(instance_type)
    if server is not None:
        horizon = horizon_months or hardware.horizon_months.value
        capital = server.capital_usd.value / horizon
        power = hardware.power_kw.value * hardware.pue.value * hardware.usd_per_kwh.value * hours
        monthly = nodes * (capital + power)
        found.append(
            PurchaseCost(
                "buy",
                round(monthly, 2),
                formulas.BoughtNodesTerms(
                    nodes,
                    server.capital_usd.value,
                    server.capital_usd.date,
                    horizon,
                    hardware.power_kw.value,
                    hardware.pue.value,
                    hardware.usd_per_kwh.value,
                    hours,
                    monthly,
                ),
                True,
            )
        )
    return found
